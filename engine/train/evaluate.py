"""Honest evaluation: return before and after k adaptation steps on held-out variants.

For each evaluation seed, ``tasks`` variants are drawn from the held-out split and every
method plays ``episodes`` episodes per variant with its shared parameters, adapts per task
with 1..k inner steps on those episodes, and plays again. The methods are the run itself and
baselines given the same data: ``scratch`` (random init, same fine-tuning) and any other
algorithm, e.g. ``pretrain``, trained with the run's exact config (meta-batch, seeds, hence
the same variants) for the iterations the run has completed, into ``RUN/baselines/ALGO``,
and reused on later calls. The game's declared spaces are checked before evaluating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError
from ..game import GameSpec
from ..host.registry import get_registry
from ..learn.learner import evaluate_adaptation
from ..learn.policy import MLPPolicy
from ..learn.vector import make_batched_game
from ..tables import format_table
from ..variants import SPLITS, Split, Variant
from .runs import RunDir, RunError
from .session import (
    Session,
    TrainConfig,
    build_session,
    check_run_providers,
    load_session,
    start_run,
)
from .spacecheck import check_game_views
from .stopping import EXIT_INTERRUPTED
from .trainer import train

BASELINES_DIR = "baselines"


class BaselineInterrupted(GameadaptError):
    """Training a baseline stopped early (Ctrl-C); its state is saved for the next call."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, method: str, reason: str) -> None:
        super().__init__(f"training the {method} baseline stopped ({reason}); its state is "
                         f"saved and the next evaluate continues it")
        self.reason = reason


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: split, tasks per seed, episodes per task, adaptation steps, seeds.

    ``fixed`` are ``key=value`` assignments applied to every sampled variant (e.g.
    ``rules.opponent=mirroring`` for one held-out opponent style).
    """

    split: Split = "test"
    tasks: int = 40
    episodes: int = 20
    steps: tuple[int, ...] = (0, 1, 3)
    seeds: tuple[int, ...] = (0, 1, 2)
    fixed: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise GameadaptError(f"invalid split {self.split!r}: use train or test")
        if self.tasks < 1 or self.episodes < 1:
            raise GameadaptError("--tasks and --episodes must be >= 1")
        if not self.steps or min(self.steps) < 0:
            raise GameadaptError("--steps must list adaptation step counts >= 0, e.g. 0,1,3")
        if not self.seeds:
            raise GameadaptError("--seeds must list at least one seed")


TrainBaseline = Callable[[Session, RunDir, str], Session]


def method_session(run: RunDir, method: str, train_baseline: TrainBaseline | None = None
                   ) -> Session:
    """The session of the run itself (``method`` = its algorithm) or of a baseline.

    A baseline that trains (``pretrain``) is trained with the run's config for exactly the
    iterations the run has *completed* (its checkpoint's), into ``RUN/baselines/ALGO``,
    which records them; it is reused while the run stays there, trained on when the run has
    gone on since (bit-identical to training it from scratch), and retrained from scratch if
    it is ahead of the run. ``train_baseline(session, baseline_run, reason)`` does the
    training (default: :func:`train`; the CLI shows progress).
    """
    train_baseline = train_baseline or (lambda session, baseline_run, reason:
                                        train(session, baseline_run))
    run_session = load_session(run)
    if method == run_session.config.algorithm:
        return run_session
    completed = run_session.iteration
    config = dataclasses.replace(run_session.config, algorithm=method, iterations=completed)
    session = build_session(config)
    if not session.algorithm.trains:
        return session
    baseline_run = RunDir(run.path / BASELINES_DIR / method)
    record = {"baseline_of": {"run": str(run.path), "run_iterations": completed}}
    if baseline_run.checkpoint_path.exists():
        session = load_session(baseline_run, config)
        if session.iteration == completed:
            return session
        if session.iteration < completed:
            baseline_run.write_config({**baseline_run.read_config(), "train": config.to_json(),
                                       **record})
            return train_baseline(session, baseline_run,
                                  f"the run has gone on to {completed} iterations since it "
                                  f"was trained for {session.iteration}")
        reason = (f"it was trained for {session.iteration} iterations, more than the run's "
                  f"{completed}")
    else:
        reason = f"it is trained once for the run's {completed} completed iterations"
    return _train_fresh_baseline(config, baseline_run, record, train_baseline, reason)


def _train_fresh_baseline(config: TrainConfig, baseline_run: RunDir, record: dict[str, Any],
                          train_baseline: TrainBaseline, reason: str) -> Session:
    """Train a baseline from scratch beside any old one, then put it in the old one's place.

    The new one is trained in ``.ALGO.new`` next to it; an interrupted training there is
    continued by the next call.
    """
    staging = RunDir(baseline_run.path.with_name(f".{baseline_run.path.name}.new"))
    session = None
    if staging.checkpoint_path.exists():
        session = load_session(staging, config)
        if session.iteration > config.iterations:
            session = None
    if session is None:
        shutil.rmtree(staging.path, ignore_errors=True)
        session = start_run(config, staging, **record)
    session = train_baseline(session, staging, reason)
    if session.stopped is not None:
        return session  # interrupted: the caller stops; the staging folder is retrained next time
    old = baseline_run.path.with_name(f".{baseline_run.path.name}.old")
    if baseline_run.path.exists():
        shutil.rmtree(old, ignore_errors=True)
        baseline_run.path.rename(old)
    staging.path.rename(baseline_run.path)
    shutil.rmtree(old, ignore_errors=True)
    return session


def evaluate_session(session: Session, settings: EvalSettings) -> list[list[float]]:
    """Per seed, the mean return over tasks at each requested step count."""
    spec, policy = session.spec, session.policy
    assert isinstance(policy, MLPPolicy)  # the one policy class the algorithms make
    top = max(settings.steps)
    per_seed = []
    for seed in settings.seeds:
        variants = _variants(spec, settings, seed)
        with contextlib.closing(make_batched_game(spec, variants, settings.episodes,
                                                  session.device, session.agents)) as game:
            returns = evaluate_adaptation(session.algorithm, policy, session.params, game,
                                          seed, top)  # [top + 1, tasks]
        per_seed.append([returns[k].mean().item() for k in settings.steps])
    return per_seed


def _variants(spec: GameSpec, settings: EvalSettings, seed: int) -> list[Variant]:
    """The evaluated variants of one seed (with the ``fixed`` assignments applied)."""
    return [spec.variant_space.parse_assignments(settings.fixed, variant) for variant
            in spec.variant_space.sample(settings.split, settings.tasks, seed)]


def _cuda_devices(device: torch.device) -> list[torch.device]:
    """The devices whose random state :func:`torch.random.fork_rng` must save."""
    return [device] if device.type == "cuda" else []


def summarize(per_seed: list[list[float]]) -> dict[str, list[float]]:
    """Mean and standard deviation over seeds at each step count."""
    columns = list(zip(*per_seed))
    return {
        "mean": [statistics.fmean(c) for c in columns],
        "std": [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns],
    }


def evaluate_run(run_path: Path, settings: EvalSettings, baselines: Sequence[str] = (),
                 progress: Callable[[str], None] | None = None,
                 train_baseline: TrainBaseline | None = None) -> dict[str, Any]:
    """Evaluate a run and its baselines; returns a JSON-safe result.

    Refuses a run with no checkpoint yet. ``progress(method)`` is called before each method,
    ``train_baseline`` trains a baseline that needs it (see :func:`method_session`); a
    baseline training that stops early raises :class:`BaselineInterrupted`.
    """
    settings.validate()
    run = RunDir(Path(run_path))
    config = run.read_config()
    if not run.checkpoint_path.is_file():
        raise RunError(f"run {run.path} has no checkpoint yet; train it first (or continue it "
                       f"with gameadapt train --resume {run.path})")
    check_run_providers(run)
    spec = get_registry().game(config["game"])
    spec.variant_space.parse_assignments(settings.fixed)
    share_policy = bool(config.get("train", {}).get("share_policy", False))
    check_game_views(spec, _variants(spec, settings, settings.seeds[0])[0], "cpu",
                     spec.controlled_agents(share_policy))
    methods = [config["algorithm"]] + [b for b in baselines if b != config["algorithm"]]
    results: dict[str, Any] = {}
    agents: list[str] = []
    for method in methods:
        if progress is not None:
            progress(method)
        session = method_session(run, method, train_baseline)
        if session.stopped is not None:
            raise BaselineInterrupted(method, session.stopped)
        with torch.random.fork_rng(devices=_cuda_devices(session.device)):
            torch.manual_seed(0)  # the caller's random state is left as it was
            per_seed = evaluate_session(session, settings)
        results[method] = {"per_seed": per_seed, **summarize(per_seed),
                           "trained_iterations": session.iteration}
        agents = list(session.agents)
    return {
        "run": str(run.path),
        "game": config["game"],
        "agents": agents or None,
        **dataclasses.asdict(settings),
        "methods": results,
    }


def format_results(result: dict[str, Any]) -> str:
    """A terminal table: one row per method, one column per step count."""
    steps = result["steps"]
    headers = ["method"] + [("before" if k == 0 else f"after {k} step" + ("s" if k > 1 else ""))
                            for k in steps]
    rows = []
    for method, data in result["methods"].items():
        rows.append([method] + [f"{m:.2f} ± {s:.2f}" for m, s in zip(data["mean"], data["std"])])
    agents = result.get("agents") or []
    whose = f"{agents[0]}'s " if agents else ""
    title = (f"{result['game']}: mean {whose}return on {result['tasks']} {result['split']} "
             f"variants x {result['episodes']} episodes, {len(result['seeds'])} seed(s) "
             f"(± std over seeds)")
    if result.get("fixed"):
        title += f"\nwith {', '.join(result['fixed'])} in every variant"
    if len(agents) > 1:
        title += f"\none shared policy drives {', '.join(agents)}"
    return title + "\n" + format_table(headers, rows)


def require_pyplot() -> Any:
    """matplotlib's pyplot (Agg backend), or a one-line error if it is not installed."""
    try:  # matplotlib takes a while to import: only when a plot is asked for
        import matplotlib
        import matplotlib.pyplot as plt
    except ImportError:
        raise GameadaptError("--plot needs matplotlib, a dependency of gameadapt that is "
                             "missing here: pip install matplotlib") from None
    matplotlib.use("Agg")
    return plt


def plot_results(result: dict[str, Any], path: Path) -> None:
    """Save a PNG: return vs adaptation steps, one line per method."""
    plt = require_pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for method, data in result["methods"].items():
        axes.errorbar(result["steps"], data["mean"], yerr=data["std"], marker="o", capsize=3,
                      label=method)
    axes.set_xlabel("adaptation steps")
    axes.set_ylabel("mean return")
    axes.set_title(f"{result['game']}: held-out adaptation" if result["split"] == "test"
                   else f"{result['game']}: {result['split']} variants")
    axes.set_xticks(result["steps"])
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
