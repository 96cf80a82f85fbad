"""``gameadapt export``: a trained or adapted policy as verified ONNX files plus a manifest.

An export folder (default ``exports/<game>-<run or adapted folder name>``) holds::

    policy.onnx          observation [batch, obs_dim] (+ noise) -> action + distribution
                         parameters; recurrent (rl2): + prev_action, prev_reward,
                         episode_start, state -> + value, state_out; context: + z -> + value
    encoder.onnx         context: one transition + the posterior's two sums -> new sums,
                         posterior mean and variance
    policy.json          the manifest (format "gameadapt-policy/1"), written last
    policy.int8.onnx     with --quantize int8: dynamically quantised copy of policy.onnx
    policy_weights.onnx  with --with-adapter: policy.onnx with every parameter as an input
    adapter.onnx         with --with-adapter: one inner adaptation step (see ship.adapter)
    weights.bin          with --with-adapter: the parameters, float32 little-endian

Inside ``policy.onnx`` are the observation normalisation (the policy's running mean and
variance as constants, the ±10 clip) and the action handling: discrete games output
``action`` (int64 argmax index) and ``logits``; continuous games output ``action`` (the
Gaussian mean mapped to the env by :meth:`~gameadapt.learn.policy.MLPPolicy.to_env_action`,
i.e. ``clip(center + scale * mean, low, high)``; scale 1 and center 0 for a policy trained
without action scaling), ``mean`` and ``log_std`` (both in the policy's own action units).
With ``--action sampled`` the ``action`` is drawn with the ``noise`` input instead
(:mod:`~gameadapt.ship.graphs`). A recurrent policy (RL²) is exported as one step with its
state as an input and an output (:mod:`~gameadapt.ship.recurrent_graph`) and verified over
whole trials with the state carried (:mod:`~gameadapt.ship.recurrent_verify`). A context
policy is exported as two graphs, the policy on ``[observation, z]`` and the encoder that
adds a transition to the task posterior's running sums (:mod:`~gameadapt.ship.context_graph`),
verified over whole trials with the sums carried (:mod:`~gameadapt.ship.context_verify`).
Neither has an adapter (they adapt as they play) nor an int8 copy (see
:func:`check_trial_family`).

The export is a pipeline, one function a stage: :func:`plan_export` resolves and checks
everything that can be checked before work starts; :func:`build_graphs` exports the torch
graphs (:mod:`~gameadapt.ship.onnx_export`); :func:`stage` writes the files into a staging
folder ``PARENT/.NAME.export-*`` beside the output folder, which removes itself whatever
happens; :func:`verify_staged` checks every file (:mod:`~gameadapt.ship.verify`:
``onnx.checker``, ONNX Runtime against PyTorch on >= 1000 observations played in the game
plus far-out ones, the adapter against the engine's inner step, latencies); :func:`publish`
adds the manifest (:mod:`~gameadapt.ship.manifest`) and the old folder's files that are no
export files (a game engine's ``.meta`` files), fsyncs them and swaps the whole folder in
(:func:`~gameadapt.files.replace_folder`). The output folder is locked for the whole export
(:func:`export_lock`). A failed or killed export leaves the old export or the new one,
whole; the next export removes what a killed one left.

Fault stages (``GAMEADAPT_FAULT``, see :mod:`gameadapt.files`): ``export:staged``,
``export:verified``, ``export:aside`` (fallback only), ``export:swapped``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..algorithm import TRIAL_FAMILIES, gradient_algorithm
from ..errors import GameadaptError, warn
from ..files import (
    fault_point,
    fsync_tree,
    remove_aside,
    replace_folder,
    staging_folder_beside,
)
from ..learn.context_policy import ContextPolicy
from ..learn.policy import MLPPolicy
from ..learn.recurrent import RecurrentPolicy
from ..locks import lock_output
from . import godot, sentis, stamp, verify
from . import manifest as manifest_parts
from .adapter import WeightSpec, weight_specs, weights_blob
from .context_verify import verify_context
from .formats import (
    ACTION_MODES,
    ADAPTER_FILE,
    ADAPTER_MIN_OPSET,
    ALL_FILES,
    DEFAULT_OPSET,
    ENCODER_FILE,
    GODOT_FILE,
    INT8_FILE,
    LATENT_MODES,
    MANIFEST_FILE,
    MAX_OPSET,
    MIN_OPSET,
    POLICY_FILE,
    QUANTIZE_MIN_OPSET,
    QUANTIZE_TYPES,
    WEIGHTS_FILE,
    WEIGHTS_POLICY_FILE,
)
from .onnx_export import (
    OnnxGraph,
    export_adapter_graph,
    export_context_graphs,
    export_policy_graph,
    export_recurrent_graph,
    export_weights_policy_graph,
)
from .recurrent_verify import verify_recurrent
from .sources import PolicySource, ShippedPolicy, load_policy_source
from .targets import DEFAULT_TARGET, Target, check_target, get_target, resolve_opset

Log = Callable[[str], None]


@dataclass
class ExportResult:
    """What :func:`export_policy` wrote."""

    out_dir: Path
    manifest: dict[str, Any]
    files: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)  # export time per graph file


@dataclass(frozen=True)
class ExportPlan:
    """An export resolved and checked before any graph is built."""

    source: PolicySource
    policy: ShippedPolicy
    out_dir: Path
    opset: int
    quantize: str | None
    with_adapter: bool
    force: bool
    samples: int
    files: list[str]  # every file it writes, the manifest last
    action: str = "greedy"  # what policy.onnx's action output is: greedy or sampled
    latent: str | None = None  # a context export's latent mode: mean or sample
    runtime: Target = field(default_factory=lambda: get_target(DEFAULT_TARGET))  # --target

    @property
    def target(self) -> Path:
        """``out_dir`` with symlinks resolved: the folder that is locked and replaced."""
        return Path(os.path.realpath(self.out_dir))

    @property
    def sampled(self) -> bool:
        """True if ``policy.onnx`` samples its action from a ``noise`` input."""
        return self.action == "sampled"

    @property
    def mlp(self) -> MLPPolicy:
        """The policy of a gradient-family export."""
        return self.source.mlp_policy


@dataclass
class Staged:
    """The files of an export in its staging folder, and what verification found."""

    folder: Path
    graphs: dict[str, OnnxGraph]
    files: list[str]  # what the folder holds, the manifest last
    weights: list[WeightSpec] | None = None
    blob: bytes = b""  # weights.bin
    checks: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)  # manifest sections
    seconds: dict[str, float] = field(default_factory=dict)


def export_policy(source: PolicySource | Path | str, out_dir: Path | str | None = None, *,
                  opset: int | None = None, quantize: str | None = None,
                  with_adapter: bool = False, force: bool = False,
                  samples: int = 1024, log: Log | None = None,
                  action: str | None = None, latent: str | None = None,
                  target: str = DEFAULT_TARGET) -> ExportResult:
    """Export, verify and write a policy folder; see the module docstring.

    ``source`` is a run folder, an adapted-policy folder or a loaded :class:`PolicySource`;
    ``action`` is ``"greedy"`` or ``"sampled"`` (default :func:`default_action_mode`);
    ``latent``, for a context policy only, ``"mean"`` or ``"sample"`` (default
    :func:`default_latent_mode`); ``target`` the runtime (:mod:`~gameadapt.ship.targets`),
    which sets the opset unless ``opset`` agrees with it.
    Refuses to overwrite an existing ``policy.onnx``/``policy.json`` (or any other file it
    would write) unless ``force``. Raises one-line :class:`GameadaptError` for bad input, an
    opset the exporters cannot reach and failed verification; nothing is written then.
    """
    log = log or (lambda message: None)
    plan = plan_export(source, out_dir, opset=opset, quantize=quantize,
                       with_adapter=with_adapter, force=force, samples=samples, action=action,
                       latent=latent, target=target)
    with export_lock(plan.target):
        remove_debris(plan.target)
        _check_destination(plan.target, plan.files, plan.force)
        graphs = build_graphs(plan, log)
        with staging_folder(plan.target) as folder:
            staged = stage(plan, graphs, folder)
            fault_point("export:staged")
            verify_staged(plan, staged, log)
            fault_point("export:verified")
            written = publish(plan, staged)
    return ExportResult(plan.out_dir, written, {name: plan.out_dir / name for name in staged.files},
                        staged.seconds)


def plan_export(source: PolicySource | Path | str, out_dir: Path | str | None, *,
                opset: int | None, quantize: str | None, with_adapter: bool, force: bool,
                samples: int, action: str | None = None, latent: str | None = None,
                target: str = DEFAULT_TARGET) -> ExportPlan:
    """Check the settings, load the source and check the destination (nothing is built)."""
    runtime = get_target(target)
    opset = resolve_opset(runtime, opset)
    check_settings(opset, quantize, with_adapter, action, latent)
    if samples < 1000:
        raise GameadaptError(f"verification needs at least 1000 observations, got {samples}")
    if not isinstance(source, PolicySource):
        source = load_policy_source(Path(source))
    algorithm = source.session.algorithm
    check_target(runtime, quantize, algorithm.family, algorithm.name)
    check_trial_family(source, quantize, with_adapter, latent)
    if runtime.name == "godot" and not source.policy.discrete:
        godot.action_bounds(source.mlp_policy)  # a one-line error if unbounded
    folder = Path(out_dir) if out_dir is not None else default_output_dir(source)
    files = planned_files(with_adapter, quantize, source.context, runtime.extra_file)
    _check_destination(folder, files, force)
    latent = (latent or default_latent_mode(source)) if source.context else None
    return ExportPlan(source, source.policy.cpu().eval(), folder, opset, quantize,
                      with_adapter, force, samples, files, action or default_action_mode(source),
                      latent, runtime)


def default_action_mode(source: PolicySource) -> str:
    """The ``--action`` an export gets when none is given, from what was measured on held-out
    variants (``docs/performance.md``, "Which action an export plays"):

    - a gradient-family policy with discrete actions samples (gridnav, MAML adapted on 20
      episodes: 0.59 sampled, −0.14 greedy), with continuous ones plays its mean (a
      Pendulum user's: −398 greedy, −667 sampled);
    - ``rl2`` with continuous actions samples (pointnav, second episode: −2.1 sampled,
      −49.5 greedy: its mean action stops exploring, and the state never learns where the
      goal is), with discrete ones plays greedily (gridnav: 1.51 greedy, 1.49 sampled);
    - ``context`` samples (second episode, z at the posterior mean: gridnav 1.22 sampled,
      1.00 greedy, a policy with no memory of its path loops in a maze; pointnav −4.9
      sampled, −25.5 greedy).
    """
    family = source.session.algorithm.family
    if family == "context":
        return "sampled"
    sampled = source.policy.discrete != (family in TRIAL_FAMILIES)
    return "sampled" if sampled else "greedy"


def default_latent_mode(source: PolicySource) -> str:
    """The ``--latent`` a context export gets when none is given: ``"mean"``, ``z`` the
    posterior mean (second episode on held-out variants, sampled actions: gridnav 1.22 mean,
    1.19 drawn; pointnav −4.9 mean, −5.2 drawn), which also spares the game its normals."""
    return "mean"


def check_trial_family(source: PolicySource, quantize: str | None, with_adapter: bool,
                       latent: str | None = None) -> None:
    """One-line errors for what a recurrent or context policy's export cannot have.

    No adapter: they adapt as they play, in the state ``policy.onnx`` carries or in the
    posterior's sums ``encoder.onnx`` updates. No int8 copy: the state (or the sums) take in
    every step's output, so quantisation errors compound over a trial, which the per-call
    int8 check does not bound, and the float32 graphs are already small and fast.
    ``--latent`` is a context export's only.
    """
    name = source.session.algorithm.name
    if latent is not None and not source.context:
        raise GameadaptError(f"--latent applies to a context-family export only; {name!r} is "
                             f"a {source.session.algorithm.family}-family algorithm")
    if not source.adapts_in_play:
        return
    carried = ("its recurrent state, which policy.onnx carries as the input 'state' and the "
               "output 'state_out'" if source.recurrent else
               f"its task posterior, two running sums that {ENCODER_FILE} updates every step")
    if with_adapter:
        raise GameadaptError(f"--with-adapter: {name!r} adapts in {carried}; there is nothing "
                             f"to adapt (export without it)")
    if quantize:
        what, fed = (("a recurrent policy", "its state is") if source.recurrent else
                     ("a context policy", "its posterior sums are"))
        raise GameadaptError(f"--quantize {quantize} is not supported for {what} ({name!r}): "
                             f"{fed} fed back every step, so int8 errors would compound over "
                             f"a trial; export without --quantize")


def build_graphs(plan: ExportPlan, log: Log) -> dict[str, OnnxGraph]:
    """The ONNX models of ``policy.onnx`` (and, with the adapter, its two companions)."""
    log(f"exporting {POLICY_FILE} (opset {plan.opset}, {plan.action} action) ...")
    if isinstance(plan.policy, RecurrentPolicy):
        return {POLICY_FILE: export_recurrent_graph(plan.policy, plan.opset, plan.sampled)}
    if isinstance(plan.policy, ContextPolicy):
        log(f"exporting {ENCODER_FILE} (opset {plan.opset}, latent {plan.latent}) ...")
        acting, encoder = export_context_graphs(plan.policy, plan.opset, plan.sampled)
        return {POLICY_FILE: acting, ENCODER_FILE: encoder}
    graphs = {POLICY_FILE: export_policy_graph(plan.mlp, plan.opset, plan.sampled)}
    if plan.runtime.extra_file == GODOT_FILE:
        log(f"exporting {GODOT_FILE} (Godot RL Agents' signature) ...")
        greedy = (export_policy_graph(plan.mlp, plan.opset) if plan.sampled
                  else graphs[POLICY_FILE])
        graphs[GODOT_FILE] = OnnxGraph(godot.godot_model(greedy.model, plan.mlp),
                                       greedy.exporter, greedy.seconds)
    if plan.with_adapter:
        log(f"exporting {WEIGHTS_POLICY_FILE} and {ADAPTER_FILE} ...")
        graphs[WEIGHTS_POLICY_FILE] = export_weights_policy_graph(plan.mlp, plan.opset)
        graphs[ADAPTER_FILE] = export_adapter_graph(plan.mlp, plan.opset)
    return graphs


def graph_essentials(plan: ExportPlan) -> dict[str, Any]:
    """What every graph of the export carries in ``metadata_props``
    (:mod:`~gameadapt.ship.stamp`)."""
    return manifest_parts.graph_essentials(plan.source, plan.policy, plan.action)


def export_lock(out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Own the output folder for an export (see :func:`~gameadapt.locks.lock_output`)."""
    return lock_output(out_dir, "gameadapt export")


def remove_debris(out_dir: Path) -> None:
    """Remove what killed exports left (hold :func:`export_lock`): staging folders beside
    ``out_dir`` and, of the older layout, inside it; an aside copy is restored or removed."""
    remove_aside(out_dir)
    leftovers = [*out_dir.parent.glob(f".{out_dir.name}.export-*"),
                 *(out_dir.glob(".export-*") if out_dir.is_dir() else [])]
    for folder in leftovers:
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staging_folder(out_dir: Path) -> Iterator[Path]:
    """A fresh ``.NAME.export-*`` folder beside ``out_dir``, removed on the way out, always."""
    folder = staging_folder_beside(out_dir, "export")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stage(plan: ExportPlan, graphs: dict[str, OnnxGraph], folder: Path) -> Staged:
    """Write the graphs, stamped (:func:`~gameadapt.ship.stamp.stamp`), and ``weights.bin``
    into the staging folder."""
    staged = Staged(folder, graphs, [name for name in plan.files if name != INT8_FILE],
                    seconds={name: g.seconds for name, g in graphs.items()})
    essentials = graph_essentials(plan)
    blobs = {name: stamp.stamp(graph.model, name, essentials).SerializeToString()
             for name, graph in graphs.items()}
    if plan.with_adapter:
        staged.weights = weight_specs(plan.mlp)
        staged.blob = blobs[WEIGHTS_FILE] = weights_blob(plan.mlp)
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
    return staged


def verify_staged(plan: ExportPlan, staged: Staged, log: Log) -> None:
    """Verify every staged file (a one-line error at the first that fails), then quantise."""
    policy, folder, source = plan.policy, staged.folder, plan.source
    log(f"verifying with ONNX Runtime on {plan.samples}+ observations of {source.spec.id} ...")
    observations, obs_source = verify.collect_observations(
        source.spec, source.variant, plan.samples, agents=source.session.agents)
    if isinstance(policy, RecurrentPolicy):
        checks = verify_recurrent(policy, folder / POLICY_FILE, source.spec, source.variant,
                                  observations, plan.sampled)
    elif isinstance(policy, ContextPolicy):
        checks = verify_context(policy, folder / POLICY_FILE, folder / ENCODER_FILE,
                                source.spec, source.variant, observations, plan.sampled,
                                plan.latent or default_latent_mode(source))
    else:
        checks = verify.verify_policy(policy, folder / POLICY_FILE, observations, plan.sampled)
    checks["observations"] = obs_source
    _require_passed(checks, f"{POLICY_FILE} and {ENCODER_FILE}"
                    if isinstance(policy, ContextPolicy) else POLICY_FILE)
    staged.checks, staged.parts["adapter"] = checks, None
    if plan.with_adapter:
        _verify_adapter_files(plan, staged, observations)
    if GODOT_FILE in staged.graphs:
        staged.checks["godot"] = godot.verify_godot(plan.mlp, folder / GODOT_FILE, observations)
        _require_passed(staged.checks["godot"], GODOT_FILE)
    staged.parts["latency_us"] = verify.measure_latency(folder / POLICY_FILE)
    if isinstance(policy, ContextPolicy):
        staged.parts["latency_us"]["encoder"] = verify.measure_latency(folder / ENCODER_FILE)
    staged.parts["quantization"] = _quantized(plan, staged, observations, log) \
        if plan.quantize else None
    staged.parts["target"] = _target_entry(plan, staged)


def _quantized(plan: ExportPlan, staged: Staged, observations: Any, log: Log
               ) -> dict[str, Any]:
    """Write and check ``policy.int8.onnx``; one that fails its check is left out with a
    warning (an optional file never stops the float32 export)."""
    log("quantising to int8 ...")
    started = time.perf_counter()
    path = staged.folder / INT8_FILE
    try:
        quantization = verify.quantize_int8(
            plan.mlp, staged.folder / POLICY_FILE, path, observations, plan.sampled,
            finish=lambda written: stamp.stamp_file(written, graph_essentials(plan)))
    except GameadaptError as exc:
        quantization = {"type": "int8-dynamic", "file": INT8_FILE, "passed": False,
                        "failure": str(exc)}
    staged.seconds[INT8_FILE] = time.perf_counter() - started
    if quantization["passed"]:
        staged.files.insert(-1, INT8_FILE)
    else:
        path.unlink(missing_ok=True)
        warn(f"{INT8_FILE} was not written: {quantization.get('failure', 'mismatch')}; "
             f"the float32 export is complete without it")
    return quantization


def _target_entry(plan: ExportPlan, staged: Staged) -> dict[str, Any]:
    """The manifest's ``target``: the runtime, and for ``sentis`` its operator check."""
    entry: dict[str, Any] = {"name": plan.runtime.name, "runtime": plan.runtime.runtime}
    if plan.runtime.name == "sentis":
        entry["sentis"] = sentis.check_graphs(staged.folder, staged.files)
    return entry


def _verify_adapter_files(plan: ExportPlan, staged: Staged, observations: Any) -> None:
    """``policy_weights.onnx`` and ``adapter.onnx`` against the engine."""
    assert staged.weights is not None
    policy, folder = plan.mlp, staged.folder
    algorithm = gradient_algorithm(plan.source.session.algorithm, "--with-adapter")
    inner = algorithm.inner_loop
    staged.checks["policy_weights"] = verify.verify_weights_policy(
        policy, folder / WEIGHTS_POLICY_FILE, folder / POLICY_FILE, staged.blob, staged.weights,
        observations, plan.sampled)
    staged.checks["adapter"] = verify.verify_adapter(
        policy, folder / ADAPTER_FILE, folder / WEIGHTS_POLICY_FILE, staged.blob,
        staged.weights, observations, inner.lr)
    _require_passed(staged.checks["policy_weights"], WEIGHTS_POLICY_FILE)
    _require_passed(staged.checks["adapter"], ADAPTER_FILE)
    staged.parts["adapter"] = manifest_parts.adapter_entry(
        policy, inner, algorithm.options().get("gamma"), staged.weights)


def publish(plan: ExportPlan, staged: Staged) -> dict[str, Any]:
    """Write the manifest, carry the old folder's other files, swap the folder in; return it."""
    exporters = {name: graph.exporter for name, graph in staged.graphs.items()}
    opset = staged.graphs[POLICY_FILE].opset
    written = manifest_parts.manifest(plan.source, plan.policy, opset, plan.action, {
        "onnxruntime_version": verify.onnxruntime_version(),
        "onnx_version": verify.onnx_version(),
        "files": manifest_parts.file_entries(staged.folder, staged.files[:-1], exporters),
        "weights": [spec.to_json() for spec in staged.weights] if staged.weights else None,
        "verification": staged.checks,
        **staged.parts,
    }, plan.latent)
    (staged.folder / MANIFEST_FILE).write_text(
        json.dumps(written, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    _carry_foreign_files(plan.target, staged.folder)
    fsync_tree(staged.folder)
    replace_folder(staged.folder, plan.target, fault="export")
    return written


def _carry_foreign_files(out_dir: Path, staging: Path) -> None:
    """Copy what the old ``out_dir`` holds besides export files (and debris) into staging."""
    if not out_dir.is_dir():
        return
    for entry in out_dir.iterdir():
        if entry.name in ALL_FILES or entry.name.startswith(".export-"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, staging / entry.name, follow_symlinks=False)


def default_output_dir(source: PolicySource) -> Path:
    """``exports/<game>-<run or adapted folder name>`` (relative to the working folder)."""
    return Path("exports") / f"{source.spec.id}-{source.path.resolve().name}"


def planned_files(with_adapter: bool, quantize: str | None, context: bool = False,
                  extra_file: str | None = None) -> list[str]:
    """The files an export may write, the manifest last (an int8 copy that fails its check
    is left out: :attr:`Staged.files`)."""
    names = [POLICY_FILE, *([ENCODER_FILE] if context else []),
             *([extra_file] if extra_file else [])]
    if quantize:
        names.append(INT8_FILE)
    if with_adapter:
        names += [WEIGHTS_POLICY_FILE, ADAPTER_FILE, WEIGHTS_FILE]
    return names + [MANIFEST_FILE]


def check_settings(opset: int, quantize: str | None, with_adapter: bool,
                   action: str | None = None, latent: str | None = None) -> None:
    """One-line errors for settings that cannot work (before anything is exported)."""
    if action is not None and action not in ACTION_MODES:
        raise GameadaptError(f"--action must be one of {', '.join(ACTION_MODES)}, "
                             f"got {action!r}")
    if latent is not None and latent not in LATENT_MODES:
        raise GameadaptError(f"--latent must be one of {', '.join(LATENT_MODES)}, "
                             f"got {latent!r}")
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


def _require_passed(check: dict[str, Any], name: str, hint: str = "") -> None:
    if not check.get("passed"):
        raise GameadaptError(f"verification of {name} failed: {check.get('failure', 'mismatch')}"
                             f"{hint}; nothing was written")


def _check_destination(out_dir: Path, names: Sequence[str], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise GameadaptError(f"{out_dir} exists and is not a folder")
    if force:
        return
    existing = [name for name in (POLICY_FILE, MANIFEST_FILE, *names) if (out_dir / name).exists()]
    if existing:
        raise GameadaptError(f"{out_dir} already holds {existing[0]}; use --force to replace "
                             f"the export, or choose another -o")
