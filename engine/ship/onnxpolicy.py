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

A recurrent export (RL²) and a context export (task inference) adapt as they play, in a
memory the game carries over every episode of a level: a :class:`Memory` (the GRU state, the
previous action and reward, the episode-start flag) or a :class:`ContextMemory` (the task
posterior's two running sums, the episode's normals and ``z``). One loop plays both; each call
is one step::

    memory = policy.new_level()                         # a new level: everything reset
    for episode in range(episodes):
        observation, _ = env.reset()
        memory.new_episode()                            # rl2: episode_start = 1; context:
        while not done:                                 # the episode's e (and z)
            action = policy.act(observation, memory)    # one step (context, z_update "step":
                                                        # z from the posterior now)
            observation, reward, terminated, truncated, _ = env.step(action)
            memory.reward(reward, observation)          # the step's outcome: context runs
                                                        # encoder.onnx on it (rl2 needs
                                                        # only the reward)

The memory reset happens at a new level only (``new_level``): what it carried from the
earlier episodes of the level is how the policy adapts. A context export's ``z`` is the
posterior mean, or with the manifest's ``context.latent_mode`` ``"sample"``
``mean + sqrt(variance) * e``, ``e`` standard normals drawn once per episode from the
memory's generator (or given as ``memory.new_episode(normal=e)``); with
``context.z_update`` ``"step"`` (the default) the memory makes ``z`` from the current
posterior before every call, with ``"episode"`` once, at the episode's start.

A sampled export (``--action sampled``) takes a ``noise`` input: the loader fills it with
uniform numbers from ``rng`` (or the policy's own generator), or takes them as ``noise=``.
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
ENCODER_FILE = "encoder.onnx"
SUM_NAMES = ("precision_sum", "weighted_sum")  # a context export's running sums

Weights = dict[str, np.ndarray]  # parameter input name (e.g. "body_0_weight") -> float32 array


class PolicyLoadError(Exception):
    """A policy folder is missing, malformed or tampered with, or an input is wrong (one line)."""


class Memory:
    """What a recurrent policy carries from step to step on one level, one row per batch row
    (agent): made by :meth:`OnnxPolicy.new_level`, advanced by every call with it."""

    def __init__(self, state: np.ndarray, prev_action: np.ndarray) -> None:
        batch = len(state)
        self.state = state  # float32 [batch, state_size]: zeros at a new level
        self.prev_action = prev_action  # int64 [batch] (-1: none) or float32 [batch, act_dim]
        self.prev_reward = np.zeros(batch, np.float32)
        self.episode_start = np.ones(batch, np.float32)

    @property
    def batch(self) -> int:
        """The rows (agents) this memory holds."""
        return len(self.state)

    def reward(self, reward: Any, next_observation: Any = None) -> None:
        """The reward(s) the last action got; call it after every ``env.step`` (the next
        observation, which a context memory needs, is the next call's input here)."""
        self.prev_reward = _rows(reward, self.batch)

    def new_episode(self) -> None:
        """A new episode of the same level: ``episode_start`` 1; the state carries over."""
        self.episode_start = np.ones(self.batch, np.float32)

    def played(self, action: Any) -> None:
        """The action(s) the game really played, when not the ``action`` output (an index,
        or the env action)."""
        array = np.asarray(action, dtype=self.prev_action.dtype)
        self.prev_action = np.ascontiguousarray(array.reshape(self.prev_action.shape))

    def feeds(self) -> dict[str, np.ndarray]:
        """The recurrent inputs of the next call."""
        return {"prev_action": self.prev_action, "prev_reward": self.prev_reward,
                "episode_start": self.episode_start, "state": self.state}

    def advance(self, outputs: Mapping[str, np.ndarray], observation: Any = None) -> None:
        """After a call: its ``state_out`` and ``action`` are the next call's inputs."""
        self.state = np.asarray(outputs["state_out"], np.float32)
        self.played(outputs["action"])
        self.episode_start = np.zeros(self.batch, np.float32)


class ContextMemory:
    """What a context policy carries over the episodes of one level, one row per batch row
    (agent): the posterior's sums (the prior at a new level) with its mean and variance,
    this episode's standard normals ``normal`` (``None``: ``z`` is the posterior mean) and
    the ``z`` last fed (``z_update`` ``"step"``: made from the current posterior at every
    call; ``"episode"``: at the episode's start, held), and the step in flight (the
    observation acted on, the action played) until :meth:`reward` reports its outcome.
    Made by :meth:`OnnxPolicy.new_level`."""

    def __init__(self, policy: OnnxPolicy, batch: int, latent_size: int,
                 rng: np.random.Generator) -> None:
        self._encode = policy.encode
        self.sample_latent = policy.latent_mode == "sample"
        self.per_step = policy.z_update == "step"
        self.rng = rng  # draws a sampled z's standard normals
        self.action_dtype = np.int64 if policy.discrete else np.float32
        self.action_shape = (batch,) if policy.discrete else (batch, policy.action_dim)
        self.precision_sum = np.ones((batch, latent_size), np.float32)  # the prior
        self.weighted_sum = np.zeros((batch, latent_size), np.float32)
        self.posterior_mean = np.zeros((batch, latent_size), np.float32)
        self.posterior_variance = np.ones((batch, latent_size), np.float32)
        self.normal: np.ndarray | None = None  # this episode's e, drawn at its start
        self.z: np.ndarray | None = None  # set at each episode's start (and every step)
        self.observation: np.ndarray | None = None  # the step in flight
        self.action: np.ndarray | None = None

    @property
    def batch(self) -> int:
        """The rows (agents) this memory holds."""
        return len(self.precision_sum)

    def new_episode(self, normal: Any = None) -> None:
        """A new episode of the same level: its standard normals ``normal``
        ``[batch, latent_size]`` (latent mode ``sample``; default: drawn from :attr:`rng`)
        and ``z`` from the posterior so far, its mean or ``mean + sqrt(variance) * normal``."""
        shape = self.posterior_mean.shape
        drawn = None
        if self.sample_latent or normal is not None:
            drawn = np.asarray(self.rng.standard_normal(shape) if normal is None else normal,
                               np.float32)
            if drawn.size != self.posterior_mean.size:
                raise PolicyLoadError(f"normal must be standard normals shaped {list(shape)}, "
                                      f"got {list(drawn.shape)}")
        self.normal = None if drawn is None else drawn.reshape(shape)
        self.z = self._latent()
        self.observation = self.action = None

    def _latent(self) -> np.ndarray:
        """``z`` from the current posterior and this episode's normals."""
        if self.normal is None:
            return self.posterior_mean.copy()
        return (self.posterior_mean + np.sqrt(self.posterior_variance) * self.normal
                ).astype(np.float32)

    def feeds(self) -> dict[str, np.ndarray]:
        """The context input of the next call: ``z``, made now from the current posterior
        (``z_update`` ``"step"``), else this episode's (made now if the episode started
        without :meth:`new_episode`)."""
        if self.z is None:
            self.new_episode()
        elif self.per_step:
            self.z = self._latent()
        assert self.z is not None
        return {"z": self.z}

    def advance(self, outputs: Mapping[str, np.ndarray], observation: Any = None) -> None:
        """After a call: the observation and ``action`` are the step in flight."""
        if self.observation is not None:
            raise PolicyLoadError("the previous step's outcome was not reported: call "
                                  "memory.reward(reward, next_observation) after every step")
        self.observation = np.asarray(observation, np.float32)
        self.played(outputs["action"])

    def played(self, action: Any) -> None:
        """The action(s) the game really played, when not the ``action`` output (an index,
        or the env action)."""
        array = np.asarray(action, dtype=self.action_dtype)
        self.action = np.ascontiguousarray(array.reshape(self.action_shape))

    def reward(self, reward: Any, next_observation: Any = None) -> None:
        """The step's outcome, after every ``env.step``: its reward(s) and the observation(s)
        it led to. Runs ``encoder.onnx`` on the transition: the sums take it in."""
        if self.observation is None or self.action is None:
            raise PolicyLoadError("memory.reward: no step in flight; call "
                                  "policy.act(observation, memory) first")
        if next_observation is None:
            raise PolicyLoadError("a context memory needs the step's next observation: "
                                  "memory.reward(reward, next_observation)")
        following = np.asarray(next_observation, np.float32)
        if following.size != self.observation.size:
            raise PolicyLoadError(f"the next observation has {following.size} values; the "
                                  f"step's observation had {self.observation.size}")
        out = self._encode({"observation": self.observation, "action": self.action,
                            "reward": _rows(reward, self.batch),
                            "next_observation": following.reshape(self.observation.shape),
                            "precision_sum": self.precision_sum,
                            "weighted_sum": self.weighted_sum})
        self.precision_sum, self.weighted_sum = out["precision_sum_out"], out["weighted_sum_out"]
        self.posterior_mean = out["posterior_mean"]
        self.posterior_variance = out["posterior_variance"]
        self.observation = self.action = None


LevelMemory = Memory | ContextMemory  # what a recurrent or context export carries


def _rows(values: Any, batch: int) -> np.ndarray:
    """A number, or one per row, as float32 ``[batch]``."""
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    return np.broadcast_to(array, (batch,)).astype(np.float32)


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
                 sessions: dict[str, ort.InferenceSession], seed: int | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self._sessions = sessions
        self.observation_space: dict[str, Any] = manifest["observation_space"]
        self.action_space: dict[str, Any] = manifest["action_space"]
        self.discrete = self.action_space.get("type") == "discrete"
        self.obs_dim = int(np.prod(self.observation_space.get("shape", [0])))
        self._inputs = {value.name: value.shape for value in sessions[POLICY_FILE].get_inputs()}
        self.rng = np.random.default_rng(seed)  # fills a sampled export's noise by default

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path, providers: Sequence[str] | None = None,
             seed: int | None = None) -> OnnxPolicy:
        """Read ``policy.json``, verify every listed file's SHA-256, open the ONNX sessions
        (``seed``: of :attr:`rng`, the default source of a sampled export's noise)."""
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
        for name in (POLICY_FILE, WEIGHTS_POLICY_FILE, ADAPTER_FILE, ENCODER_FILE):
            if name in files:
                path = folder / files[name].get("path", name)
                try:
                    sessions[name] = ort.InferenceSession(str(path), options, providers=chosen)
                except Exception as exc:  # noqa: BLE001 - ORT raises several private types
                    first = " ".join(str(exc).split())[:200]
                    raise PolicyLoadError(f"ONNX Runtime cannot load {path}: {first}") from None
        if isinstance(manifest.get("context"), Mapping) and ENCODER_FILE not in sessions:
            raise PolicyLoadError(f"{folder / MANIFEST} is a context export but lists no "
                                  f"{ENCODER_FILE} in 'files'")
        return cls(folder, manifest, sessions, seed)

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

    @property
    def recurrent(self) -> bool:
        """True for a recurrent export: every call takes and advances a :class:`Memory`."""
        return "state" in self._inputs

    @property
    def context(self) -> bool:
        """True for a context export: every call takes a :class:`ContextMemory`'s ``z``,
        and every step's outcome updates its sums (``encoder.onnx``)."""
        return "z" in self._inputs and ENCODER_FILE in self._sessions

    @property
    def has_memory(self) -> bool:
        """True for an export that adapts as it plays (recurrent or context): every call
        takes the memory of :meth:`new_level`."""
        return self.recurrent or self.context

    @property
    def latent_mode(self) -> str:
        """A context export's ``z``: ``"mean"`` (the posterior mean) or ``"sample"``."""
        return str((self.manifest.get("context") or {}).get("latent_mode", "mean"))

    @property
    def z_update(self) -> str:
        """When a context export's ``z`` follows the posterior: ``"step"`` (before every
        call) or ``"episode"`` (at each episode's start; a manifest without the field)."""
        rule = (self.manifest.get("context") or {}).get("z_update", "episode")
        if rule not in ("step", "episode"):
            raise PolicyLoadError(f"{self.folder / MANIFEST}: context.z_update must be "
                                  f"'step' or 'episode', got {rule!r}")
        return str(rule)

    @property
    def takes_noise(self) -> bool:
        """True for a sampled export: ``action`` is drawn with the ``noise`` input."""
        return "noise" in self._inputs

    @property
    def action_mode(self) -> str:
        """``"greedy"`` or ``"sampled"``: what the ``action`` output is."""
        return "sampled" if self.takes_noise else "greedy"

    @property
    def noise_size(self) -> int:
        """Uniform numbers per row the ``noise`` input takes (0 for a greedy export)."""
        shape = self._inputs.get("noise") or [0, 0]
        return int(shape[1])

    @property
    def action_dim(self) -> int:
        """Actions (discrete) or action dimensions (continuous)."""
        if self.discrete:
            return int(self.action_space.get("n", 0))
        return int(np.prod(self.action_space.get("shape", [1])))

    def new_level(self, batch: int = 1, rng: np.random.Generator | None = None
                  ) -> LevelMemory:
        """The memory at a new level. Recurrent: state zeros, no previous action (-1 or the
        action space's center), previous reward 0, episode start 1. Context: the sums at
        the prior (a sampled ``z``'s normals from ``rng``, default :attr:`rng`)."""
        if self.context:
            return ContextMemory(self, batch, int(self._inputs["z"][1]), rng or self.rng)
        if not self.recurrent:
            raise PolicyLoadError(f"{self.folder} is not a recurrent export (nor a context "
                                  f"one): it keeps no memory; call act(observation)")
        state = np.zeros((batch, int(self._inputs["state"][1])), np.float32)
        if self.discrete:
            return Memory(state, np.full(batch, -1, np.int64))
        center = _floats((self.manifest.get("action_scaling") or {}).get("center", 0.0))
        return Memory(state, np.ascontiguousarray(np.broadcast_to(center,
                                                                  (batch, self.action_dim))))

    def encode(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output of a context export's ``encoder.onnx`` (the sums after one
        transition, and their posterior's mean and variance)."""
        session = self._sessions.get(ENCODER_FILE)
        if session is None:
            raise PolicyLoadError(f"{self.folder} is not a context export: it has no "
                                  f"{ENCODER_FILE}")
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, _run(session, ENCODER_FILE, names, dict(feeds))))

    # -- acting ----------------------------------------------------------------------------
    def outputs(self, obs: Any, memory: LevelMemory | None = None, *, noise: Any = None,
                rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Every output of ``policy.onnx`` for one observation ``[obs_dim]`` or a batch.

        A recurrent or context export needs its ``memory`` and advances it (one call, one
        step; a context memory then waits for the step's outcome, ``memory.reward``). A
        sampled export takes ``noise`` ``[batch, noise_size]`` or draws it from ``rng``
        (default :attr:`rng`).
        """
        batch, single = self._batch(obs)
        feeds = {"observation": batch, **self._memory_feeds(memory, len(batch))}
        if self.takes_noise:
            feeds["noise"] = self._noise(len(batch), noise, rng)
        elif noise is not None:
            raise PolicyLoadError(f"{self.folder} has a greedy action and takes no noise "
                                  f"(export with --action sampled)")
        names = [o.name for o in self._sessions[POLICY_FILE].get_outputs()]
        out = dict(zip(names, _run(self._sessions[POLICY_FILE], POLICY_FILE, names, feeds)))
        if memory is not None:
            memory.advance(out, batch)
        return {n: (v[0] if single else v) for n, v in out.items()}

    def act(self, obs: Any, memory: LevelMemory | None = None, *, noise: Any = None,
            rng: np.random.Generator | None = None) -> np.ndarray:
        """The ``action`` output (greedy, or sampled with noise): an int64 index (discrete) or a
        clipped float32 vector; see :meth:`outputs`."""
        return self.outputs(obs, memory, noise=noise, rng=rng)["action"]

    def sample(self, obs: Any, rng: np.random.Generator,
               weights: Mapping[str, np.ndarray] | None = None,
               memory: LevelMemory | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw from the policy's distribution outputs: ``(env_action, policy_action)``.

        The adapter takes ``policy_action``: the action index, or the Gaussian sample
        before :meth:`to_env_action` maps it to the env. A recurrent ``memory`` records the
        action drawn as the one played (a recurrent or context ``memory``).
        """
        if weights is None:
            out = self.outputs(obs, memory, rng=rng)
        else:
            out = self.outputs_with(weights, obs)
        if self.discrete:
            logits = np.asarray(out["logits"], dtype=np.float64)
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), -1)
            uniform = rng.random(cdf.shape[:-1] + (1,))
            index = np.minimum((uniform > cdf).sum(-1), cdf.shape[-1] - 1).astype(np.int64)
            drawn = (index + int(self.action_space.get("start", 0)), index)
        else:
            mean, log_std = out["mean"], out["log_std"]
            action = (mean + np.exp(log_std) * rng.standard_normal(mean.shape)).astype(np.float32)
            drawn = (self.to_env_action(action), action)
        if memory is not None:
            memory.played(drawn[1] if self.discrete else drawn[0])
        return drawn

    def to_policy_units(self, env_action: Any) -> np.ndarray:
        """A continuous env action in policy units, ``(a - center) / scale``."""
        scaling = self.manifest.get("action_scaling") or {}
        center = _floats(scaling.get("center", 0.0))
        scale = _floats(scaling.get("scale", 1.0))
        return ((np.asarray(env_action, np.float32) - center) / scale).astype(np.float32)

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
        if self.has_memory:
            kind, where = (("recurrent", "its state") if self.recurrent else
                           ("context", "its task posterior"))
            raise PolicyLoadError(f"{self.folder} is a {kind} export: it adapts in {where} "
                                  f"as it plays (memory = policy.new_level(); "
                                  f"policy.act(observation, memory)) and has no adapter")
        if not self.has_adapter:
            raise PolicyLoadError(f"{self.folder} has no adapter (export it with --with-adapter)")
        return self._sessions[name]

    def _weight_feeds(self, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [name for name in self.weight_names if name not in weights]
        if missing:
            raise PolicyLoadError(f"weights lack parameter {missing[0]!r}")
        return {name: np.ascontiguousarray(weights[name], dtype=np.float32)
                for name in self.weight_names}

    def _memory_feeds(self, memory: LevelMemory | None, batch: int) -> dict[str, np.ndarray]:
        if not self.has_memory:
            if memory is not None:
                raise PolicyLoadError(f"{self.folder} is not a recurrent export (nor a "
                                      f"context one): it takes no memory")
            return {}
        kind = "recurrent" if self.recurrent else "context"
        if memory is None:
            raise PolicyLoadError(f"{self.folder} is a {kind} export: pass its memory "
                                  f"(memory = policy.new_level(); policy.act(observation, "
                                  f"memory))")
        if not isinstance(memory, ContextMemory if self.context else Memory):
            raise PolicyLoadError(f"{self.folder} is a {kind} export: pass the memory its "
                                  f"new_level() made")
        if memory.batch != batch:
            raise PolicyLoadError(f"the memory holds {memory.batch} rows, the observation "
                                  f"{batch}; make it with policy.new_level(batch={batch})")
        return memory.feeds()

    def _noise(self, batch: int, noise: Any, rng: np.random.Generator | None) -> np.ndarray:
        if noise is None:
            return (rng or self.rng).random((batch, self.noise_size), dtype=np.float32)
        array = np.asarray(noise, dtype=np.float32)
        if array.ndim == 1 and batch == 1:
            array = array.reshape(1, -1)
        if array.shape != (batch, self.noise_size):
            raise PolicyLoadError(f"noise must be uniform(0, 1) float32 numbers shaped "
                                  f"[{batch}, {self.noise_size}], got {list(array.shape)}")
        return np.ascontiguousarray(array)

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


MAX_MANIFEST_BYTES = 16 * 2**20  # gameadapt.limits.MAX_TEXT_BYTES (this file stands alone)
MAX_MANIFEST_NESTING = 32  # gameadapt.limits.MAX_NESTING
BOUND_STRINGS = ("inf", "-inf")  # unbounded space limits, as the manifest writes them


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed ``policy.json`` of ``folder``: UTF-8 (a BOM accepted), at most
    :data:`MAX_MANIFEST_BYTES` and :data:`MAX_MANIFEST_NESTING` deep, its format and every
    field this loader reads checked (:func:`check_manifest`)."""
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise PolicyLoadError(f"{folder} is not a folder")
    manifest = _parse_manifest(folder, path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise PolicyLoadError(f"{path} has format {found!r}; this loader reads {FORMAT!r}")
    for key in ("observation_space", "action_space", "files"):
        if not isinstance(manifest.get(key), dict):
            raise PolicyLoadError(f"{path} lacks {key!r}")
    check_manifest(manifest, path)
    return manifest


def _parse_manifest(folder: Path, path: Path) -> Any:
    """The JSON value of ``policy.json``, bounded in size and nesting."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise PolicyLoadError(f"{folder} has no {MANIFEST}; is it an exported policy?") from None
    except OSError as exc:
        raise PolicyLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise PolicyLoadError(f"{path} is larger than the limit of {MAX_MANIFEST_BYTES} bytes")
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise PolicyLoadError(f"{path} is not UTF-8 text (save it as UTF-8)") from None
    except RecursionError:
        raise _too_deep(path) from None
    except json.JSONDecodeError as exc:
        raise PolicyLoadError(f"cannot read {path}: {' '.join(str(exc).split())}") from None
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_MANIFEST_NESTING:  # as gameadapt.textfiles.check_nesting counts
            raise _too_deep(path)
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict)
                                                      else item))
    return value


def _too_deep(path: Path) -> PolicyLoadError:
    return PolicyLoadError(f"{path} is nested deeper than the limit of {MAX_MANIFEST_NESTING} "
                           f"levels")


def _field_error(path: Path, field: str, rule: str, value: Any) -> PolicyLoadError:
    shown = repr(value)
    return PolicyLoadError(f"{path}: {field} must be {rule}, got "
                           f"{shown if len(shown) <= 60 else shown[:57] + '...'}")


def _integer(path: Path, field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _field_error(path, field, f"an integer >= {low}", value)
    return value


def _shape(path: Path, field: str, value: Any) -> int:
    """A list of sizes >= 1; returns their product."""
    if not isinstance(value, list):
        raise _field_error(path, field, "a list of integers >= 1", value)
    return int(np.prod([_integer(path, f"{field}[{i}]", v, 1) for i, v in enumerate(value)]))


def _numbers(path: Path, field: str, value: Any, count: int) -> None:
    """``count`` numbers (or "inf" / "-inf"), possibly nested as the space's shape."""
    flat = np.asarray(value, dtype=object).reshape(-1) if isinstance(value, list) else None
    if flat is None or len(flat) != count or not all(
            v in BOUND_STRINGS or (isinstance(v, (int, float)) and not isinstance(v, bool))
            for v in flat.tolist()):
        raise _field_error(path, field, f"a list of {count} numbers (or \"inf\", \"-inf\")",
                           value)


def _optional_object(path: Path, manifest: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = manifest.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise _field_error(path, key, "an object (or null)", value)
    return value or {}


def check_manifest(manifest: Mapping[str, Any], path: Path) -> None:
    """Every field the loader reads, with its type (one line naming the first bad one)."""
    _shape(path, "observation_space.shape", manifest["observation_space"].get("shape"))
    action_dim = _check_action_space(path, manifest["action_space"])
    scaling = _optional_object(path, manifest, "action_scaling")
    for key in ("center", "scale", "low", "high"):
        if key in scaling:
            _numbers(path, f"action_scaling.{key}", scaling[key], action_dim)
    _check_weights(path, manifest.get("weights"))
    adapter = _optional_object(path, manifest, "adapter")
    if "inner_lr" in adapter and (isinstance(adapter["inner_lr"], bool)
                                  or not isinstance(adapter["inner_lr"], (int, float))):
        raise _field_error(path, "adapter.inner_lr", "a number", adapter["inner_lr"])
    recurrent = _optional_object(path, manifest, "recurrent")
    if "state_size" in recurrent:
        _integer(path, "recurrent.state_size", recurrent["state_size"], 1)
    context = _optional_object(path, manifest, "context")
    if "latent_size" in context:
        _integer(path, "context.latent_size", context["latent_size"], 1)
    if context.get("latent_mode", "mean") not in ("mean", "sample"):
        raise _field_error(path, "context.latent_mode", "'mean' or 'sample'",
                           context["latent_mode"])
    _optional_object(path, manifest, "variant")


def _check_action_space(path: Path, space: Mapping[str, Any]) -> int:
    """The action space's fields; returns the action dimensions (1 for discrete)."""
    if space.get("type") == "discrete":
        _integer(path, "action_space.n", space.get("n"), 1)
        if "start" in space and (isinstance(space["start"], bool)
                                 or not isinstance(space["start"], int)):
            raise _field_error(path, "action_space.start", "an integer", space["start"])
        return 1
    if space.get("type") != "box":
        raise _field_error(path, "action_space.type", "'discrete' or 'box'", space.get("type"))
    count = _shape(path, "action_space.shape", space.get("shape"))
    for key in ("low", "high"):
        _numbers(path, f"action_space.{key}", space.get(key), count)
    return count


def _check_weights(path: Path, weights: Any) -> None:
    """``weights``: null or a list of entries as ``WeightSpec.to_json`` writes them."""
    if weights is None:
        return
    if not isinstance(weights, list):
        raise _field_error(path, "weights", "a list (or null)", weights)
    for index, spec in enumerate(weights):
        field = f"weights[{index}]"
        if not isinstance(spec, Mapping):
            raise _field_error(path, field, "an object", spec)
        for key in ("name", "input_name"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise _field_error(path, f"{field}.{key}", "a non-empty string", spec.get(key))
        size = _shape(path, f"{field}.shape", spec.get("shape"))
        _integer(path, f"{field}.offset_bytes", spec.get("offset_bytes"), 0)
        if _integer(path, f"{field}.count", spec.get("count"), 0) != size:
            raise _field_error(path, f"{field}.count", f"the shape's size {size}",
                               spec["count"])


def _verify_file(folder: Path, name: str, entry: Any) -> None:
    where = folder / MANIFEST
    if not isinstance(entry, Mapping) or "sha256" not in entry:
        raise PolicyLoadError(f"{where}: entry of {name!r} in 'files' has no sha256")
    sha = entry["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF"
                                                         for c in sha):
        raise _field_error(where, f"files.{name}.sha256", "64 hex digits", sha)
    if not isinstance(entry.get("path", name), str):
        raise _field_error(where, f"files.{name}.path", "a string", entry["path"])
    if "bytes" in entry:
        _integer(where, f"files.{name}.bytes", entry["bytes"], 0)
    relative = Path(str(entry.get("path", name)))
    if relative.is_absolute() or ".." in relative.parts:
        raise PolicyLoadError(f"{where}: path of {name!r} leaves the folder")
    path = folder / relative
    if not path.is_file():
        raise PolicyLoadError(f"{path} is missing (listed in {MANIFEST})")
    if "bytes" in entry and path.stat().st_size != int(entry["bytes"]):
        raise PolicyLoadError(f"{path} has {path.stat().st_size} bytes, {MANIFEST} says "
                              f"{entry['bytes']}: the file was changed or truncated")
    if sha256_of(path) != sha.lower():
        raise PolicyLoadError(f"{path} does not match its sha256 in {MANIFEST}: "
                              f"the file was changed or corrupted")
