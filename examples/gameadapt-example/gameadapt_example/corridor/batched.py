"""The batched torch view of Corridor: ``[tasks, envs]`` of different variants in one step.

Only :func:`gameadapt_example.corridor.make_batched` imports this module, so torch is loaded
only when a batched game is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from gameadapt.batched import batch_stream_keys, checked_actions, keep_ended
from gameadapt.game import BatchedStep
from gameadapt.variants import Variant

from . import dynamics
from .dynamics import VARIANT_SPACE


class BatchedCorridor:
    """``len(variants)`` tasks x ``envs_per_task`` envs, stepped as tensors on ``device``.

    Follows :class:`gameadapt.game.BatchedGame`: env ``(m, e)`` draws from the stream
    ``stream_key(seed, (first_task + m) * E + e)``, and an env whose episode ended stays
    frozen (same observation, reward 0, no flags) until the next :meth:`reset`.
    """

    agents: tuple[str, ...] = ()  # a single-agent game

    def __init__(self, variants: Sequence[Variant], envs_per_task: int, device: Any,
                 first_task: int = 0) -> None:
        if not variants:
            raise ValueError("BatchedCorridor needs at least one variant")
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        self.variants = [VARIANT_SPACE.validate(v) for v in variants]
        self.num_tasks = len(self.variants)
        self.envs_per_task = envs_per_task
        self.first_task = first_task
        self.device = torch.device(device)
        tables = dynamics.build_params(self.variants)
        self.horizon = int(tables.time_limit.max())
        # one row per task: [M, 1] broadcasts against the [M, E] batch
        self.params = dynamics.Params(*(torch.as_tensor(t, device=self.device)[:, None]
                                        for t in tables))
        self._state: dynamics.State | None = None
        self._done: torch.Tensor | None = None

    def reset(self, seed: int) -> torch.Tensor:
        """Start a new episode in every env; return observations ``[M, E, 3]``."""
        key = batch_stream_keys(seed, self.num_tasks, self.envs_per_task, self.device,
                                self.first_task)
        self._state = dynamics.initial_state(torch, self.params, key)
        self._done = torch.zeros_like(key, dtype=torch.bool)
        return dynamics.observe(torch, self.params, self._state)

    def close(self) -> None:
        """Nothing to release (the protocol's ``close``)."""

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Apply ``[M, E]`` long actions (ignored for ended envs); return the batch step."""
        if self._state is None or self._done is None:
            raise RuntimeError("call reset() before step()")
        action = checked_actions(action, self._done.shape, self.device)
        alive = ~self._done
        new, reward, terminated, truncated = dynamics.step(torch, self.params, self._state, action)
        self._state = keep_ended(alive, new, self._state)
        reward = torch.where(alive, reward, 0.0)
        terminated, truncated = terminated & alive, truncated & alive
        self._done = self._done | terminated | truncated
        return BatchedStep(dynamics.observe(torch, self.params, self._state), reward,
                           terminated, truncated)
