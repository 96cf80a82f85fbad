"""``godot.onnx`` (``--target godot``): the greedy policy with the signature Godot RL Agents reads.

Godot RL Agents' C# loader (``addons/godot_rl_agents/onnx/csharp/ONNXInference.cs``, with
Microsoft.ML.OnnxRuntime 1.15.1) feeds every key of an agent's observation dictionary as a
float ``[batch, n]`` input of that name (``obs`` by default) and a float ``state_ins``
``[batch]``, asks for ``output`` and ``state_outs`` and reads both as floats; its sync node
then reads ``output`` as logits per discrete action branch (argmax, or a draw from their
softmax without ``deterministic_inference``) or, for continuous actions, as means it clamps to
``[-1, 1]``. So ``godot.onnx`` is ``policy.onnx`` (greedy) with

- input ``observation`` renamed ``obs`` and a ``state_ins`` input it passes through unread;
- ``output``: the ``logits`` (discrete), or the greedy env action mapped from the action
  space's ``[low, high]`` to ``[-1, 1]`` (continuous; the game maps it back);
- ``state_outs``: ``state_ins``, as the stock loader expects from a stateless model.

:func:`verify_godot` runs it as that loader does and compares it with PyTorch.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import GameadaptError
from ..learn.policy import MLPPolicy
from .verify import TOLERANCE, Comparison, run, session, torch_outputs

OBSERVATION, STATE_IN = "obs", "state_ins"
OUTPUT, STATE_OUT = "output", "state_outs"


def action_bounds(policy: MLPPolicy) -> tuple[np.ndarray, np.ndarray]:
    """A continuous policy's finite action bounds (a one-line error if one is unbounded)."""
    low = policy.action_low.detach().cpu().numpy().astype(np.float32).reshape(-1)
    high = policy.action_high.detach().cpu().numpy().astype(np.float32).reshape(-1)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
        raise GameadaptError("--target godot: Godot RL Agents reads continuous actions in "
                             "[-1, 1], which needs finite action bounds; this game's action "
                             "space is unbounded (export with --target ort)")
    return low, high


def godot_model(policy_model: Any, policy: MLPPolicy) -> Any:
    """``godot.onnx`` made from a greedy ``policy.onnx`` model (not modified)."""
    model = copy.deepcopy(policy_model)
    graph = model.graph
    batch = graph.input[0].type.tensor_type.shape.dim[0].dim_param or "batch"
    for value in graph.input:
        if value.name == "observation":
            value.name = OBSERVATION
    for node in graph.node:
        node.input[:] = [OBSERVATION if name == "observation" else name for name in node.input]
    graph.input.append(helper.make_tensor_value_info(STATE_IN, TensorProto.FLOAT, [batch]))
    source = "logits" if policy.discrete else _normalised_action(graph, policy)
    graph.node.extend([helper.make_node("Identity", [source], [OUTPUT], name="godot_output"),
                       helper.make_node("Identity", [STATE_IN], [STATE_OUT],
                                        name="godot_state")])
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [batch, policy.action_dim]),
        helper.make_tensor_value_info(STATE_OUT, TensorProto.FLOAT, [batch])])
    return _without_unused_nodes(model)


def _normalised_action(graph: Any, policy: MLPPolicy) -> str:
    """Nodes mapping ``action`` from ``[low, high]`` to ``[-1, 1]``; the output's name."""
    low, high = action_bounds(policy)
    graph.initializer.extend([numpy_helper.from_array(low, "godot_low"),
                              numpy_helper.from_array((2.0 / (high - low)).astype(np.float32),
                                                      "godot_scale"),
                              numpy_helper.from_array(np.asarray(1.0, np.float32), "godot_one")])
    graph.node.extend([
        helper.make_node("Sub", ["action", "godot_low"], ["godot_shifted"]),
        helper.make_node("Mul", ["godot_shifted", "godot_scale"], ["godot_scaled"]),
        helper.make_node("Sub", ["godot_scaled", "godot_one"], ["godot_means"])])
    return "godot_means"


def _without_unused_nodes(model: Any) -> Any:
    """Drop the nodes and initializers no output needs (``action``, the distribution)."""
    graph = model.graph
    needed = {value.name for value in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [tensor for tensor in graph.initializer if tensor.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    return model


def expected_output(policy: MLPPolicy, observations: np.ndarray) -> np.ndarray:
    """What ``output`` must hold, from PyTorch: the logits, or the greedy action in [-1, 1]."""
    outputs = torch_outputs(policy, observations)
    if policy.discrete:
        return outputs["logits"]
    low, high = action_bounds(policy)
    return ((outputs["action"] - low) * (2.0 / (high - low)) - 1.0).astype(np.float32)


def verify_godot(policy: MLPPolicy, path: Any, observations: np.ndarray) -> dict[str, Any]:
    """``godot.onnx`` fed as Godot RL Agents' loader feeds it (one observation a call,
    ``state_ins`` 1), and as one batch, against PyTorch."""
    sess = session(path)
    names = [value.name for value in sess.get_inputs()] + [o.name for o in sess.get_outputs()]
    if names != [OBSERVATION, STATE_IN, OUTPUT, STATE_OUT]:
        return {"passed": False, "failure": f"godot.onnx has tensors {names}"}
    want = expected_output(policy, observations)
    batch = run(sess, {OBSERVATION: observations,
                       STATE_IN: np.ones(len(observations), np.float32)})
    single = np.concatenate([run(sess, {OBSERVATION: row[None], STATE_IN: np.ones(1, np.float32)})
                             [OUTPUT] for row in observations[:64]])
    result = Comparison.of({OUTPUT: want}, batch, TOLERANCE).worst(
        Comparison.of({OUTPUT: want[:64]}, {OUTPUT: single}, TOLERANCE))
    if not np.array_equal(batch[STATE_OUT], np.ones(len(observations), np.float32)):
        result.failed("state_outs is not state_ins")
    data: dict[str, Any] = {"samples": int(len(observations)), "single_calls": 64,
                            "max_abs_diff": result.max_abs_diff, "tolerance": TOLERANCE,
                            "output": "logits" if policy.discrete else "means in [-1, 1]",
                            "passed": result.passed}
    if policy.discrete:
        data["argmax_agrees"] = float(np.mean(batch[OUTPUT].argmax(-1) == want.argmax(-1)))
    if result.failure:
        data["failure"] = result.failure
    return data
