"""Honest evaluation: return before and after k adaptation steps on held-out variants.

For each evaluation seed, ``tasks`` variants are drawn from the held-out split and every
method plays ``episodes`` episodes per variant with its shared parameters, adapts per task
with 1..k inner steps on those episodes, and plays again. The methods are the run itself and
baselines given the same data: ``scratch`` (random init, same fine-tuning) and any other
algorithm, e.g. ``pretrain``, trained with the run's exact config (iterations, meta-batch,
seeds, hence the same variants) into ``RUN/baselines/ALGO`` and reused on later calls.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import GameadaptError
from .learner import evaluate_adaptation
from .registry import get_registry
from .rollout import make_batched_game
from .runs import RunDir
from .trainer import (
    ProgressCallback,
    Session,
    build_session,
    load_session,
    make_config,
    set_cpu_threads,
    start_run,
    train,
)
from .variants import SPLITS

BASELINES_DIR = "baselines"


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: split, tasks per seed, episodes per task, adaptation steps, seeds.

    ``fixed`` are ``key=value`` assignments applied to every sampled variant (e.g.
    ``rules.opponent=mirroring`` for one held-out opponent style).
    """

    split: str = "test"
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


def method_session(run: RunDir, method: str, progress: ProgressCallback | None = None
                   ) -> Session:
    """The session of the run itself (``method`` = its algorithm) or of a baseline."""
    run_config = make_config(run.read_config()["train"])
    if method == run_config.algorithm:
        return load_session(run)
    config = dataclasses.replace(run_config, algorithm=method)
    session = build_session(config)
    if not session.algorithm.trains:
        return session
    baseline_run = RunDir(run.path / BASELINES_DIR / method)
    if baseline_run.config_path.exists():
        session = load_session(baseline_run, config)
    else:
        session = start_run(config, baseline_run)
    return train(session, baseline_run, progress)


def evaluate_session(session: Session, settings: EvalSettings) -> list[list[float]]:
    """Per seed, the mean return over tasks at each requested step count."""
    spec = session.spec
    top = max(settings.steps)
    per_seed = []
    for seed in settings.seeds:
        variants = [spec.variant_space.parse_assignments(settings.fixed, variant) for variant
                    in spec.variant_space.sample(settings.split, settings.tasks, seed)]  # type: ignore[arg-type]
        game = make_batched_game(spec, variants, settings.episodes, session.device,
                                 session.agents)
        returns = evaluate_adaptation(session.algorithm, session.policy, session.params, game,
                                      seed, top)  # [top + 1, tasks]
        close = getattr(game, "close", None)
        if callable(close):
            close()
        per_seed.append([returns[k].mean().item() for k in settings.steps])
    return per_seed


def summarize(per_seed: list[list[float]]) -> dict[str, list[float]]:
    """Mean and standard deviation over seeds at each step count."""
    columns = list(zip(*per_seed))
    return {
        "mean": [statistics.fmean(c) for c in columns],
        "std": [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns],
    }


def evaluate_run(run_path: Path, settings: EvalSettings, baselines: Sequence[str] = (),
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate a run and its baselines; returns a JSON-safe result."""
    settings.validate()
    run = RunDir(Path(run_path))
    config = run.read_config()
    get_registry().game(config["game"]).variant_space.parse_assignments(settings.fixed)
    methods = [config["algorithm"]] + [b for b in baselines if b != config["algorithm"]]
    results: dict[str, Any] = {}
    agents: list[str] = []
    for method in methods:
        if progress is not None:
            progress(method)
        session = method_session(run, method)
        set_cpu_threads(session.device)
        torch.manual_seed(0)
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
    from .tables import format_table

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
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GameadaptError("--plot needs matplotlib: pip install 'gameadapt[plot]'") from None
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
