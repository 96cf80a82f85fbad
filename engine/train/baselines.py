"""Baselines for evaluation: methods trained (or not) with a run's own settings and data.

A baseline that trains (``pretrain``) is trained with the run's config for exactly the
iterations the run has completed, into ``RUN/baselines/ALGO``, and reused while the run stays
there (see :func:`method_session`).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from typing import Any

from ..errors import GameadaptError
from ..files import remove_aside, replace_folder
from ..host.registry import get_registry
from ..locks import lock_output
from .runs import RunDir
from .session import Session, TrainConfig, build_session, load_session, start_run
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
    config = dataclasses.replace(run_session.config, algorithm=method, iterations=completed,
                                 options=_baseline_options(run_session, method))
    session = build_session(config)
    if not session.algorithm.trains:
        return session
    baseline_run = RunDir(run.path / BASELINES_DIR / method)
    with lock_output(baseline_run.path, "gameadapt evaluate"):
        remove_aside(baseline_run.path)  # a replacement killed midway: the old copy back
        return _baseline_session(config, completed, baseline_run,
                                 {"baseline_of": {"run": str(run.path),
                                                  "run_iterations": completed}},
                                 train_baseline)


def _baseline_session(config: TrainConfig, completed: int, baseline_run: RunDir,
                      record: dict[str, Any], train_baseline: TrainBaseline) -> Session:
    """Reuse, train on or retrain the baseline in ``baseline_run`` (its lock held)."""
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


def _baseline_options(run_session: Session, method: str) -> dict[str, Any]:
    """The run's resolved algorithm options that ``method`` also has when it is of the same
    family (e.g. pretrain beside maml: the same inner and outer settings), else ``method``'s
    defaults."""
    probe = get_registry().algorithm(method).make({})
    if probe.family != run_session.algorithm.family:
        return {}
    known = probe.options()
    return {k: v for k, v in run_session.algorithm.options().items() if k in known}


def _train_fresh_baseline(config: TrainConfig, baseline_run: RunDir, record: dict[str, Any],
                          train_baseline: TrainBaseline, reason: str) -> Session:
    """Train a baseline from scratch beside any old one, then put it in the old one's place.

    The new one is trained in ``.ALGO.new`` next to it; an interrupted training there is
    continued by the next call. The swap never loses the old one (:func:`replace_folder`).
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
    replace_folder(staging.path, baseline_run.path, fault="baseline")
    return session
