"""The manifest ``policy.json``: every field a game build reads, and what each output means.

The format is documented field by field in ``exports/README.md``; :func:`manifest` assembles
it from the export's parts. Non-finite floats are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"`` (:func:`json_safe`), so the file is strict JSON for every reader.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx
import torch

from .. import __version__
from ..algorithm import InnerLoop
from ..game import space_to_json
from ..learn.policy import MLPPolicy
from .adapter import LOSS_DESCRIPTION, WeightSpec
from .formats import ADAPTER_FILE, FORMAT, WEIGHTS_FILE, WEIGHTS_POLICY_FILE
from .onnx_export import model_opset
from .sources import PolicySource


def io_description(policy: MLPPolicy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``inputs`` and ``outputs`` entries of ``policy.onnx`` for the manifest."""
    inputs: list[dict[str, Any]] = [{"name": "observation", "dtype": "float32", "shape": ["batch", policy.obs_dim],
               "meaning": "raw observations, flattened, as the game's gymnasium view returns "
                          "them; normalisation (running mean/variance, clip to +-10) is "
                          "inside the graph"}]
    n = policy.action_dim
    outputs: list[dict[str, Any]]
    if policy.discrete:
        outputs = [
            {"name": "action", "dtype": "int64", "shape": ["batch"],
             "meaning": "greedy action: argmax of the logits, the index passed to env.step"},
            {"name": "logits", "dtype": "float32", "shape": ["batch", n],
             "meaning": "unnormalised log-probabilities of the categorical policy "
                        "(softmax gives the action probabilities)"},
        ]
    else:
        outputs = [
            {"name": "action", "dtype": "float32", "shape": ["batch", n],
             "meaning": "greedy action for env.step: clip(center + scale * mean, low, high) "
                        "with action_scaling's values (the Gaussian mean in env units, "
                        "clipped to the action space's bounds)"},
            {"name": "mean", "dtype": "float32", "shape": ["batch", n],
             "meaning": "mean of the diagonal Gaussian policy, in policy units"},
            {"name": "log_std", "dtype": "float32", "shape": ["batch", n],
             "meaning": "log standard deviation of the Gaussian (state-independent), policy "
                        "units; a sample a = mean + exp(log_std) * noise is played as "
                        "clip(center + scale * a, low, high)"},
        ]
    return inputs, outputs


def action_semantics(policy: MLPPolicy) -> str:
    """One sentence: what ``action`` (and the distribution outputs) mean for the game."""
    if policy.discrete:
        return ("discrete: 'action' is the greedy (argmax) action index in [0, n), passed "
                "unchanged to env.step; to sample, draw from softmax('logits')")
    return ("continuous: 'mean' and 'log_std' parametrise a diagonal Gaussian in policy units; "
            "the env takes clip(center + scale * a, low, high) of a policy-unit action a "
            "(see action_scaling); 'action' is that of the mean (greedy)")


def action_scaling(policy: MLPPolicy) -> dict[str, Any] | None:
    """``{center, scale, low, high}`` lists of a continuous policy (``None`` for discrete)."""
    if policy.discrete:
        return None

    def values(tensor: torch.Tensor) -> list[float]:
        return [float(v) for v in tensor.expand(policy.action_dim).tolist()]

    return {"center": values(policy.action_center), "scale": values(policy.action_scale),
            "low": values(policy.action_low), "high": values(policy.action_high)}


def json_safe(value: Any) -> Any:
    """Replace non-finite floats (unbounded spaces) by the strings "inf", "-inf", "nan".

    Strict JSON has no infinities, and game engines' JSON readers reject Python's
    ``Infinity``; the manifest stays valid JSON for every reader.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of ``data`` (every file's entry in the manifest)."""
    return hashlib.sha256(data).hexdigest()


def file_entries(staging: Path, names: Sequence[str], exporters: dict[str, str]
                 ) -> dict[str, dict[str, Any]]:
    """``files``: path, SHA-256, size and (ONNX files) opset and exporter of each file."""
    files = {}
    for name in names:
        data = (staging / name).read_bytes()
        entry: dict[str, Any] = {"path": name, "sha256": sha256_bytes(data), "bytes": len(data)}
        if name.endswith(".onnx"):
            entry["opset"] = model_opset(onnx.load_from_string(data))
            entry["exporter"] = exporters.get(name, "onnxruntime.quantization")
        files[name] = entry
    return files


def manifest(source: PolicySource, policy: MLPPolicy, opset: int, parts: dict[str, Any]
             ) -> dict[str, Any]:
    """The whole manifest (JSON-safe); ``parts`` are the export's own sections: ``files``,
    ``weights``, ``adapter``, ``verification``, ``latency_us``, ``quantization`` and the
    versions of ``onnxruntime`` and ``onnx``."""
    inputs, outputs = io_description(policy)
    return json_safe({
        "format": FORMAT,
        "game": source.spec.id,
        "agents": list(source.session.agents) or None,
        "variant": source.variant,
        "source": {"kind": source.kind, "path": str(source.path)},
        "observation_space": space_to_json(source.spec.observation_space),
        "action_space": space_to_json(source.spec.action_space),
        "action_semantics": action_semantics(policy),
        "action_scaling": action_scaling(policy),
        "inputs": inputs,
        "outputs": outputs,
        "opset": opset,
        "engine_version": __version__,
        "torch_version": torch.__version__,
        "provenance": source.provenance,
        "providers": source.providers,
        **parts,
    })


def adapter_entry(policy: MLPPolicy, inner: InnerLoop, gamma: float | None,
                  weights: Sequence[WeightSpec]) -> dict[str, Any]:
    """The manifest's ``adapter`` entry: how to run ``adapter.onnx`` and what it means."""
    n = policy.action_dim
    weight_inputs = [{"name": spec.input_name, "dtype": "float32", "shape": list(spec.shape),
                      "meaning": f"parameter {spec.name}"} for spec in weights]
    actions = ({"name": "actions", "dtype": "int64", "shape": ["N"],
                "meaning": "action indices taken at the observations"} if policy.discrete else
               {"name": "actions", "dtype": "float32", "shape": ["N", n],
                "meaning": "Gaussian samples in policy units (before action_scaling): "
                           "a = (env_action - center) / scale for an unclipped env action"})
    return {
        "inner_lr": inner.lr,
        "inner_objective_trained": inner.objective,
        "gamma": gamma,
        "loss": LOSS_DESCRIPTION,
        "file": ADAPTER_FILE,
        "inputs": weight_inputs + [
            {"name": "observations", "dtype": "float32", "shape": ["N", policy.obs_dim],
             "meaning": "raw observations (normalised inside the graph)"},
            actions,
            {"name": "advantages", "dtype": "float32", "shape": ["N"],
             "meaning": "advantage of each sample (e.g. standardised returns-to-go)"},
            {"name": "inner_lr", "dtype": "float32", "shape": [],
             "meaning": "step size of the SGD step (default: inner_lr above)"},
        ],
        "outputs": [{"name": f"new_{spec.input_name}", "dtype": "float32",
                     "shape": list(spec.shape), "meaning": f"adapted {spec.name}"}
                    for spec in weights],
        "policy_weights_file": WEIGHTS_POLICY_FILE,
        "policy_weights_inputs": ["observation"] + [spec.input_name for spec in weights],
        "weights_file": WEIGHTS_FILE,
    }
