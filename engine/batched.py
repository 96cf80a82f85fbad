"""Building blocks for native batched views (the :class:`~gameadapt.game.BatchedGame` protocol).

Imports torch: only a game's batched module should import this one.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from .hashrandom import stream_keys

StateT = TypeVar("StateT", bound=tuple)


def batch_stream_keys(seed: int, num_tasks: int, envs: int, device: Any, first_task: int = 0
                      ) -> torch.Tensor:
    """The random-stream keys ``[M, E]`` of a batch: env ``(m, e)`` gets stream
    ``(first_task + m) * E + e``; ``first_task`` is the global index of the batch's first task
    (0 unless the batch is a slice of a larger meta-batch)."""
    start = first_task * envs
    index = torch.arange(start, start + num_tasks * envs, dtype=torch.int64, device=device)
    return stream_keys(int(seed), index.reshape(num_tasks, envs))


def checked_actions(action: Any, shape: tuple[int, ...], device: Any) -> torch.Tensor:
    """Discrete ``action`` as int64 on ``device``; ValueError unless it is shaped ``shape``."""
    action = torch.as_tensor(action, device=device).long()
    if tuple(action.shape) != tuple(shape):
        raise ValueError(f"action must have shape {tuple(shape)}, got {tuple(action.shape)}")
    return action


def keep_ended(alive: torch.Tensor, new: StateT, old: StateT) -> StateT:
    """A state (NamedTuple of batch-shaped tensors): ``new`` where ``alive``, else ``old``."""
    return type(new)(*(torch.where(alive, n, o) for n, o in zip(new, old)))
