"""Meta-training on several processes: ``torchrun --nproc-per-node N -m gameadapt train ...``.

A meta-batch's tasks are independent until the outer step, so each rank takes a contiguous
share of them (:func:`split_tasks`: ``M`` tasks over ``N`` ranks, the first ``M mod N`` ranks
one task more), builds its batched game with the global index of its first task (so its envs
and random streams are the ones those tasks get in one process), and trains inside a
:class:`~gameadapt.learn.shard.TaskShard`, which draws the whole meta-batch's action noise
and slices it, runs every rollout as long as any rank's env is alive, and all-reduces the
outer gradients and statistics (:mod:`gameadapt.learn.shard`). Every rank then takes the
same optimiser step, so the parameters stay equal on every rank, and equal to a
one-process run's to float tolerance (sums in another order).

The process group comes from torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``...): gloo on CPU, NCCL on CUDA with one GPU per process
(``cuda:LOCAL_RANK``). Rank 0 is the only writer: it holds the run folder's lock and writes
``config.json`` (with the world size and the split), metrics, TensorBoard and checkpoints;
every rank agrees, after each iteration, on whether to stop (:func:`agree_stop`).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import GameadaptError
from ..learn.shard import TaskShard
from .stopping import INTERRUPTED, TIME_BUDGET

STOP_REASONS = (None, TIME_BUDGET, INTERRUPTED)  # agree_stop takes the most urgent
TIMEOUT = datetime.timedelta(minutes=30)  # a collective that waits longer fails


@dataclass(frozen=True)
class World:
    """This process's place in the job."""

    rank: int
    size: int
    local_rank: int
    backend: str

    @property
    def writer(self) -> bool:
        """True on rank 0, the only process that writes the run folder."""
        return self.rank == 0


def launched() -> bool:
    """True in a process started by torchrun (or any launcher that sets ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def join(device: str) -> World | None:
    """Join torchrun's process group (``None`` outside one, or in a world of one process).

    ``device`` is the run's setting: NCCL when it resolves to CUDA, else gloo.
    """
    if not launched():
        return None
    size, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    cuda = device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return World(rank, size, local_rank, backend) if size > 1 else None


def device_for(world: World | None, device: str) -> str:
    """The run's device on this rank: ``cuda:LOCAL_RANK`` under NCCL, else ``device``."""
    if world is not None and world.backend == "nccl":
        return f"cuda:{world.local_rank}"
    return device


def split_tasks(total: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of every rank: contiguous, the first ``total % size`` one task more."""
    if total < size:
        raise GameadaptError(f"--meta-batch {total} is smaller than the {size} processes; "
                             f"give every process at least one task")
    base, extra = divmod(total, size)
    bounds = [0]
    for rank in range(size):
        bounds.append(bounds[-1] + base + (1 if rank < extra else 0))
    return [(bounds[r], bounds[r + 1]) for r in range(size)]


def task_shard(world: World, total: int, device: Any) -> TaskShard:
    """This rank's :class:`TaskShard` of a meta-batch of ``total`` tasks."""
    start, stop = split_tasks(total, world.size)[world.rank]
    return TaskShard(start, stop, total, world.rank, world.size,
                     str(device) if world.backend == "nccl" else "cpu")


def record(world: World | None, total: int) -> dict[str, Any]:
    """The ``distributed`` entry of ``config.json``: the world size and the split."""
    size = world.size if world is not None else 1
    return {"world_size": size, "backend": world.backend if world is not None else None,
            "split": [list(bounds) for bounds in split_tasks(total, size)],
            "uneven": "the first meta_batch % world_size ranks take one task more"}


def broadcast_state(world: World | None, module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (they start equal; this makes it so)."""
    if world is None:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def agree_stop(world: World | None, reason: str | None) -> str | None:
    """The stop reason every rank acts on: the most urgent any rank has."""
    if world is None:
        return reason
    code = torch.tensor([STOP_REASONS.index(reason)], dtype=torch.int64,
                        device=_collective_device(world))
    dist.all_reduce(code, op=dist.ReduceOp.MAX)
    return STOP_REASONS[int(code.item())]


def agree_ok(world: World | None, ok: bool, what: str) -> None:
    """All ranks go on only if every rank's ``ok``: else a one-line error on the others."""
    if world is None:
        return
    flag = torch.tensor([1 if ok else 0], dtype=torch.int64, device=_collective_device(world))
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    if ok and not bool(flag.item()):
        raise GameadaptError(f"rank {world.rank}: another process could not {what} (its "
                             f"error says why); stopping")


def _collective_device(world: World) -> str:
    return f"cuda:{world.local_rank}" if world.backend == "nccl" else "cpu"


def lost_peer(world: World, exc: BaseException, resume: str) -> GameadaptError:
    """The one line a rank prints when a collective fails because another rank died."""
    return GameadaptError(f"rank {world.rank}: lost the other training processes "
                          f"({type(exc).__name__}); the last checkpoint is kept: {resume}")


def lost_peer_error(exc: BaseException) -> bool:
    """True for the error a collective raises when a peer process is gone."""
    text = str(exc).lower()
    return isinstance(exc, dist.DistError) or any(
        word in text for word in ("gloo", "nccl", "connection closed", "connection reset",
                                  "broken pipe"))


def leave(world: World | None) -> None:
    """Leave the process group (at the end of ``train``)."""
    if world is not None and dist.is_initialized():
        dist.destroy_process_group()
