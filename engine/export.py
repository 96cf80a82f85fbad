"""``gameadapt export``: a trained or adapted policy as verified ONNX files plus a manifest.

An export folder (default ``exports/<game>-<run or adapted folder name>``) holds::

    policy.onnx          observation [batch, obs_dim] -> action + distribution parameters
    policy.json          the manifest (format "gameadapt-policy/1"), written last
    policy.int8.onnx     with --quantize int8: dynamically quantised copy of policy.onnx
    policy_weights.onnx  with --with-adapter: policy.onnx with every parameter as an input
    adapter.onnx         with --with-adapter: one inner adaptation step (see adapter_export)
    weights.bin          with --with-adapter: the parameters, float32 little-endian

Inside ``policy.onnx`` are the observation normalisation (the policy's running mean and
variance as constants, the ±10 clip) and the action handling: discrete games output
``action`` (int64 argmax index) and ``logits``; continuous games output ``action`` (the
Gaussian mean mapped to the env by :meth:`~gameadapt.policy.MLPPolicy.to_env_action`, i.e.
``clip(center + scale * mean, low, high)``; scale 1 and center 0 for a policy trained
without action scaling), ``mean`` and ``log_std`` (both in the policy's own action units).

Every export is verified before anything is written (:mod:`gameadapt.verify_export`):
``onnx.checker`` on each file, ONNX Runtime against PyTorch on >= 1000 observations played
in the game plus far-out ones that hit the normalisation clip (max abs diff <= 1e-5;
discrete actions equal), the adapter against the engine's own inner step, and latencies.
Files are first written to a staging folder inside the output folder and renamed into
place, the manifest last, so a failed export leaves nothing behind and loses nothing.

Opsets (measured with torch 2.13, onnx 1.23, onnxscript 0.7, onnxruntime 1.32):

* The exporter is ``torch.export`` + ``torch.onnx.export(dynamo=True)``. Its native opset
  is 18 (up to 21 here); for 15-17 it converts the graph down with the onnxscript/onnx version
  converter, which works for every graph here (policy, policy_weights and adapter).
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
import hashlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__
from .artifacts import PolicySource, load_policy_source
from .errors import GameadaptError
from .game import space_to_json
from .policy import MLPPolicy, distribution_params

FORMAT = "gameadapt-policy/1"
MANIFEST_FILE = "policy.json"
POLICY_FILE = "policy.onnx"
INT8_FILE = "policy.int8.onnx"
WEIGHTS_POLICY_FILE = "policy_weights.onnx"
ADAPTER_FILE = "adapter.onnx"
WEIGHTS_FILE = "weights.bin"
ALL_FILES = (POLICY_FILE, INT8_FILE, WEIGHTS_POLICY_FILE, ADAPTER_FILE, WEIGHTS_FILE,
             MANIFEST_FILE)

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 7, 21
ADAPTER_MIN_OPSET = 15
QUANTIZE_MIN_OPSET = 11
QUANTIZE_TYPES = ("int8",)

Log = Callable[[str], None]


# -- the graphs ------------------------------------------------------------------------------
def output_names(policy: MLPPolicy) -> list[str]:
    """``["action", "logits"]`` (discrete) or ``["action", "mean", "log_std"]``."""
    return ["action", "logits"] if policy.discrete else ["action", "mean", "log_std"]


def dist_outputs(policy: MLPPolicy, dist: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The graph outputs from distribution parameters ``(logits,)`` or ``(mean, log_std)``."""
    greedy = policy.greedy(dist)
    if policy.discrete:
        return greedy, dist[0]
    to_env = getattr(policy, "to_env_action", None)
    if to_env is not None:
        action = to_env(greedy)
    else:  # a policy without action scaling: clip the mean to the bounds
        low = torch.as_tensor(policy.action_space.low, dtype=torch.float32)
        high = torch.as_tensor(policy.action_space.high, dtype=torch.float32)
        action = torch.clamp(greedy, low, high)
    return action, dist[0], dist[1]


def reference_outputs(policy: MLPPolicy, params: dict[str, torch.Tensor],
                      observation: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What the graphs compute, with the engine's :func:`~gameadapt.policy.distribution_params`."""
    return dist_outputs(policy, distribution_params(policy, params, observation))


class PolicyGraph(nn.Module):
    """``policy.onnx``: ``observation -> (action, logits)`` or ``(action, mean, log_std)``.

    Calls the policy module itself (normalise, body, head), as ``distribution_params`` does
    through ``functional_call``, which the legacy TorchScript exporter cannot trace.
    """

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.policy(observation)
        dist = (out,) if self.policy.discrete else (out, self.policy.log_std.expand_as(out))
        return dist_outputs(self.policy, dist)


class WeightsPolicyGraph(nn.Module):
    """``policy_weights.onnx``: like :class:`PolicyGraph`, the parameters given as inputs."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.names = [name for name, _ in policy.named_parameters()]

    def forward(self, observation: torch.Tensor, *weights: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return reference_outputs(self.policy, dict(zip(self.names, weights)), observation)


# -- torch -> ONNX ----------------------------------------------------------------------------
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

    They hold local source paths, are not needed to run the graph and make it ~40 % larger.
    """
    for graph in [model.graph, *(f for f in model.functions)]:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    del model.graph.metadata_props[:]
    model.graph.doc_string = ""
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


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:240]


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
    import onnx

    started = time.perf_counter()
    problems = []
    try:
        with quiet(), torch.no_grad():
            program = torch.export.export(module, args, dynamic_shapes=dynamic_shapes)
            onnx_program = torch.onnx.export(program, (), input_names=list(inputs),
                                             output_names=list(outputs), opset_version=opset,
                                             dynamo=True, verbose=False, optimize=True)
        model = name_dynamic_dims(strip_debug_info(onnx_program.model_proto), dynamic_axes)
        got = model_opset(model)
        if got <= opset:
            return OnnxGraph(model, "dynamo", time.perf_counter() - started)
        problems.append(f"the dynamo exporter's version conversion stopped at opset {got}")
    except Exception as exc:  # noqa: BLE001 - any exporter failure is reported in one line
        problems.append(f"dynamo exporter: {_first_line(exc)}")
    if legacy:
        try:
            buffer = io.BytesIO()
            with quiet(), torch.no_grad(), _no_torchscript_log():
                torch.onnx.export(module, args, buffer, input_names=list(inputs),
                                  output_names=list(outputs), opset_version=opset,
                                  dynamo=False, dynamic_axes=dynamic_axes, verbose=False)
            model = strip_debug_info(onnx.load_from_string(buffer.getvalue()))
            if model_opset(model) <= opset:
                return OnnxGraph(model, "torchscript", time.perf_counter() - started)
            problems.append(f"torchscript exporter gave opset {model_opset(model)}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"torchscript exporter: {_first_line(exc)}")
    raise GameadaptError(f"cannot export {what} at opset {opset} ({'; '.join(problems)})")


def _policy_dynamic(outputs: Sequence[str]) -> tuple[dict[str, dict[int, str]], Any]:
    batch = torch.export.Dim("batch")
    axes = {name: {0: "batch"} for name in ["observation", *outputs]}
    return axes, batch


def export_policy_graph(policy: MLPPolicy, opset: int) -> OnnxGraph:
    """``policy.onnx`` as a model."""
    outputs = output_names(policy)
    axes, batch = _policy_dynamic(outputs)
    example = torch.zeros(3, policy.obs_dim)
    return to_onnx(PolicyGraph(policy).eval(), (example,), ["observation"], outputs,
                   ({0: batch},), axes, opset, what=POLICY_FILE)


def export_weights_policy_graph(policy: MLPPolicy, opset: int) -> OnnxGraph:
    """``policy_weights.onnx`` as a model."""
    from .adapter_export import weight_specs

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
    from .adapter_export import adapter_export_args

    if opset < ADAPTER_MIN_OPSET:
        raise GameadaptError(f"--with-adapter needs --opset {ADAPTER_MIN_OPSET} or higher "
                             f"(asked for {opset}): the adapter's gradient graph cannot be "
                             f"converted to older opsets")
    started = time.perf_counter()
    try:
        with quiet():
            module, args, inputs, outputs, dynamic_shapes = adapter_export_args(policy)
    except Exception as exc:  # noqa: BLE001
        raise GameadaptError(f"cannot trace the inner adaptation step ({_first_line(exc)})"
                             ) from None
    traced = time.perf_counter() - started
    axes = {name: {0: "N"} for name in ("observations", "actions", "advantages")}
    graph = to_onnx(module, args, inputs, outputs, dynamic_shapes, axes, opset,
                    what=ADAPTER_FILE, legacy=False)
    graph.seconds += traced
    return graph


# -- the manifest ----------------------------------------------------------------------------
def io_description(policy: MLPPolicy, source: PolicySource) -> tuple[list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """The ``inputs`` and ``outputs`` entries of ``policy.onnx`` for the manifest."""
    inputs = [{"name": "observation", "dtype": "float32", "shape": ["batch", policy.obs_dim],
               "meaning": "raw observations, flattened, as the game's gymnasium view returns "
                          "them; normalisation (running mean/variance, clip to +-10) is "
                          "inside the graph"}]
    n = policy.action_dim
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
    n = policy.action_dim

    def values(name: str, default: float) -> list[float]:
        tensor = getattr(policy, name, None)
        if tensor is None:
            if name in ("action_low", "action_high"):
                space = policy.action_space
                return [float(v) for v in (space.low if name == "action_low" else space.high)]
            return [default] * n
        return [float(v) for v in torch.as_tensor(tensor).expand(n).tolist()]

    return {"center": values("action_center", 0.0), "scale": values("action_scale", 1.0),
            "low": values("action_low", -math.inf), "high": values("action_high", math.inf)}


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
    return hashlib.sha256(data).hexdigest()


def run_inner_lr(source: PolicySource) -> float:
    """The run's inner learning rate (the adapter's default)."""
    config = getattr(source.session.algorithm, "config", None)
    value = getattr(config, "inner_lr", None)
    if value is None:
        value = source.session.config.options.get("inner_lr", 0.1)
    return float(value)


# -- the export ------------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export_policy` wrote."""

    out_dir: Path
    manifest: dict[str, Any]
    files: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)  # export time per graph file


def default_output_dir(source: PolicySource) -> Path:
    """``exports/<game>-<run or adapted folder name>`` (relative to the working folder)."""
    return Path("exports") / f"{source.spec.id}-{source.path.resolve().name}"


def planned_files(with_adapter: bool, quantize: str | None) -> list[str]:
    names = [POLICY_FILE]
    if quantize:
        names.append(INT8_FILE)
    if with_adapter:
        names += [WEIGHTS_POLICY_FILE, ADAPTER_FILE, WEIGHTS_FILE]
    return names + [MANIFEST_FILE]


def check_settings(opset: int, quantize: str | None, with_adapter: bool) -> None:
    """One-line errors for settings that cannot work (before anything is exported)."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise GameadaptError(f"--opset must be an integer from {MIN_OPSET} to {MAX_OPSET}, "
                             f"got {opset!r}")
    if quantize is not None and quantize not in QUANTIZE_TYPES:
        raise GameadaptError(f"--quantize must be one of {', '.join(QUANTIZE_TYPES)}, "
                             f"got {quantize!r}")
    if quantize and opset < QUANTIZE_MIN_OPSET:
        raise GameadaptError(f"--quantize int8 needs --opset {QUANTIZE_MIN_OPSET} or higher "
                             f"(dynamic quantisation ops), asked for {opset}")
    if with_adapter and opset < ADAPTER_MIN_OPSET:
        raise GameadaptError(f"--with-adapter needs --opset {ADAPTER_MIN_OPSET} or higher "
                             f"(asked for {opset}): the adapter's gradient graph cannot be "
                             f"converted to older opsets")


def export_policy(source: PolicySource | Path | str, out_dir: Path | str | None = None, *,
                  opset: int = DEFAULT_OPSET, quantize: str | None = None,
                  with_adapter: bool = False, force: bool = False,
                  samples: int = 1024, log: Log | None = None) -> ExportResult:
    """Export, verify and write a policy folder; see the module docstring.

    ``source`` is a run folder, an adapted-policy folder or a loaded :class:`PolicySource`.
    Refuses to overwrite an existing ``policy.onnx``/``policy.json`` (or any other file it
    would write) unless ``force``. Raises one-line :class:`GameadaptError` for bad input, an
    opset the exporters cannot reach and failed verification; nothing is written then.
    """
    from . import verify_export as verify

    log = log or (lambda message: None)
    check_settings(opset, quantize, with_adapter)
    if samples < 1000:
        raise GameadaptError(f"verification needs at least 1000 observations, got {samples}")
    if not isinstance(source, PolicySource):
        source = load_policy_source(Path(source))
    policy = source.policy
    if not isinstance(policy, MLPPolicy):
        raise GameadaptError(f"export supports MLPPolicy policies, not {type(policy).__name__}")
    policy = policy.cpu().eval()
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(source)
    names = planned_files(with_adapter, quantize)
    _check_destination(out_dir, names, force)

    seconds: dict[str, float] = {}
    log(f"exporting {POLICY_FILE} (opset {opset}) ...")
    graphs = {POLICY_FILE: export_policy_graph(policy, opset)}
    if with_adapter:
        log(f"exporting {WEIGHTS_POLICY_FILE} and {ADAPTER_FILE} ...")
        graphs[WEIGHTS_POLICY_FILE] = export_weights_policy_graph(policy, opset)
        graphs[ADAPTER_FILE] = export_adapter_graph(policy, opset)
    for name, graph in graphs.items():
        seconds[name] = graph.seconds

    created = _make_dirs(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        blobs: dict[str, bytes] = {name: graph.to_bytes() for name, graph in graphs.items()}
        weights = None
        if with_adapter:
            from .adapter_export import weight_specs, weights_blob

            weights = weight_specs(policy)
            blobs[WEIGHTS_FILE] = weights_blob(policy)
        for name, data in blobs.items():
            (staging / name).write_bytes(data)

        log(f"verifying with ONNX Runtime on {samples}+ observations of {source.spec.id} ...")
        observations, obs_source = verify.collect_observations(
            source.spec, source.variant, samples, agents=source.session.agents)
        checks = verify.verify_policy(policy, staging / POLICY_FILE, observations)
        checks["observations"] = obs_source
        _require_passed(checks, POLICY_FILE)
        exporters = {name: graph.exporter for name, graph in graphs.items()}
        adapter_entry = None
        if with_adapter:
            inner_lr = run_inner_lr(source)
            checks["policy_weights"] = verify.verify_weights_policy(
                policy, staging / WEIGHTS_POLICY_FILE, staging / POLICY_FILE,
                blobs[WEIGHTS_FILE], weights, observations)
            checks["adapter"] = verify.verify_adapter(
                policy, staging / ADAPTER_FILE, staging / WEIGHTS_POLICY_FILE,
                blobs[WEIGHTS_FILE], weights, observations, inner_lr)
            _require_passed(checks["policy_weights"], WEIGHTS_POLICY_FILE)
            _require_passed(checks["adapter"], ADAPTER_FILE)
            adapter_entry = _adapter_manifest(policy, source, inner_lr, weights, graphs)
        latency = verify.measure_latency(staging / POLICY_FILE, policy.obs_dim)

        quantization = None
        if quantize:
            log("quantising to int8 ...")
            started = time.perf_counter()
            quantization = verify.quantize_int8(policy, staging / POLICY_FILE,
                                                staging / INT8_FILE, observations)
            seconds[INT8_FILE] = time.perf_counter() - started
            _require_passed(quantization, INT8_FILE,
                            hint="; export without --quantize or keep the float32 policy")

        files = {}
        for name in names[:-1]:
            data = (staging / name).read_bytes()
            entry = {"path": name, "sha256": sha256_bytes(data), "bytes": len(data)}
            if name.endswith(".onnx"):
                import onnx

                entry["opset"] = model_opset(onnx.load_from_string(data))
                entry["exporter"] = exporters.get(name, "onnxruntime.quantization")
            files[name] = entry
        inputs, outputs = io_description(policy, source)
        manifest = {
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
            "opset": graphs[POLICY_FILE].opset,
            "engine_version": __version__,
            "torch_version": torch.__version__,
            "onnxruntime_version": verify.onnxruntime_version(),
            "onnx_version": verify.onnx_version(),
            "provenance": source.provenance,
            "providers": source.providers,
            "files": files,
            "weights": [spec.to_json() for spec in weights] if weights else None,
            "adapter": adapter_entry,
            "verification": checks,
            "latency_us": latency,
            "quantization": quantization,
        }
        manifest = json_safe(manifest)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                        allow_nan=False) + "\n",
                                             encoding="utf-8")
        _publish(staging, out_dir, names, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out_dir, manifest, {name: out_dir / name for name in names}, seconds)


def _require_passed(check: dict[str, Any], name: str, hint: str = "") -> None:
    if not check.get("passed"):
        raise GameadaptError(f"verification of {name} failed: {check.get('failure', 'mismatch')}"
                             f"{hint}; nothing was written")


def _adapter_manifest(policy: MLPPolicy, source: PolicySource, inner_lr: float,
                      weights: Any, graphs: dict[str, OnnxGraph]) -> dict[str, Any]:
    from .adapter_export import LOSS_DESCRIPTION

    n = policy.action_dim
    weight_inputs = [{"name": spec.input_name, "dtype": "float32", "shape": list(spec.shape),
                      "meaning": f"parameter {spec.name}"} for spec in weights]
    actions = ({"name": "actions", "dtype": "int64", "shape": ["N"],
                "meaning": "action indices taken at the observations"} if policy.discrete else
               {"name": "actions", "dtype": "float32", "shape": ["N", n],
                "meaning": "Gaussian samples in policy units (before action_scaling): "
                           "a = (env_action - center) / scale for an unclipped env action"})
    config = getattr(source.session.algorithm, "config", None)
    return {
        "inner_lr": inner_lr,
        "inner_objective_trained": getattr(config, "inner_objective", None),
        "gamma": getattr(config, "gamma", None),
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


def _check_destination(out_dir: Path, names: Sequence[str], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GameadaptError(f"{out_dir} exists and is not a folder")
    if force:
        return
    existing = [name for name in (POLICY_FILE, MANIFEST_FILE, *names) if (out_dir / name).exists()]
    if existing:
        raise GameadaptError(f"{out_dir} already holds {existing[0]}; use --force to replace "
                             f"the export, or choose another -o")


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` (and missing parents); return the folders created, deepest last."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


def _publish(staging: Path, out_dir: Path, names: Sequence[str], force: bool) -> None:
    """Move the staged files into place (manifest last); with ``force`` drop stale artifacts."""
    _check_destination(out_dir, names, force)  # nothing appeared meanwhile
    for name in names:
        handle = os.open(staging / name, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
    for name in names:
        if name != MANIFEST_FILE:
            os.replace(staging / name, out_dir / name)
    os.replace(staging / MANIFEST_FILE, out_dir / MANIFEST_FILE)
    if force:
        for stale in set(ALL_FILES) - set(names):
            (out_dir / stale).unlink(missing_ok=True)
