"""torch -> ONNX: the exporters, their opsets, and the proto surgery on what they return.

Opsets (as torch 2.13, onnx 1.23, onnxscript 0.7 and onnxruntime 1.32 behave):

* The exporter is ``torch.export`` + ``torch.onnx.export(dynamo=True)``. Its native opset
  is 18 (up to 21 here); for 15-17 it converts the graph down with the onnxscript/onnx version
  converter, which works for every graph here (policy, policy_weights and adapter).
  (It keeps ``Split``'s opset-18 attribute ``num_outputs``, which :func:`equal_splits_below_18`
  removes.)
* Below 15 that conversion fails for these graphs (e.g. the onnx converter has no
  down-adapter for ``Shape``-15, which the Gaussian head's broadcast ``log_std`` and the
  adapter's dynamic ``N`` need) and the dynamo exporter silently leaves opset 18.
  :func:`to_onnx` notices (it reads the opset back) and falls back to the legacy TorchScript
  exporter (``dynamo=False``, deprecated but still in torch 2.13). It exports ``policy.onnx``
  at opsets 7-14 for discrete games and 11-14 for continuous ones (below 11 it cannot
  export the action clip's per-dimension bounds). Anything lower is a one-line error.
* The adapter's aten backward ops (``tanh_backward``, ``_log_softmax_backward_data``) have
  no legacy exporter symbolics, so ``--with-adapter`` needs opset >= 15.
* ``policy.int8.onnx`` (``onnxruntime.quantization.quantize_dynamic``, weights int8,
  activations quantised per call) uses ``DynamicQuantizeLinear``/``MatMulInteger``, which need
  opset >= 11.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import onnx
import torch
from torch import nn

from ..errors import GameadaptError, exception_line
from ..learn.context_policy import ContextPolicy
from ..learn.policy import ActionHead, MLPPolicy
from ..learn.recurrent import RecurrentPolicy
from .adapter import adapter_export_args, weight_specs
from .context_graph import (
    ContextPolicyGraph,
    EncoderGraph,
    context_output_names,
    example_action,
)
from .formats import (
    ADAPTER_FILE,
    ADAPTER_MIN_OPSET,
    CONTEXT_INPUTS,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    NOISE_INPUT,
    POLICY_FILE,
    RECURRENT_INPUTS,
    WEIGHTS_POLICY_FILE,
)
from .graphs import PolicyGraph, WeightsPolicyGraph, noise_size, output_names
from .recurrent_graph import RecurrentGraph, no_previous_action, recurrent_output_names


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' and quantiser's warnings and log lines (they are not errors)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _no_torchscript_log() -> Iterator[None]:
    """Keep the legacy exporter from switching on its C++ log (torch 2.13 always does, and
    then prints the whole TorchScript graph to the process's stdout when an export fails)."""
    setter = getattr(torch._C, "_jit_set_onnx_log_enabled", None)
    if setter is None:
        yield
        return
    setter(False)
    torch._C._jit_set_onnx_log_enabled = lambda enabled: None
    try:
        yield
    finally:
        torch._C._jit_set_onnx_log_enabled = setter


def model_opset(model: Any) -> int:
    """The default-domain (``ai.onnx``) opset a model imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise GameadaptError("the exported model imports no ai.onnx opset")


def strip_debug_info(model: Any) -> Any:
    """Drop the exporter's per-node stack traces, FX names and graph signature.

    They hold local source paths and are not needed to run the graph (they make it much
    larger: ``docs/performance.md``).
    """
    for graph in [model.graph, *(f for f in model.functions)]:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    del model.graph.metadata_props[:]
    model.graph.doc_string = ""
    return model


def equal_splits_below_18(model: Any) -> Any:
    """Drop ``Split``'s ``num_outputs`` attribute (new in opset 18) from a model converted
    to an older opset, which the version converter keeps and ``onnx.checker`` rejects;
    without it (and without ``split`` sizes) a ``Split`` of any opset makes equal parts,
    one per output, which is what ``num_outputs`` asked for (``torch.chunk``)."""
    if model_opset(model) >= 18:
        return model
    for graph in [model.graph, *(f for f in model.functions)]:
        for node in graph.node:
            if node.op_type == "Split" and len(node.input) < 2:
                kept = [a for a in node.attribute if a.name != "num_outputs"]
                del node.attribute[:]
                node.attribute.extend(kept)
    return model


def name_dynamic_dims(model: Any, dynamic_axes: dict[str, dict[int, str]]) -> Any:
    """Call the dynamic dimensions "batch" / "N" everywhere (torch.export names them s0, s1...)."""
    renames = {}
    for value in model.graph.input:
        for axis, name in dynamic_axes.get(value.name, {}).items():
            dims = value.type.tensor_type.shape.dim
            if axis < len(dims) and dims[axis].dim_param:
                renames[dims[axis].dim_param] = name
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    return model


@dataclass
class OnnxGraph:
    """An exported graph, before it is written."""

    model: Any  # onnx.ModelProto
    exporter: str  # "dynamo" or "torchscript"
    seconds: float

    @property
    def opset(self) -> int:
        return model_opset(self.model)

    def to_bytes(self) -> bytes:
        return self.model.SerializeToString()


def to_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: Sequence[str],
            outputs: Sequence[str], dynamic_shapes: Any, dynamic_axes: dict[str, dict[int, str]],
            opset: int, *, what: str, legacy: bool = True) -> OnnxGraph:
    """Export ``module`` at ``opset`` (see the module docstring for which exporter does what).

    ``dynamic_shapes`` is for ``torch.export``, ``dynamic_axes`` for the legacy exporter.
    Raises a one-line :class:`GameadaptError` if no exporter reaches an opset <= ``opset``.
    """
    started = time.perf_counter()
    problems = []
    try:
        with quiet(), torch.no_grad():
            program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
            onnx_program = torch.onnx.export(program, (), input_names=list(inputs),
                                             output_names=list(outputs), opset_version=opset,
                                             dynamo=True, verbose=False, optimize=True)
        if onnx_program is None:
            raise GameadaptError("the dynamo exporter returned no program")
        model = name_dynamic_dims(strip_debug_info(onnx_program.model_proto), dynamic_axes)
        model = equal_splits_below_18(model)
        got = model_opset(model)
        if got <= opset:
            return OnnxGraph(model, "dynamo", time.perf_counter() - started)
        problems.append(f"the dynamo exporter's version conversion stopped at opset {got}")
    except Exception as exc:  # noqa: BLE001 - any exporter failure is reported in one line
        problems.append(f"dynamo exporter: {exception_line(exc)[:240]}")
    if legacy:
        try:
            buffer = io.BytesIO()
            with quiet(), torch.no_grad(), _no_torchscript_log():
                torch.onnx.export(module, args, cast(Any, buffer), input_names=list(inputs),
                                  output_names=list(outputs), opset_version=opset,
                                  dynamo=False, dynamic_axes=dynamic_axes, verbose=False)
            model = strip_debug_info(onnx.load_from_string(buffer.getvalue()))
            if model_opset(model) <= opset:
                return OnnxGraph(model, "torchscript", time.perf_counter() - started)
            problems.append(f"torchscript exporter gave opset {model_opset(model)}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"torchscript exporter: {exception_line(exc)[:240]}")
    raise GameadaptError(f"cannot export {what} at opset {opset} ({'; '.join(problems)})")


def _policy_dynamic(outputs: Sequence[str], inputs: Sequence[str] = ("observation",)
                    ) -> tuple[dict[str, dict[int, str]], Any]:
    batch = torch.export.Dim("batch")
    axes = {name: {0: "batch"} for name in [*inputs, *outputs]}
    return axes, batch


def example_noise(policy: ActionHead, batch: int) -> torch.Tensor:
    """Uniform numbers shaped like a sampled graph's ``noise`` input (for tracing)."""
    return torch.rand(batch, noise_size(policy), generator=torch.Generator().manual_seed(0))


def export_policy_graph(policy: MLPPolicy, opset: int, sampled: bool = False) -> OnnxGraph:
    """``policy.onnx`` as a model (with ``sampled``, taking ``noise``)."""
    outputs = output_names(policy)
    inputs = ["observation", NOISE_INPUT] if sampled else ["observation"]
    axes, batch = _policy_dynamic(outputs, inputs)
    args = (torch.zeros(3, policy.obs_dim), *([example_noise(policy, 3)] if sampled else []))
    return to_onnx(PolicyGraph(policy).eval(), args, inputs, outputs,
                   tuple({0: batch} for _ in args), axes, opset, what=POLICY_FILE)


def export_recurrent_graph(policy: RecurrentPolicy, opset: int, sampled: bool = False
                           ) -> OnnxGraph:
    """The recurrent ``policy.onnx`` (:class:`~gameadapt.ship.recurrent_graph.RecurrentGraph`)."""
    outputs = recurrent_output_names(policy)
    inputs = [*RECURRENT_INPUTS, *([NOISE_INPUT] if sampled else [])]
    axes, batch = _policy_dynamic(outputs, inputs)
    size = 3
    args = (torch.zeros(size, policy.obs_dim), no_previous_action(policy, size),
            torch.zeros(size), torch.ones(size), policy.initial_state(size),
            *([example_noise(policy, size)] if sampled else []))
    return to_onnx(RecurrentGraph(policy).eval(), args, inputs, outputs,
                   tuple({0: batch} for _ in args), axes, opset, what=POLICY_FILE)


def export_context_graphs(policy: ContextPolicy, opset: int, sampled: bool = False
                          ) -> tuple[OnnxGraph, OnnxGraph]:
    """A context export's ``policy.onnx`` and ``encoder.onnx``
    (:mod:`~gameadapt.ship.context_graph`)."""
    size = 3
    outputs = context_output_names(policy)
    inputs = [*CONTEXT_INPUTS, *([NOISE_INPUT] if sampled else [])]
    axes, batch = _policy_dynamic(outputs, inputs)
    args = (torch.zeros(size, policy.obs_dim), torch.zeros(size, policy.latent_size),
            *([example_noise(policy, size)] if sampled else []))
    acting = to_onnx(ContextPolicyGraph(policy).eval(), args, inputs, outputs,
                     tuple({0: batch} for _ in args), axes, opset, what=POLICY_FILE)
    axes, batch = _policy_dynamic(ENCODER_OUTPUTS, ENCODER_INPUTS)
    observation = torch.zeros(size, policy.obs_dim)
    args = (observation, example_action(policy, size), torch.zeros(size), observation.clone(),
            *policy.prior_sums(size))
    encoder = to_onnx(EncoderGraph(policy).eval(), args, ENCODER_INPUTS, ENCODER_OUTPUTS,
                      tuple({0: batch} for _ in args), axes, opset, what=ENCODER_FILE)
    return acting, encoder


def export_weights_policy_graph(policy: MLPPolicy, opset: int) -> OnnxGraph:
    """``policy_weights.onnx`` as a model."""
    specs = weight_specs(policy)
    outputs = output_names(policy)
    axes, batch = _policy_dynamic(outputs)
    weights = tuple(value.detach().clone() for _, value in policy.named_parameters())
    example = torch.zeros(3, policy.obs_dim)
    return to_onnx(WeightsPolicyGraph(policy).eval(), (example, *weights),
                   ["observation", *(s.input_name for s in specs)], outputs,
                   ({0: batch}, tuple(None for _ in specs)), axes, opset,
                   what=WEIGHTS_POLICY_FILE)


def export_adapter_graph(policy: MLPPolicy, opset: int) -> OnnxGraph:
    """``adapter.onnx`` as a model (traced with make_fx, exported with the dynamo exporter)."""
    if opset < ADAPTER_MIN_OPSET:
        raise GameadaptError(f"--with-adapter needs --opset {ADAPTER_MIN_OPSET} or higher "
                             f"(asked for {opset}): the adapter's gradient graph cannot be "
                             f"converted to older opsets")
    started = time.perf_counter()
    try:
        with quiet():
            module, args, inputs, outputs, dynamic_shapes = adapter_export_args(policy)
    except Exception as exc:  # noqa: BLE001
        raise GameadaptError(f"cannot trace the inner adaptation step ({exception_line(exc)[:240]})"
                             ) from None
    traced = time.perf_counter() - started
    axes = {name: {0: "N"} for name in ("observations", "actions", "advantages")}
    graph = to_onnx(module, args, inputs, outputs, dynamic_shapes, axes, opset,
                    what=ADAPTER_FILE, legacy=False)
    graph.seconds += traced
    return graph
