"""Meta-training: the loop behind ``gameadapt train``.

Every iteration samples a fresh meta-batch of variants from the configured split, builds
one batched game for it and lets the algorithm do one meta-iteration. Everything random is
derived from ``(seed, iteration)``, so a resumed run ends bit-identical to an uninterrupted
one (on CPU; see :mod:`gameadapt.train.session`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch

from ..files import remove_temp_files
from ..learn.shard import sharded
from ..learn.vector import make_batched_game
from .checkpoint import save_checkpoint
from .distributed import agree_stop, task_shard
from .metrics import MetricsSink
from .runs import RunDir, RunError
from .session import Session, iteration_seed, iteration_variants

ProgressCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], str | None]  # the reason to stop now, or None to go on


def train(session: Session, run: RunDir, progress: ProgressCallback | None = None,
          should_stop: StopCheck | None = None) -> Session:
    """Run meta-iterations until ``config.iterations``, logging and checkpointing.

    ``should_stop`` is asked after every completed iteration; when it returns a reason
    (Ctrl-C, a time budget) the state as of that iteration's end is checkpointed and
    training returns early with ``session.stopped`` set to the reason. The run folder is
    locked for the whole training (:meth:`RunDir.locked`; a one-line error if another
    process holds it).
    """
    session.stopped = None
    if session.iteration >= session.config.iterations:
        return session
    if not session.writer:  # another rank of a distributed run: rank 0 writes the folder
        _train_locked(session, None, progress, should_stop)
        return session
    with run.locked():
        remove_temp_files(run.path)  # what killed checkpoint and config writes left
        _train_locked(session, run, progress, should_stop)
        run.record_progress(session.iteration, session.stopped)
    return session


def _train_locked(session: Session, run: RunDir | None, progress: ProgressCallback | None,
                  should_stop: StopCheck | None) -> None:
    """The loop of :func:`train`, in a run folder this process owns (``run`` None: a rank
    that writes nothing).

    Every metrics row is on disk before the checkpoint that covers it; an iteration that
    leaves non-finite weights writes neither (a one-line :class:`RunError`). The ranks of a
    distributed run agree on when to stop (:func:`~gameadapt.train.distributed.agree_stop`).
    """
    config = session.config
    checkpointed = session.iteration if run is not None and run.checkpoint_path.exists() \
        else None
    sink = MetricsSink(run, session.iteration, config.to_json()) if run is not None else None
    try:
        while session.iteration < config.iterations:
            row = _train_iteration(session)
            _check_finite(session, checkpointed)
            if sink is not None:
                sink.write(row)
            session.iteration += 1
            reason = agree_stop(session.world, should_stop() if should_stop else None)
            if run is not None and (reason is not None or session.iteration == config.iterations
                                    or session.iteration % config.checkpoint_every == 0):
                save_checkpoint(run.checkpoint_path, session.checkpoint_payload())
                checkpointed = session.iteration
            if progress is not None:
                progress(row)
            if reason is not None and session.iteration < config.iterations:
                session.stopped = reason
                break
    finally:
        if sink is not None:
            sink.close()


def _check_finite(session: Session, checkpointed: int | None) -> None:
    """A one-line :class:`RunError` if the iteration just done left a non-finite weight."""
    for name, value in session.policy.state_dict().items():
        if torch.is_tensor(value) and value.is_floating_point() and \
                not bool(torch.isfinite(value).all()):
            kept = (f"the last checkpoint (iteration {checkpointed}) is kept"
                    if checkpointed is not None else "no checkpoint was written")
            raise RunError(f"training diverged at iteration {session.iteration} (non-finite "
                           f"weights in {name}); lower the learning rates (e.g. -o outer_lr, "
                           f"--inner-lr); {kept}")


def _train_iteration(session: Session) -> dict[str, Any]:
    """One meta-iteration; returns its metrics row."""
    config = session.config
    started = time.perf_counter()
    seed = iteration_seed(config.seed, session.iteration)
    variants = iteration_variants(config, session.spec, session.iteration)
    share = None if session.world is None else \
        task_shard(session.world, len(variants), session.device)
    if share is not None:  # this rank's tasks, with the global index of the first
        variants = variants[share.start:share.stop]
    with contextlib.closing(make_batched_game(
            session.spec, variants, config.envs_per_task, session.device, session.agents,
            first_task=share.start if share is not None else 0)) as game, sharded(share):
        metrics = session.algorithm.meta_train_step(session.policy, session.params,
                                                    session.optimizer, game, seed)
    seconds = time.perf_counter() - started
    return {"iteration": session.iteration, **metrics, "seconds": seconds,
            "env_steps_per_s": metrics.get("env_steps", 0.0) / max(seconds, 1e-9)}


