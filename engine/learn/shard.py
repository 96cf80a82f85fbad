"""One rank's share of a meta-batch, and the collectives that make it act as the whole.

Distributed meta-training (:mod:`gameadapt.train.distributed`) gives every rank a contiguous
slice ``[start, stop)`` of the meta-batch's ``total`` tasks. While a :class:`TaskShard` is
current (:func:`sharded`), the learning code draws, reduces and stops as if it held every
task:

- **noise** (:func:`uniform`, :func:`normal`): drawn for all ``total`` tasks from the
  round's generator and sliced, so a task's actions are the ones it gets in one process;
- **time**: a rollout goes on while any env of *any* rank is alive (:func:`any_alive`), so
  the generators of all ranks advance alike;
- **means**: a loss that is a mean over tasks (or over the masked steps of a minibatch) is
  written as this rank's sum divided by the global count (:func:`task_mean`,
  :func:`masked_mean`): the sum of the ranks' losses is the one-process loss, and
  :func:`reduce_gradients` (a SUM all-reduce before every optimiser step) makes every
  rank's gradient the one-process gradient;
- **statistics** (:func:`reduce_stats`, :func:`global_mean`, :func:`moments`): summed over
  the ranks, so metrics, early stops and running normalisers agree everywhere.

Without a current shard (one process, evaluation, adaptation) every function is the plain
local computation, bit for bit what the code did before distribution existed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class TaskShard:
    """Tasks ``[start, stop)`` of a meta-batch of ``total`` tasks, on rank ``rank`` of ``world``."""

    start: int
    stop: int
    total: int
    rank: int = 0
    world: int = 1
    device: str = "cpu"  # where the collectives' tensors live (cuda:N with NCCL)

    @property
    def size(self) -> int:
        return self.stop - self.start


_current: contextvars.ContextVar[TaskShard | None] = contextvars.ContextVar(
    "gameadapt_task_shard", default=None)


def current() -> TaskShard | None:
    """The shard being trained, or None in one process."""
    return _current.get()


@contextlib.contextmanager
def sharded(shard: TaskShard | None) -> Iterator[None]:
    """Make ``shard`` current (``None``: leave everything local)."""
    token = _current.set(shard)
    try:
        yield
    finally:
        _current.reset(token)


def _reduce(tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM
            ) -> torch.Tensor:
    """``tensor`` reduced over the ranks in place (nothing without a shard)."""
    if current() is not None:
        dist.all_reduce(tensor, op=op)
    return tensor


def _draw(kind: str, shape: torch.Size, generator: torch.Generator | None,
          device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    shard = current()
    full = shape if shard is None else torch.Size((shard.total, *shape[1:]))
    draw = torch.rand if kind == "uniform" else torch.randn
    values = draw(full, generator=generator, device=device, dtype=dtype)
    return values if shard is None else values[shard.start:shard.stop]


def uniform(shape: torch.Size, generator: torch.Generator | None, device: torch.device,
            dtype: torch.dtype) -> torch.Tensor:
    """``torch.rand`` of a task-major ``shape`` (``[M, ...]``), the shard's rows of the whole."""
    return _draw("uniform", shape, generator, device, dtype)


def normal(shape: torch.Size, generator: torch.Generator | None, device: torch.device,
           dtype: torch.dtype) -> torch.Tensor:
    """``torch.randn`` of a task-major ``shape``, the shard's rows of the whole."""
    return _draw("normal", shape, generator, device, dtype)


def any_alive(alive: torch.Tensor) -> bool:
    """True while any env of any rank is alive."""
    flag = alive.any().to(torch.float32).reshape(1)
    return bool(_reduce(flag, dist.ReduceOp.MAX).item() > 0)


def task_mean(values: torch.Tensor, tasks: int | None = None) -> torch.Tensor:
    """The mean over ``tasks`` tasks (default: the meta-batch's) of per-task ``values [M]``,
    of which this rank holds ``values``: its share of the mean."""
    shard = current()
    if shard is None:
        return values.mean()
    return values.sum() / (tasks if tasks is not None else shard.total)


def mask_count(mask: torch.Tensor) -> torch.Tensor:
    """How many entries of ``mask`` are 1 on every rank together (a 0-d tensor)."""
    return _reduce(mask.detach().sum().reshape(1).clone())[0]


def masked_mean(values: torch.Tensor, mask: torch.Tensor,
                count: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of ``values`` where ``mask`` is 1, over every rank's entries: this rank's sum
    over the global count (``(values * mask).sum() / mask.sum()`` in one process). Give
    ``count`` (:func:`mask_count` of ``mask``) to spare its all-reduce."""
    count = mask_count(mask) if count is None else count
    return (values * mask).sum() / count.clamp_min(1.0)


def reduce_stats(stats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Statistics that are this rank's shares of a mean (detached), summed over the ranks."""
    if current() is None or not stats:
        return dict(stats)
    names = list(stats)
    packed = _reduce(torch.stack([stats[name].detach().reshape(()).double() for name in names]))
    return {name: packed[i].to(stats[name].dtype) for i, name in enumerate(names)}


def reduce_gradients(params: Iterable[torch.Tensor]) -> None:
    """Sum every parameter's gradient over the ranks (one all-reduce of them all)."""
    if current() is None:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _reduce(torch.cat([g.reshape(-1) for g in grads]))
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def global_mean(values: torch.Tensor) -> float:
    """The mean of ``values`` over every rank's entries."""
    if current() is None:
        return values.mean().item()
    totals = _reduce(torch.stack([values.double().sum(), torch.tensor(
        float(values.numel()), dtype=torch.float64, device=values.device)]))
    return (totals[0] / totals[1]).item()


def global_sum(value: float) -> float:
    """``value`` summed over the ranks."""
    return _reduce(torch.tensor([value], dtype=torch.float64))[0].item()


def tasks_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean over the meta-batch's tasks of task-major ``values [M, ...]`` (the whole
    mean on every rank)."""
    shard = current()
    if shard is None:
        return values.mean(0)
    return _reduce(values.sum(0).contiguous()) / shard.total


def sums(*values: torch.Tensor | float) -> list[float]:
    """Each of ``values`` summed over the ranks (float64)."""
    shard = current()
    packed = torch.tensor([float(v) for v in values], dtype=torch.float64,
                          device=shard.device if shard is not None else "cpu")
    return [float(v) for v in _reduce(packed)]


def moments(flat: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
    """``(count, mean, variance)`` over the rows of every rank's float64 ``flat [N, D]``
    (the population variance; in one process ``flat.mean(0)``, ``flat.var(0, False)``)."""
    if current() is None:
        count = flat.shape[0]
        if count == 0:
            return 0, flat.new_zeros(flat.shape[1:]), flat.new_zeros(flat.shape[1:])
        return count, flat.mean(0), flat.var(0, unbiased=False)
    sums = _reduce(torch.cat([torch.tensor([float(flat.shape[0])], dtype=flat.dtype,
                                           device=flat.device),
                              flat.sum(0).reshape(-1), (flat ** 2).sum(0).reshape(-1)]))
    count, width = int(sums[0].item()), int(flat.shape[1])
    if count == 0:
        zero = flat.new_zeros(flat.shape[1:])
        return 0, zero, zero
    mean = (sums[1:1 + width] / count).reshape(flat.shape[1:])
    var = (sums[1 + width:] / count).reshape(flat.shape[1:]) - mean ** 2
    return count, mean, var.clamp_min(0.0)


def local_rows(indices: torch.Tensor, rows_per_task: int) -> torch.Tensor:
    """Of global row ``indices`` (``rows_per_task`` rows per task, task-major), the ones this
    rank holds, as local row numbers, in their order."""
    shard = current()
    if shard is None:
        return indices
    first, last = shard.start * rows_per_task, shard.stop * rows_per_task
    mine = indices[(indices >= first) & (indices < last)]
    return mine - first
