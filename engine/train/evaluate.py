"""Honest evaluation on held-out variants, at equal data, as the shipped agent plays.

For each evaluation seed, ``tasks`` variants are drawn from the held-out split. Every
method is measured on the *experience axis* (:mod:`~gameadapt.train.experience`): the
return of episode *n*+1 after *n* episodes on the variant, greedy (what a game playing the
``action`` output gets) and sampled, with the success rate where the game defines success;
the gradient family also keeps its per-step columns (``episodes`` episodes, adapted with
0..k inner steps, played again). A game's *reference* policy, which sees the hidden variant,
is the upper bound. The methods are the run itself, other runs given with ``compare``, and
baselines given the same data: ``scratch`` (random init) and any other algorithm, e.g.
``pretrain``, trained with the run's exact config (meta-batch, seeds, hence the same
variants) for the iterations the run has completed, into ``RUN/baselines/ALGO``, and reused
on later calls. Baselines are fine-tuned at their own best inner learning rate, chosen from
a grid on *training* variants (:func:`~gameadapt.train.experience.choose_finetune_lr`). The
game's declared spaces are checked before evaluating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..algorithm import GradientAlgorithm, gradient_algorithm, trial_algorithm
from ..errors import GameadaptError
from ..game import GameSpec
from ..hashrandom import derive_seed
from ..host.registry import get_registry
from ..learn.learner import evaluate_adaptation
from ..learn.policy import MLPPolicy
from ..learn.trials import LATENT_MODES, LatentMode
from ..learn.vector import make_batched_game
from ..limits import MAX_BUDGET
from ..variants import SPLITS, Split, Variant
from .experience import (ACTION_MODES, FINETUNE_LRS, ActionMode, Curve, choose_finetune_lr,
                         experience_curve)
from .baselines import BaselineInterrupted, TrainBaseline, method_session
from .runs import RunDir, RunError
from .session import Session, check_run_providers, load_session, run_train_config
from .spacecheck import check_game_views
from .upper_bound import reference_returns

FINETUNE_TASKS = 20  # training variants the baselines' fine-tuning rate is chosen on
FINETUNE_SEED = 7919  # their seed, derived from the run's


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
    budgets: tuple[int, ...] = (0, 1, 2, 5, 20)  # episodes of experience (the run's E is added)
    trials: int = 5  # independent trials per variant on the experience axis

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise GameadaptError(f"invalid split {self.split!r}: use train or test")
        if self.tasks < 1 or self.episodes < 1 or self.trials < 1:
            raise GameadaptError("--tasks, --episodes and --trials must be >= 1")
        if not self.steps or min(self.steps) < 0:
            raise GameadaptError("--steps must list adaptation step counts >= 0, e.g. 0,1,3")
        if not self.budgets or min(self.budgets) < 0 or max(self.budgets) > MAX_BUDGET:
            raise GameadaptError(f"--budgets must list episode counts from 0 to {MAX_BUDGET}, "
                                 f"e.g. 0,1,2,5,20")
        if not self.seeds:
            raise GameadaptError("--seeds must list at least one seed")


def evaluate_method(session: Session, settings: EvalSettings, budgets: Sequence[int],
                    baseline: bool) -> dict[str, Any]:
    """One method's results: the experience axis in both action modes and, for the gradient
    family, the per-step columns (a ``baseline`` first gets its own fine-tuning rate)."""
    entry: dict[str, Any] = {"family": session.algorithm.family,
                             "trained_iterations": session.iteration}
    algorithm = None
    if session.algorithm.family == "gradient":
        algorithm = gradient_algorithm(session.algorithm, "evaluation")
        if baseline:
            algorithm = _tuned_baseline(session, settings, entry)
        per_seed = [_step_columns(session, algorithm, settings, seed) for seed in settings.seeds]
        entry.update({"per_seed": per_seed, **summarize(per_seed)})
    else:
        entry["trial_episodes"] = trial_algorithm(session.algorithm).trial_episodes
    entry["experience"] = {
        label: summarize_curves([experience_curve(session, _variants(session.spec, settings, seed),
                                                  budgets, settings.trials, seed, mode, algorithm,
                                                  latent)
                                 for seed in settings.seeds])
        for label, mode, latent in experience_modes(session.algorithm.family)}
    return entry


def experience_modes(family: str) -> list[tuple[str, ActionMode, LatentMode]]:
    """The experience axis's rows for a family: ``(label, action mode, latent mode)``; the
    context family in both latent modes (``z`` drawn from the posterior, or its mean)."""
    if family != "context":
        return [(mode, mode, "sample") for mode in ACTION_MODES]
    return [(f"{mode}, z {'drawn' if latent == 'sample' else 'mean'}", mode, latent)
            for latent in LATENT_MODES for mode in ACTION_MODES]


def _tuned_baseline(session: Session, settings: EvalSettings, entry: dict[str, Any]
                    ) -> GradientAlgorithm:
    """The baseline at its best fine-tuning rate on training variants (recorded in ``entry``)."""
    config = session.config
    variants = session.spec.variant_space.sample("train", FINETUNE_TASKS,
                                                 derive_seed(config.seed, FINETUNE_SEED))
    lr, returns = choose_finetune_lr(session, variants, config.envs_per_task,
                                     derive_seed(config.seed, FINETUNE_SEED))
    entry["finetune_lr"] = {"chosen": lr, "grid": list(FINETUNE_LRS), "train_returns": returns,
                            "train_tasks": FINETUNE_TASKS, "episodes": config.envs_per_task}
    return gradient_algorithm(session.algorithm, "evaluation").with_inner_lr(lr)


def _step_columns(session: Session, algorithm: GradientAlgorithm, settings: EvalSettings,
                  seed: int) -> list[float]:
    """The mean return over tasks after each requested number of inner steps (sampled)."""
    policy = session.policy
    assert isinstance(policy, MLPPolicy)  # the gradient family's policy class
    variants = _variants(session.spec, settings, seed)
    with contextlib.closing(make_batched_game(session.spec, variants, settings.episodes,
                                              session.device, session.agents)) as game:
        returns = evaluate_adaptation(algorithm, policy, session.params, game, seed,
                                      max(settings.steps))  # [top + 1, tasks]
    return [returns[k].mean().item() for k in settings.steps]


def _variants(spec: GameSpec, settings: EvalSettings, seed: int) -> list[Variant]:
    """The evaluated variants of one seed (with the ``fixed`` assignments applied)."""
    return [spec.variant_space.parse_assignments(settings.fixed, variant) for variant
            in spec.variant_space.sample(settings.split, settings.tasks, seed)]


def _cuda_devices(device: torch.device) -> list[torch.device]:
    """The devices whose random state :func:`torch.random.fork_rng` must save."""
    return [device] if device.type == "cuda" else []


def summarize(per_seed: list[list[float]]) -> dict[str, list[float]]:
    """Mean and standard deviation over seeds at each column."""
    columns = list(zip(*per_seed))
    return {
        "mean": [statistics.fmean(c) for c in columns],
        "std": [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns],
    }


def summarize_curves(curves: Sequence[Curve]) -> dict[str, Any]:
    """Per-seed curves as ``{"return": {mean, std, per_seed}, "success": ... or None}``."""
    returns = [curve.returns for curve in curves]
    result: dict[str, Any] = {"return": {"per_seed": returns, **summarize(returns)},
                              "success": None}
    if all(curve.success is not None for curve in curves):
        success = [curve.success for curve in curves if curve.success is not None]
        result["success"] = {"per_seed": success, **summarize(success)}
    return result


def reference_results(spec: GameSpec, settings: EvalSettings) -> dict[str, Any] | None:
    """The game's reference policy on the same variants (``episodes`` each), or None."""
    if spec.reference is None:
        return None
    returns, success = [], []
    for seed in settings.seeds:
        played, succeeded = reference_returns(spec, _variants(spec, settings, seed),
                                              settings.episodes, seed)
        returns.append([played.mean().item()])
        success.append(None if succeeded is None else [succeeded.float().mean().item()])
    return {"return": summarize(returns),
            "success": None if None in success else summarize(
                [row for row in success if row is not None])}


def evaluate_run(run_path: Path, settings: EvalSettings, baselines: Sequence[str] = (),
                 progress: Callable[[str], None] | None = None,
                 train_baseline: TrainBaseline | None = None,
                 compare: Sequence[Path] = ()) -> dict[str, Any]:
    """Evaluate a run, the runs in ``compare`` and the baselines; returns a JSON-safe result.

    Refuses a run with no checkpoint yet. ``progress(method)`` is called before each method,
    ``train_baseline`` trains a baseline that needs it (see :func:`method_session`); a
    baseline training that stops early raises :class:`BaselineInterrupted`.
    """
    settings.validate()
    run = RunDir(Path(run_path))
    config = _checked_run(run)
    spec = get_registry().game(config["game"])
    spec.variant_space.parse_assignments(settings.fixed)
    share_policy = bool(config.get("train", {}).get("share_policy", False))
    check_game_views(spec, _variants(spec, settings, settings.seeds[0])[0], "cpu",
                     spec.controlled_agents(share_policy))
    budgets = sorted(set(settings.budgets) | {int(config["train"]["envs_per_task"])})
    results: dict[str, Any] = {}
    agents: list[str] = []
    for name, load, baseline in _methods(run, config, baselines, compare, train_baseline):
        if progress is not None:
            progress(name)
        session = load()
        if session.stopped is not None:
            raise BaselineInterrupted(name, session.stopped)
        with torch.random.fork_rng(devices=_cuda_devices(session.device)):
            torch.manual_seed(0)  # the caller's random state is left as it was
            results[name] = evaluate_method(session, settings, budgets, baseline)
        agents = list(session.agents)
    return {"run": str(run.path), "game": config["game"], "agents": agents or None,
            **dataclasses.asdict(settings), "budgets": budgets, "success_means": spec.success,
            "reference": reference_results(spec, settings), "methods": results}


def _checked_run(run: RunDir) -> dict[str, Any]:
    """The run's config (every field checked), once it has a checkpoint and its providers
    are still there."""
    config = run.read_config()
    run_train_config(run)
    if not run.checkpoint_path.is_file():
        raise RunError(f"run {run.path} has no checkpoint yet; train it first (or continue it "
                       f"with gameadapt train --resume {run.path})")
    check_run_providers(run)
    return config


MethodLoader = tuple[str, Callable[[], Session], bool]  # (name, load, is a baseline)


def _methods(run: RunDir, config: dict[str, Any], baselines: Sequence[str],
             compare: Sequence[Path], train_baseline: TrainBaseline | None
             ) -> list[MethodLoader]:
    """The run, the compared runs and the baselines, each with how to load its session."""
    methods: list[MethodLoader] = [(config["algorithm"], lambda: load_session(run), False)]
    for path in compare:
        other = RunDir(Path(path))
        other_config = _checked_run(other)
        if other_config["game"] != config["game"]:
            raise GameadaptError(f"--compare {path} is a run of {other_config['game']!r}, not "
                                 f"{config['game']!r}")
        name = other_config["algorithm"]
        if name in {m[0] for m in methods}:
            name = f"{name}@{other.path.name}"
        methods.append((name, partial(load_session, other), False))
    registry = get_registry()
    for method in baselines:
        if method in {m[0] for m in methods}:
            continue
        is_baseline = not registry.algorithm(method).adapts
        methods.append((method, partial(method_session, run, method, train_baseline),
                        is_baseline))
    return methods
