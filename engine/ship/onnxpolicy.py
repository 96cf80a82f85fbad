"""The reference loader of a gameadapt policy folder: stdlib, numpy and onnxruntime only.

This module imports nothing else (no torch, no gameadapt), so a game's tooling may copy it
as is. It reads ``policy.json``, checks the format and the SHA-256 of every listed file,
and runs the graphs with ONNX Runtime (the artifact format is in ``exports/README.md``)::

    policy = OnnxPolicy.load("exports/gridnav")
    action = policy.act(observation)                    # one observation or a batch
    if policy.has_adapter:                              # exported with --with-adapter
        weights = policy.load_weights()
        env_action, policy_action = policy.sample(observation, rng, weights)  # explore
        ...                                             # play, record policy_actions, rewards
        advantages = reward_to_go_advantages([episode_rewards], gamma=0.99)
        weights = policy.adapt(observations, policy_actions, advantages, weights=weights)
        action = policy.act_with(weights, observation)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

FORMAT = "gameadapt-policy/1"
MANIFEST = "policy.json"
POLICY_FILE = "policy.onnx"
WEIGHTS_POLICY_FILE = "policy_weights.onnx"
ADAPTER_FILE = "adapter.onnx"
WEIGHTS_FILE = "weights.bin"

Weights = dict[str, np.ndarray]  # parameter input name (e.g. "body_0_weight") -> float32 array


class PolicyLoadError(Exception):
    """A policy folder is missing, malformed or tampered with, or an input is wrong (one line)."""


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def reward_to_go_advantages(episodes_rewards: Sequence[Sequence[float]], gamma: float = 0.99
                            ) -> np.ndarray:
    """Discounted returns-to-go of every step, all episodes concatenated, standardised.

    ``episodes_rewards[i][t]`` is the reward of step ``t`` of episode ``i``; the result is
    float32 ``[sum of lengths]`` with mean 0 and std 1 (only centred if all are equal). This is
    one simple choice: the adapter accepts advantages computed any way a game likes.
    """
    parts = []
    for rewards in episodes_rewards:
        returns = np.zeros(len(rewards), dtype=np.float64)
        running = 0.0
        for t in range(len(rewards) - 1, -1, -1):
            running = float(rewards[t]) + gamma * running
            returns[t] = running
        parts.append(returns)
    values = np.concatenate(parts) if parts else np.zeros(0)
    if values.size == 0:
        return values.astype(np.float32)
    values = values - values.mean()
    std = values.std()
    return (values / std if std > 1e-8 else values).astype(np.float32)


class OnnxPolicy:
    """A loaded policy folder; see :meth:`load`."""

    def __init__(self, folder: Path, manifest: dict[str, Any],
                 sessions: dict[str, ort.InferenceSession]) -> None:
        self.folder = folder
        self.manifest = manifest
        self._sessions = sessions
        self.observation_space: dict[str, Any] = manifest["observation_space"]
        self.action_space: dict[str, Any] = manifest["action_space"]
        self.discrete = self.action_space.get("type") == "discrete"
        self.obs_dim = int(np.prod(self.observation_space.get("shape", [0])))

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path, providers: Sequence[str] | None = None) -> OnnxPolicy:
        """Read ``policy.json``, verify every listed file's SHA-256, open the ONNX sessions."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        files = manifest.get("files")
        if not isinstance(files, Mapping) or POLICY_FILE not in files:
            raise PolicyLoadError(f"{folder / MANIFEST} lists no {POLICY_FILE} in 'files'")
        for name, entry in files.items():
            _verify_file(folder, name, entry)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        chosen = list(providers) if providers else ["CPUExecutionProvider"]
        sessions = {}
        for name in (POLICY_FILE, WEIGHTS_POLICY_FILE, ADAPTER_FILE):
            if name in files:
                path = folder / files[name].get("path", name)
                try:
                    sessions[name] = ort.InferenceSession(str(path), options, providers=chosen)
                except Exception as exc:  # noqa: BLE001 - ORT raises several private types
                    first = " ".join(str(exc).split())[:200]
                    raise PolicyLoadError(f"ONNX Runtime cannot load {path}: {first}") from None
        return cls(folder, manifest, sessions)

    @property
    def game(self) -> str:
        """The game id the policy was trained for."""
        return str(self.manifest.get("game"))

    @property
    def variant(self) -> dict[str, Any]:
        """The variant the policy was exported for (adapted to, or the game's default)."""
        return dict(self.manifest.get("variant") or {})

    @property
    def has_adapter(self) -> bool:
        """True if the folder holds adapter.onnx, policy_weights.onnx and weights.bin."""
        return all(name in self._sessions for name in (ADAPTER_FILE, WEIGHTS_POLICY_FILE)) \
            and WEIGHTS_FILE in self.manifest.get("files", {}) \
            and bool(self.manifest.get("weights"))

    # -- acting ----------------------------------------------------------------------------
    def outputs(self, obs: Any) -> dict[str, np.ndarray]:
        """Every output of ``policy.onnx`` for one observation ``[obs_dim]`` or a batch."""
        batch, single = self._batch(obs)
        names = [o.name for o in self._sessions[POLICY_FILE].get_outputs()]
        values = _run(self._sessions[POLICY_FILE], POLICY_FILE, names, {"observation": batch})
        return {n: (v[0] if single else v) for n, v in zip(names, values)}

    def act(self, obs: Any) -> np.ndarray:
        """The greedy action: an int64 index (discrete) or a clipped float32 vector."""
        return self.outputs(obs)["action"]

    def sample(self, obs: Any, rng: np.random.Generator,
               weights: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw from the policy's distribution: ``(env_action, policy_action)``.

        The adapter takes ``policy_action``: the action index, or the Gaussian sample
        before :meth:`to_env_action` maps it to the env.
        """
        out = self.outputs(obs) if weights is None else self.outputs_with(weights, obs)
        if self.discrete:
            logits = np.asarray(out["logits"], dtype=np.float64)
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), -1)
            uniform = rng.random(cdf.shape[:-1] + (1,))
            index = np.minimum((uniform > cdf).sum(-1), cdf.shape[-1] - 1).astype(np.int64)
            return index + int(self.action_space.get("start", 0)), index
        mean, log_std = out["mean"], out["log_std"]
        action = (mean + np.exp(log_std) * rng.standard_normal(mean.shape)).astype(np.float32)
        return self.to_env_action(action), action

    def to_env_action(self, action: Any) -> np.ndarray:
        """A continuous policy-unit action as the env takes it: ``clip(center + scale * a)``."""
        scaling = self.manifest.get("action_scaling") or {}
        center = _floats(scaling.get("center", 0.0))
        scale = _floats(scaling.get("scale", 1.0))
        low = _floats(scaling.get("low", self.action_space.get("low", "-inf")))
        high = _floats(scaling.get("high", self.action_space.get("high", "inf")))
        env_action = center + scale * np.asarray(action, np.float32)
        return np.clip(env_action, low, high).astype(np.float32)

    def act_with(self, weights: Mapping[str, np.ndarray], obs: Any) -> np.ndarray:
        """The greedy action under ``weights`` (run through ``policy_weights.onnx``)."""
        return self.outputs_with(weights, obs)["action"]

    def outputs_with(self, weights: Mapping[str, np.ndarray], obs: Any) -> dict[str, np.ndarray]:
        """Every output of ``policy_weights.onnx`` for ``obs`` under ``weights``."""
        session = self._require(WEIGHTS_POLICY_FILE)
        batch, single = self._batch(obs)
        feeds = {"observation": batch, **self._weight_feeds(weights)}
        names = [o.name for o in session.get_outputs()]
        values = _run(session, WEIGHTS_POLICY_FILE, names, feeds)
        return {n: (v[0] if single else v) for n, v in zip(names, values)}

    # -- on-device adaptation --------------------------------------------------------------
    def load_weights(self) -> Weights:
        """The parameters from ``weights.bin``, keyed by input name, in manifest order."""
        self._require(ADAPTER_FILE)
        entry = self.manifest["files"][WEIGHTS_FILE]
        raw = (self.folder / entry.get("path", WEIGHTS_FILE)).read_bytes()
        weights: Weights = {}
        for spec in self.manifest["weights"]:
            start, count = int(spec["offset_bytes"]), int(spec["count"])
            if start % 4 or start + 4 * count > len(raw):
                raise PolicyLoadError(f"{WEIGHTS_FILE}: parameter {spec['name']!r} lies outside "
                                      f"the file ({len(raw)} bytes)")
            values = np.frombuffer(raw, dtype="<f4", count=count, offset=start)
            weights[spec["input_name"]] = values.astype(np.float32).reshape(spec["shape"])
        return weights

    def adapt(self, observations: Any, actions: Any, advantages: Any,
              inner_lr: float | None = None, weights: Mapping[str, np.ndarray] | None = None
              ) -> Weights:
        """One inner policy-gradient step with ``adapter.onnx``; returns the new weights.

        ``weights`` defaults to :meth:`load_weights`; ``inner_lr`` to the manifest's.
        ``observations`` ``[N, obs_dim]``, ``actions`` ``[N]`` (indices) or ``[N, act_dim]``,
        ``advantages`` ``[N]``.
        """
        session = self._require(ADAPTER_FILE)
        weights = self.load_weights() if weights is None else weights
        lr = float(self.manifest["adapter"]["inner_lr"] if inner_lr is None else inner_lr)
        obs, _ = self._batch(observations)
        acts = np.asarray(actions, dtype=np.int64 if self.discrete else np.float32)
        acts = acts.reshape(-1) if self.discrete else acts.reshape(-1, acts.shape[-1])
        adv = np.asarray(advantages, dtype=np.float32).reshape(-1)
        if not len(obs) == len(acts) == len(adv) or len(obs) == 0:
            raise PolicyLoadError(f"adapt: {len(obs)} observations, {len(acts)} actions and "
                                  f"{len(adv)} advantages; they must be as many, at least one")
        feeds = {**self._weight_feeds(weights), "observations": obs, "actions": acts,
                 "advantages": adv, "inner_lr": np.asarray(lr, dtype=np.float32)}
        names = [f"new_{name}" for name in self.weight_names]
        values = _run(session, ADAPTER_FILE, names, feeds)
        return {name: value for name, value in zip(self.weight_names, values)}

    @property
    def weight_names(self) -> list[str]:
        """The parameter input names in manifest (``weights.bin``) order."""
        return [spec["input_name"] for spec in self.manifest.get("weights") or []]

    # -- helpers ---------------------------------------------------------------------------
    def _require(self, name: str) -> ort.InferenceSession:
        if not self.has_adapter:
            raise PolicyLoadError(f"{self.folder} has no adapter (export it with --with-adapter)")
        return self._sessions[name]

    def _weight_feeds(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [name for name in self.weight_names if name not in weights]
        if missing:
            raise PolicyLoadError(f"weights lack parameter {missing[0]!r}")
        return {name: np.ascontiguousarray(weights[name], dtype=np.float32)
                for name in self.weight_names}

    def _batch(self, obs: Any) -> tuple[np.ndarray, bool]:
        array = np.asarray(obs, dtype=np.float32)
        single = array.ndim <= 1
        batch = array.reshape(1, -1) if single else array.reshape(array.shape[0], -1)
        if batch.shape[1] != self.obs_dim:
            raise PolicyLoadError(f"observation has {batch.shape[1]} values; the policy "
                                  f"expects {self.obs_dim}")
        return np.ascontiguousarray(batch), single


def _run(session: ort.InferenceSession, what: str, names: list[str],
         feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        return session.run(names, feeds)
    except Exception as exc:  # noqa: BLE001 - ORT raises several private types
        raise PolicyLoadError(f"ONNX Runtime failed to run {what}: "
                              f"{' '.join(str(exc).split())[:200]}") from None


def _floats(value: Any) -> np.ndarray:
    """Numbers or the manifest's "inf" / "-inf" strings as a float32 array."""
    return np.asarray(value, dtype=np.float64).astype(np.float32)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed ``policy.json`` of ``folder``, with its format checked."""
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise PolicyLoadError(f"{folder} is not a folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyLoadError(f"{folder} has no {MANIFEST}; is it an exported policy?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyLoadError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise PolicyLoadError(f"{path} has format {found!r}; this loader reads {FORMAT!r}")
    for key in ("observation_space", "action_space", "files"):
        if not isinstance(manifest.get(key), dict):
            raise PolicyLoadError(f"{path} lacks {key!r}")
    return manifest


def _verify_file(folder: Path, name: str, entry: Any) -> None:
    if not isinstance(entry, Mapping) or "sha256" not in entry:
        raise PolicyLoadError(f"{folder / MANIFEST}: entry of {name!r} in 'files' has no sha256")
    relative = Path(str(entry.get("path", name)))
    if relative.is_absolute() or ".." in relative.parts:
        raise PolicyLoadError(f"{folder / MANIFEST}: path of {name!r} leaves the folder")
    path = folder / relative
    if not path.is_file():
        raise PolicyLoadError(f"{path} is missing (listed in {MANIFEST})")
    if "bytes" in entry and path.stat().st_size != int(entry["bytes"]):
        raise PolicyLoadError(f"{path} has {path.stat().st_size} bytes, {MANIFEST} says "
                              f"{entry['bytes']}: the file was changed or truncated")
    if sha256_of(path) != str(entry["sha256"]).lower():
        raise PolicyLoadError(f"{path} does not match its sha256 in {MANIFEST}: "
                              f"the file was changed or corrupted")
