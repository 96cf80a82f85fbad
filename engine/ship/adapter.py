"""The on-device adaptation files: ``adapter.onnx``, ``policy_weights.onnx``, ``weights.bin``.

``adapter.onnx`` is one step of the inner SGD of :mod:`gameadapt.learn.meta`::

    θ' = θ − inner_lr · ∇θ L(θ),   L(θ) = −mean_i( log π_θ(a_i | s_i) · A_i )

i.e. :func:`gameadapt.learn.meta.inner_loss` (``reinforce``) with every mask 1, over ``N`` samples.
It is not re-implemented here: :func:`inner_step` calls the engine's own ``inner_loss`` under
``torch.func.grad``, and :func:`trace_inner_step` records that forward + backward with
``torch.fx.experimental.proxy_tensor.make_fx`` (symbolic tracing, so ``N`` stays a dynamic
dimension) into a plain aten graph, which ``torch.export`` + the dynamo ONNX exporter turn
into ONNX (exporting a module that calls ``torch.func.grad`` directly fails in
``torch.export``). One aten op is lowered while tracing: ``scatter_add`` (the gradient of
the categorical head's ``gather``) becomes a one-hot product, because ONNX's
``ScatterElements(reduction="add")`` needs opset 16 and would rule out opset 15 (Unity
Sentis) for discrete games.

Inputs are named after the policy's parameters with ``.`` replaced by ``_`` (``body.0.weight``
→ ``body_0_weight``; ``log_std`` → ``log_std_param``, see :func:`input_name`), in
``policy.named_parameters()`` order, which is also the order of the
little-endian float32 arrays concatenated in ``weights.bin``.

``actions`` are in the policy's own action units, as the engine's losses see them: the
categorical index, or the Gaussian sample ``a`` (``mean + exp(log_std) * noise``) *before*
the policy maps it to the env (``clip(center + scale * a, low, high)``, see
:meth:`gameadapt.learn.policy.MLPPolicy.to_env_action`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.fx.experimental.proxy_tensor import make_fx

from ..algorithm import InnerLoop
from ..learn.meta import TaskBatch, adapt, inner_loss
from ..learn.policy import MLPPolicy, Params, detached, expand_params, policy_params

ADAPTER_DATA_INPUTS = ("observations", "actions", "advantages", "inner_lr")
LOSS_DESCRIPTION = (
    "one inner SGD step theta' = theta - inner_lr * grad_theta L with "
    "L = -mean_i(log pi_theta(a_i | s_i) * advantage_i) over the N samples: "
    "gameadapt.learn.meta.inner_loss (reinforce) with every mask 1; actions are in the policy's "
    "units (discrete: index; continuous: the Gaussian sample before to_env_action)")


@dataclass(frozen=True)
class WeightSpec:
    """Where one parameter lives in ``weights.bin`` and which graph input takes it."""

    name: str  # the parameter's name in the policy (``body.0.weight``)
    input_name: str  # the graph input (``body_0_weight``)
    shape: tuple[int, ...]
    offset_bytes: int
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "input_name": self.input_name, "shape": list(self.shape),
                "offset_bytes": self.offset_bytes, "count": self.count}


RESERVED_NAMES = frozenset({"observation", "action", "logits", "mean", "log_std",
                            *ADAPTER_DATA_INPUTS})
RESERVED_SUFFIX = "_param"


def input_name(param_name: str) -> str:
    """The ONNX input name of a parameter: ``body.0.weight`` → ``body_0_weight``.

    A name that would clash with another input or output of the graphs gets the suffix
    ``_param``: the Gaussian's ``log_std`` parameter is the input ``log_std_param``, as
    ``policy_weights.onnx`` also has the output ``log_std`` (ONNX names must be unique).
    Readers take the names from the manifest's ``weights[].input_name``.
    """
    name = param_name.replace(".", "_")
    return name + RESERVED_SUFFIX if name in RESERVED_NAMES else name


def weight_specs(policy: nn.Module) -> list[WeightSpec]:
    """Every trainable parameter, in ``named_parameters()`` order, with its blob offset."""
    specs, offset = [], 0
    for name, value in policy.named_parameters():
        count = int(value.numel())
        specs.append(WeightSpec(name, input_name(name), tuple(int(s) for s in value.shape),
                                offset, count))
        offset += 4 * count
    return specs


def weights_blob(policy: nn.Module) -> bytes:
    """``weights.bin``: the parameters as float32 little-endian, concatenated in order."""
    parts = [value.detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
             for _, value in policy.named_parameters()]
    return b"".join(parts)


def read_weights_blob(blob: bytes, specs: Sequence[WeightSpec]) -> dict[str, np.ndarray]:
    """The arrays of ``weights.bin`` by input name (what a game's loader does)."""
    return {spec.input_name: np.frombuffer(blob, dtype="<f4", count=spec.count,
                                           offset=spec.offset_bytes).reshape(spec.shape)
            .astype(np.float32) for spec in specs}


def _one_task_batch(observations: torch.Tensor, actions: torch.Tensor,
                    advantages: torch.Tensor) -> TaskBatch:
    """``N`` samples as a :class:`TaskBatch` of one task with every mask 1."""
    ones = torch.ones_like(advantages)
    return TaskBatch(observations, actions, ones, torch.zeros_like(advantages), advantages)


def inner_step(policy: MLPPolicy, names: Sequence[str]) -> Callable[..., tuple[torch.Tensor, ...]]:
    """``f(*weights, observations, actions, advantages, inner_lr) -> new weights``.

    The gradient is ``torch.func.grad`` of the engine's :func:`~gameadapt.learn.meta.inner_loss`.
    """
    names = list(names)
    loss_grad = torch.func.grad(partial(inner_loss, policy, objective="reinforce"))

    def step(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params = dict(zip(names, args[:len(names)]))
        observations, actions, advantages, inner_lr = args[len(names):]
        grads = loss_grad(params, _one_task_batch(observations, actions, advantages))
        return tuple(params[name] - inner_lr * grads[name] for name in names)

    return step


def _scatter_add_one_hot(self: torch.Tensor, dim: int, index: torch.Tensor,
                         src: torch.Tensor) -> torch.Tensor:
    """``aten.scatter_add`` as a one-hot product (index shaped like ``self`` except at ``dim``)."""
    size = self.shape[dim]
    base, idx, values = self.movedim(dim, -1), index.movedim(dim, -1), src.movedim(dim, -1)
    one_hot = (idx.unsqueeze(-1) == torch.arange(size, device=self.device)).to(values.dtype)
    return (base + (values.unsqueeze(-1) * one_hot).sum(-2)).movedim(-1, dim)


def example_data(policy: MLPPolicy, count: int, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``(observations, actions, advantages)`` of ``count`` samples (for tracing)."""
    obs = torch.randn(count, policy.obs_dim, generator=generator)
    if policy.discrete:
        actions = torch.randint(0, policy.action_dim, (count,), generator=generator)
    else:
        actions = torch.randn(count, policy.action_dim, generator=generator)
    return obs, actions, torch.randn(count, generator=generator)


def trace_inner_step(policy: MLPPolicy) -> torch.fx.GraphModule:
    """The inner step as an aten-level FX graph with a symbolic sample count ``N``."""
    names = [name for name, _ in policy.named_parameters()]
    weights = [value.detach().clone() for _, value in policy.named_parameters()]
    obs, actions, advantages = example_data(policy, 7, torch.Generator().manual_seed(0))
    decompositions = {torch.ops.aten.scatter_add.default: _scatter_add_one_hot}
    # the policy's normalisation buffers are real tensors captured as graph constants
    return make_fx(inner_step(policy, names), tracing_mode="symbolic",
                   decomposition_table=decompositions, _allow_non_fake_inputs=True)(
        *weights, obs, actions, advantages, torch.tensor(0.1))


class AdapterGraph(nn.Module):
    """The traced inner step as a module that ``torch.export`` can take."""

    def __init__(self, graph: torch.fx.GraphModule) -> None:
        super().__init__()
        self.graph_module = graph

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.graph_module(*args))


def adapter_export_args(policy: MLPPolicy) -> tuple[nn.Module, tuple[torch.Tensor, ...],
                                                   list[str], list[str], Any]:
    """``(module, example args, input names, output names, dynamic_shapes)`` of adapter.onnx."""
    specs = weight_specs(policy)
    module = AdapterGraph(trace_inner_step(policy)).eval()
    weights = [value.detach().clone() for _, value in policy.named_parameters()]
    obs, actions, advantages = example_data(policy, 5, torch.Generator().manual_seed(1))
    args = (*weights, obs, actions, advantages, torch.tensor(0.1))
    inputs = [spec.input_name for spec in specs] + list(ADAPTER_DATA_INPUTS)
    outputs = [f"new_{spec.input_name}" for spec in specs]
    samples = torch.export.Dim("N")
    dynamic_shapes = (tuple([None] * len(specs) + [{0: samples}, {0: samples}, {0: samples},
                                                   None]),)
    return module, args, inputs, outputs, dynamic_shapes


def reference_inner_step(policy: MLPPolicy, params: Params, observations: torch.Tensor,
                         actions: torch.Tensor, advantages: torch.Tensor, inner_lr: float
                         ) -> Params:
    """The engine's own inner step (:func:`gameadapt.learn.meta.adapt`, one task, masks 1)."""
    batch = TaskBatch(*(field.unsqueeze(1).unsqueeze(1) for field in
                        _one_task_batch(observations, actions, advantages)))
    adapted = adapt(policy, expand_params(detached(params), 1), batch,
                    InnerLoop(inner_lr, steps=1, first_order=True, objective="reinforce"))
    return {name: value[0].detach() for name, value in adapted.items()}


def own_params(policy: MLPPolicy) -> Params:
    """The policy's parameters, detached."""
    return detached(policy_params(policy))
