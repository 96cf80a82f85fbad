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
import onnxruntime
import torch

from .. import __version__
from ..algorithm import InnerLoop
from ..game import space_to_json
from ..learn.context_policy import ContextPolicy
from ..learn.policy import ActionHead, MLPPolicy
from ..learn.posterior import PRIOR_PRECISION, PRIOR_WEIGHTED
from ..learn.ppo import ReturnScaled
from ..learn.recurrent import RecurrentPolicy
from .adapter import LOSS_DESCRIPTION, WeightSpec
from .formats import (
    ADAPTER_FILE,
    CONTEXT_INPUTS,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    FORMAT,
    LATENT_INPUT,
    NOISE_CLAMP,
    NOISE_INPUT,
    RECURRENT_INPUTS,
    STATE_OUTPUT,
    SUM_NAMES,
    WEIGHTS_FILE,
    WEIGHTS_POLICY_FILE,
    min_onnxruntime,
)
from .graphs import noise_size
from .onnx_export import model_opset
from .sources import PolicySource, ShippedPolicy

Z_MADE = {"step": "before every step", "episode": "once per episode, at its start"}
Z_WHEN = {"step": "before every policy.onnx call, from the current sums (the posterior of "
                  "every transition of the level so far)",
          "episode": "once per episode, at its start, from the current sums; held through "
                     "the episode"}


def io_description(policy: ShippedPolicy, action_mode: str = "greedy"
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``inputs`` and ``outputs`` entries of ``policy.onnx`` for the manifest."""
    inputs: list[dict[str, Any]] = [
        {"name": "observation", "dtype": "float32", "shape": ["batch", policy.obs_dim],
         "meaning": "raw observations, flattened, as the game's gymnasium view returns them"
                    + ("" if not isinstance(policy, MLPPolicy) else
                       "; normalisation (running mean/variance, clip to +-10) is inside the "
                       "graph")}]
    outputs = action_outputs(policy, action_mode)
    if isinstance(policy, RecurrentPolicy):
        inputs += recurrent_inputs(policy)
        outputs += recurrent_outputs(policy)
    if isinstance(policy, ContextPolicy):
        inputs.append({"name": LATENT_INPUT, "dtype": "float32",
                       "shape": ["batch", policy.latent_size],
                       "meaning": f"the latent task variable, made by the game "
                                  f"{Z_MADE[policy.z_update]} from the posterior (see "
                                  f"'context')"})
        outputs.append(value_output())
    if action_mode == "sampled":
        inputs.append({"name": NOISE_INPUT, "dtype": "float32",
                       "shape": ["batch", noise_size(policy)],
                       "meaning": "fresh uniform(0, 1) numbers every call, one row per batch row "
                                  "(see 'noise')"})
    return inputs, outputs


def action_outputs(policy: ActionHead, action_mode: str) -> list[dict[str, Any]]:
    """``action`` and the distribution's outputs."""
    n = policy.action_dim
    sampled = action_mode == "sampled"
    if policy.discrete:
        return [
            {"name": "action", "dtype": "int64", "shape": ["batch"],
             "meaning": ("sampled action index: argmax(logits - log(-log noise)) (Gumbel-max)"
                         if sampled else "greedy action: argmax of the logits")
                        + ", the index passed to env.step"},
            {"name": "logits", "dtype": "float32", "shape": ["batch", n],
             "meaning": "unnormalised log-probabilities of the categorical policy "
                        "(softmax gives the action probabilities)"},
        ]
    chosen = ("a sample a = mean + exp(log_std) * z, z standard normals from noise "
              "(Box-Muller)" if sampled else "the Gaussian mean")
    return [
        {"name": "action", "dtype": "float32", "shape": ["batch", n],
         "meaning": f"{action_mode} action for env.step: clip(center + scale * a, low, high) "
                    f"with action_scaling's values, a = {chosen}"},
        {"name": "mean", "dtype": "float32", "shape": ["batch", n],
         "meaning": "mean of the diagonal Gaussian policy, in policy units"},
        {"name": "log_std", "dtype": "float32", "shape": ["batch", n],
         "meaning": "log standard deviation of the Gaussian (state-independent), policy "
                    "units; a sample a = mean + exp(log_std) * noise is played as "
                    "clip(center + scale * a, low, high)"},
    ]


def recurrent_inputs(policy: RecurrentPolicy) -> list[dict[str, Any]]:
    """The recurrent graph's inputs after ``observation``."""
    prev_action = ({"name": "prev_action", "dtype": "int64", "shape": ["batch"],
                    "meaning": "the action index the game played at the previous step; -1 at "
                               "a new level (no action yet)"} if policy.discrete else
                   {"name": "prev_action", "dtype": "float32",
                    "shape": ["batch", policy.action_dim],
                    "meaning": "the env action the game played at the previous step; "
                               "action_scaling's center at a new level (no action yet)"})
    return [prev_action,
            {"name": "prev_reward", "dtype": "float32", "shape": ["batch"],
             "meaning": "the reward of the previous step; 0 at a new level"},
            {"name": "episode_start", "dtype": "float32", "shape": ["batch"],
             "meaning": "1 on the first step of every episode, else 0"},
            {"name": "state", "dtype": "float32", "shape": ["batch", policy.hidden_size],
             "meaning": "the recurrent state: zeros at a new level, then the previous call's "
                        "state_out"}]


def recurrent_outputs(policy: RecurrentPolicy) -> list[dict[str, Any]]:
    """The recurrent graph's outputs after the action's."""
    return [value_output(),
            {"name": STATE_OUTPUT, "dtype": "float32", "shape": ["batch", policy.hidden_size],
             "meaning": "the new recurrent state: feed it back as 'state' at the next step"}]


def value_output() -> dict[str, Any]:
    """The ``value`` output of the trial families' ``policy.onnx``."""
    return {"name": "value", "dtype": "float32", "shape": ["batch"],
            "meaning": "the value head's estimate of the discounted return to come, in units "
                       "of value_scale: value * value_scale is in the game's reward units "
                       "(not needed to play)"}


def value_scale(policy: ShippedPolicy) -> float | None:
    """The float that turns ``value`` into the game's reward units (the trial families'
    ``return_scale()``: a running std of discounted returns); ``None`` without a value."""
    return float(policy.return_scale()) if isinstance(policy, ReturnScaled) else None


def recurrent_entry(policy: RecurrentPolicy) -> dict[str, Any]:
    """The manifest's ``recurrent`` entry: the state, the reset rule and the call sequence."""
    none = -1 if policy.discrete else per_dimension(policy, policy.action_center)
    return {
        "state_size": policy.hidden_size,
        "state_input": "state",
        "state_output": STATE_OUTPUT,
        "inputs": list(RECURRENT_INPUTS),
        "reset": {"when": "at a new level (variant), before its first episode; never between "
                          "the episodes of one level",
                  "state": f"zeros [batch, {policy.hidden_size}]", "prev_action": none,
                  "prev_reward": 0.0, "episode_start": 1.0},
        "call_sequence": [
            "new level: state = zeros, prev_action = reset.prev_action, prev_reward = 0",
            "new episode: episode_start = 1 (state, prev_action and prev_reward carry over)",
            "every step: outputs = run(observation, prev_action, prev_reward, episode_start, "
            "state[, noise]); play outputs.action; then state = outputs.state_out, "
            "prev_action = the action played, prev_reward = the reward it got, "
            "episode_start = 0",
        ],
    }


def played_action_input(policy: ActionHead, name: str, meaning: str) -> dict[str, Any]:
    """An input that takes the action a game played: an index, or the env action."""
    if policy.discrete:
        return {"name": name, "dtype": "int64", "shape": ["batch"],
                "meaning": f"the action index the game played{meaning}, in [0, n)"}
    return {"name": name, "dtype": "float32", "shape": ["batch", policy.action_dim],
            "meaning": f"the env action the game played{meaning} (what it passed to env.step)"}


def encoder_io(policy: ContextPolicy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``inputs`` and ``outputs`` entries of ``encoder.onnx``."""
    latent = ["batch", policy.latent_size]
    observation = ["batch", policy.obs_dim]
    inputs = [{"name": "observation", "dtype": "float32", "shape": observation,
               "meaning": "the raw observation the action was played at"},
              played_action_input(policy, "action", " at that observation"),
              {"name": "reward", "dtype": "float32", "shape": ["batch"],
               "meaning": "the reward that action got"},
              {"name": "next_observation", "dtype": "float32", "shape": observation,
               "meaning": "the raw observation env.step returned (the last one of an "
                          "episode too)"},
              *({"name": name, "dtype": "float32", "shape": latent,
                 "meaning": f"the running sum, the previous call's {name}_out (at a new level "
                            f"the prior's {initial:g})"}
                for name, initial in zip(SUM_NAMES, (PRIOR_PRECISION, PRIOR_WEIGHTED)))]
    meanings = ("precision_sum + 1/sigma^2 of this transition", "weighted_sum + mu/sigma^2 "
                "of this transition", "weighted_sum_out / precision_sum_out",
                "1 / precision_sum_out")
    outputs = [{"name": name, "dtype": "float32", "shape": latent, "meaning": meaning}
               for name, meaning in zip(ENCODER_OUTPUTS, meanings)]
    assert [i["name"] for i in inputs] == list(ENCODER_INPUTS)
    return inputs, outputs


def latent_entry(policy: ContextPolicy, latent_mode: str) -> dict[str, Any]:
    """How the game makes ``z``: the formula, when (the ``z_update`` rule), and the normals
    a sampled ``z`` takes."""
    sampled = latent_mode == "sample"
    return {"input": LATENT_INPUT, "shape": ["batch", policy.latent_size],
            "formula": ("z = posterior_mean + sqrt(posterior_variance) * e" if sampled
                        else "z = posterior_mean"),
            "when": Z_WHEN[policy.z_update],
            "posterior": "posterior_mean = weighted_sum / precision_sum, posterior_variance "
                         "= 1 / precision_sum: encoder.onnx's last outputs (at a new level "
                         "the prior's: mean 0, variance 1)",
            "e": {"distribution": "standard normal, independent", "dtype": "float32",
                  "shape": ["batch", policy.latent_size],
                  "when": "drawn by the game once per episode, at its start"
                          + ("; every step of the episode makes its z with the same e"
                             if policy.z_update == "step" else "")}
            if sampled else None}


def call_sequence(policy: ContextPolicy, z: dict[str, Any]) -> list[str]:
    """The context entry's ``call_sequence`` for the policy's ``z_update`` rule."""
    latent = f"[batch, {policy.latent_size}]"
    act = ("outputs = policy.onnx(observation, z[, noise]); play outputs.action; "
           "next_observation, reward = env.step(outputs.action); then new = "
           "encoder.onnx(observation, action played, reward, next_observation, "
           "precision_sum, weighted_sum); precision_sum = new.precision_sum_out, "
           "weighted_sum = new.weighted_sum_out (posterior_mean, posterior_variance: the "
           "posterior of the new sums)")
    level = (f"new level: precision_sum = ones {latent}, weighted_sum = zeros {latent} "
             f"(the prior: posterior_mean 0, posterior_variance 1)")
    if policy.z_update == "episode":
        return [level, f"new episode: {z['formula']} from the current sums (the sums carry "
                       f"over)", f"every step: {act}"]
    if z["e"] is None:
        return [level, "new episode: nothing to do (the sums carry over)",
                f"every step: {z['formula']} from the current sums; {act}"]
    return [level, f"new episode: e = standard normals {latent}, held through the episode "
                   f"(the sums carry over)",
            f"every step: {z['formula']} from the current sums and this episode's e; {act}"]


def context_entry(policy: ContextPolicy, latent_mode: str) -> dict[str, Any]:
    """The manifest's ``context`` entry: the sums, how ``z`` is made, the call sequence."""
    inputs, outputs = encoder_io(policy)
    z = latent_entry(policy, latent_mode)
    return {
        "latent_size": policy.latent_size,
        "latent_mode": latent_mode,
        "z_update": policy.z_update,
        "policy_inputs": list(CONTEXT_INPUTS),
        "encoder_file": ENCODER_FILE,
        "encoder_inputs": inputs,
        "encoder_outputs": outputs,
        "sums": [{"name": name, "output": f"{name}_out", "dtype": "float32",
                  "shape": ["batch", policy.latent_size], "initial": initial}
                 for name, initial in zip(SUM_NAMES, (PRIOR_PRECISION, PRIOR_WEIGHTED))],
        "z": z,
        "reset": {"when": "at a new level (variant), before its first episode; never between "
                          "the episodes of one level",
                  "precision_sum": PRIOR_PRECISION, "weighted_sum": PRIOR_WEIGHTED},
        "call_sequence": call_sequence(policy, z),
    }


def noise_entry(policy: ActionHead) -> dict[str, Any]:
    """The manifest's ``noise`` entry of a sampled export: how to fill the ``noise`` input."""
    formula = ("action = argmax(logits - log(-log u))" if policy.discrete else
               "z = sqrt(-2 ln u1) * cos(2 pi u2) (u1, u2 the first and second halves), "
               "a = mean + exp(log_std) * z, action = clip(center + scale * a, low, high)")
    return {"input": NOISE_INPUT, "dtype": "float32", "shape": ["batch", noise_size(policy)],
            "distribution": "uniform(0, 1), independent, a fresh draw at every call",
            "clamp": [NOISE_CLAMP, 1.0 - NOISE_CLAMP], "formula": formula}


def action_semantics(policy: ActionHead, action_mode: str = "greedy") -> str:
    """One sentence: what ``action`` (and the distribution outputs) mean for the game."""
    how = ("drawn from the policy with the 'noise' input (fill it with fresh uniform(0, 1) "
           "numbers every call)" if action_mode == "sampled" else "the greedy action")
    if policy.discrete:
        return (f"discrete: 'action' is {how}, an index in [0, n) passed unchanged to "
                f"env.step; 'logits' give the distribution (softmax)")
    return ("continuous: 'mean' and 'log_std' parametrise a diagonal Gaussian in policy units; "
            "the env takes clip(center + scale * a, low, high) of a policy-unit action a "
            f"(see action_scaling); 'action' is {how}, mapped so")


def per_dimension(policy: ActionHead, tensor: torch.Tensor) -> list[float]:
    """An action buffer as one float per action dimension."""
    return [float(v) for v in tensor.expand(policy.action_dim).tolist()]


def action_scaling(policy: ActionHead) -> dict[str, Any] | None:
    """``{center, scale, low, high}`` lists of a continuous policy (``None`` for discrete)."""
    if policy.discrete:
        return None
    return {name: per_dimension(policy, getattr(policy, f"action_{name}"))
            for name in ("center", "scale", "low", "high")}


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
    """``files``: path, SHA-256, size and (ONNX files) :func:`onnx_file_entry` of each file
    (call it after every file is final: the hashes are of the bytes as written)."""
    files = {}
    for name in names:
        data = (staging / name).read_bytes()
        entry: dict[str, Any] = {"path": name, "sha256": sha256_bytes(data), "bytes": len(data)}
        if name.endswith(".onnx"):
            entry.update(onnx_file_entry(name, data, exporters))
        files[name] = entry
    return files


def essentials(source: PolicySource, policy: ShippedPolicy, action_mode: str
               ) -> dict[str, Any]:
    """The fields the manifest shares with every graph's ``metadata_props``
    (:func:`graph_essentials`)."""
    return {"format": FORMAT, "game": source.spec.id,
            "observation_space": space_to_json(source.spec.observation_space),
            "action_space": space_to_json(source.spec.action_space),
            "action_mode": action_mode, "action_scaling": action_scaling(policy)}


def graph_essentials(source: PolicySource, policy: ShippedPolicy, action_mode: str
                     ) -> dict[str, Any]:
    """What every graph carries in ``metadata_props`` (:mod:`~gameadapt.ship.stamp`): the
    :func:`essentials` and the state sizes (``recurrent.state_size``,
    ``context.latent_size``; ``None`` where the family has none), JSON-safe."""
    return json_safe({
        **essentials(source, policy, action_mode),
        "state_size": policy.hidden_size if isinstance(policy, RecurrentPolicy) else None,
        "latent_size": policy.latent_size if isinstance(policy, ContextPolicy) else None})


def onnx_file_entry(name: str, data: bytes, exporters: dict[str, str]) -> dict[str, Any]:
    """An ONNX file's opset, IR version, exporter and ``min_onnxruntime``
    (:func:`~gameadapt.ship.formats.min_onnxruntime`)."""
    model = onnx.load_from_string(data)
    opset = model_opset(model)
    return {"opset": opset, "ir_version": int(model.ir_version),
            "exporter": exporters.get(name, "onnxruntime.quantization"),
            "min_onnxruntime": min_onnxruntime(name, opset, onnxruntime.__version__)}


def manifest(source: PolicySource, policy: ShippedPolicy, opset: int, action_mode: str,
             parts: dict[str, Any], latent_mode: str | None = None) -> dict[str, Any]:
    """The whole manifest (JSON-safe); ``parts`` are the export's own sections: ``files``,
    ``weights``, ``adapter``, ``verification``, ``latency_us``, ``quantization`` and the
    versions of ``onnxruntime`` and ``onnx``; ``latent_mode`` that of a context export."""
    inputs, outputs = io_description(policy, action_mode)
    recurrent = recurrent_entry(policy) if isinstance(policy, RecurrentPolicy) else None
    context = (context_entry(policy, latent_mode or "mean")
               if isinstance(policy, ContextPolicy) else None)
    return json_safe({
        **essentials(source, policy, action_mode),
        "agents": list(source.session.agents) or None,
        "variant": source.variant,
        "source": {"kind": source.kind, "path": str(source.path)},
        "action_semantics": action_semantics(policy, action_mode),
        "noise": noise_entry(policy) if action_mode == "sampled" else None,
        "recurrent": recurrent,
        "context": context,
        "value_scale": value_scale(policy),
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
        "policy_weights_action": "greedy (policy_weights.onnx takes no noise; to explore, "
                                 "sample from its logits or mean/log_std)",
        "policy_weights_inputs": ["observation"] + [spec.input_name for spec in weights],
        "weights_file": WEIGHTS_FILE,
    }
