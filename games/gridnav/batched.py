"""The batched torch view of GridNav: ``[tasks, envs]`` of different variants in one step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from gameadapt.batched import batch_stream_keys, checked_actions, keep_ended
from gameadapt.game import BatchedStep

from . import dynamics
from .dynamics import VARIANT_SPACE


class BatchedGridNav:
    """``len(variants)`` GridNav tasks x ``envs_per_task`` envs, stepped as tensors on ``device``.

    Follows the :class:`gameadapt.game.BatchedGame` protocol: env ``(m, e)`` uses the stream
    ``stream_key(seed, (first_task + m) * E + e)``, and envs whose episode ended are frozen until
    :meth:`reset`. ``success`` is ``terminated``: reaching the goal is the only way to end early.
    """

    agents: tuple[str, ...] = ()  # single-agent

    def __init__(self, variants: Sequence[Mapping[str, Any]], envs_per_task: int, device: Any,
                 first_task: int = 0) -> None:
        if not variants:
            raise ValueError("BatchedGridNav needs at least one variant")
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        self.variants = [VARIANT_SPACE.validate(v) for v in variants]
        self.num_tasks = len(self.variants)
        self.envs_per_task = envs_per_task
        self.first_task = first_task
        self.device = torch.device(device)
        tables = dynamics.build_params(self.variants)
        self.horizon = int(tables.time_limit.max())
        params = dynamics.Params(*(torch.as_tensor(t, device=self.device) for t in tables))
        self.params = params._replace(task=params.task[:, None])  # [M, 1]: broadcasts over envs
        self._state: dynamics.State | None = None
        self._done: torch.Tensor | None = None

    def reset(self, seed: int) -> torch.Tensor:
        """Start a new episode in every env; return observations ``[M, E, 9]``."""
        key = batch_stream_keys(seed, self.num_tasks, self.envs_per_task, self.device,
                                self.first_task)
        self._state = dynamics.initial_state(torch, self.params, key)
        self._done = torch.zeros_like(key, dtype=torch.bool)
        return dynamics.observe(torch, self.params, self._state)

    def close(self) -> None:
        """Nothing to release (the protocol's ``close``)."""

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Apply ``[M, E]`` long actions (ignored for ended envs); return the new batch step."""
        if self._state is None or self._done is None:
            raise RuntimeError("call reset() before step()")
        action = checked_actions(action, self._done.shape, self.device)
        alive = ~self._done
        action = torch.where(alive, action, 0)
        new, reward, terminated, truncated = dynamics.step(torch, self.params, self._state, action)
        self._state = keep_ended(alive, new, self._state)
        reward = torch.where(alive, reward, 0.0)
        terminated, truncated = terminated & alive, truncated & alive
        self._done = self._done | terminated | truncated
        observation = dynamics.observe(torch, self.params, self._state)
        return BatchedStep(observation, reward, terminated, truncated, terminated.clone())
