"""The batched torch view of pointnav: ``[tasks, envs]`` agents stepped as tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from gameadapt.game import BatchedStep
from gameadapt.variants import Variant

from . import dynamics


class BatchedPointNav:
    """``len(variants)`` tasks x ``envs_per_task`` agents, on any torch device.

    Implements :class:`gameadapt.game.BatchedGame`: ``reset(seed)`` returns positions
    ``[M, E, 2]`` (float32), ``step(action)`` takes ``[M, E, 2]`` float actions (clipped like
    the single view). Each env plays one episode per reset and is frozen once it has ended.
    The step is :func:`gameadapt.games.pointnav.dynamics.step`, the same code the numpy
    view runs, so env ``(m, e)`` matches ``PointNavEnv(variants[m])`` exactly. Pointnav has
    no randomness: ``seed`` is accepted for the protocol and recorded only. ``success`` is
    ``terminated`` (reaching the goal is the only way to end before the horizon).
    """

    agents: tuple[str, ...] = ()  # single-agent

    def __init__(self, variants: Sequence[Variant], envs_per_task: int,
                 device: torch.device | str = "cpu", first_task: int = 0) -> None:
        if not variants:
            raise ValueError("BatchedPointNav needs at least one variant")
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        params = [dynamics.task_params(dynamics.VARIANT_SPACE.validate(v)) for v in variants]
        self.num_tasks = len(params)
        self.envs_per_task = envs_per_task
        self.first_task = first_task  # no randomness: kept for the protocol only
        self.device = torch.device(device)
        self.horizon = max(p.horizon for p in params)

        def per_task(values: list[Any], dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype, device=self.device)

        self.goal = per_task([[p.goal] for p in params], torch.float32)  # [M, 1, 2]
        self.speed = per_task([[[p.speed]] for p in params], torch.float32)  # [M, 1, 1]
        self.drift = per_task([[p.drift] for p in params], torch.float32)  # [M, 1, 2]
        self.horizons = per_task([[p.horizon] for p in params], torch.long)  # [M, 1]
        self.seed: int | None = None
        self.position: torch.Tensor | None = None
        self.steps: torch.Tensor | None = None
        self.done: torch.Tensor | None = None

    def reset(self, seed: int) -> torch.Tensor:
        """Put every agent back at the origin; return observations ``[M, E, 2]``."""
        shape = (self.num_tasks, self.envs_per_task)
        self.seed = seed
        self.position = torch.zeros(*shape, 2, dtype=torch.float32, device=self.device)
        self.steps = torch.zeros(shape, dtype=torch.long, device=self.device)
        self.done = torch.zeros(shape, dtype=torch.bool, device=self.device)
        return self.position.clone()

    def close(self) -> None:
        """Nothing to release (the protocol's ``close``)."""

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Move every live agent; ended envs keep their position and get reward 0."""
        if self.position is None or self.steps is None or self.done is None:
            raise RuntimeError("call reset() before step()")
        expected = (self.num_tasks, self.envs_per_task, 2)
        if tuple(action.shape) != expected:
            raise ValueError(f"action must have shape {list(expected)}, got {list(action.shape)}")
        action = action.to(device=self.device, dtype=torch.float32)
        position, reward, terminated = dynamics.step(
            torch, self.position, action, self.goal, self.speed, self.drift)
        live = ~self.done
        self.steps = self.steps + live
        truncated = dynamics.truncated(self.steps, self.horizons, terminated) & live
        terminated = terminated & live
        self.position = torch.where(live.unsqueeze(-1), position, self.position)
        self.done = self.done | terminated | truncated
        reward = torch.where(live, reward, 0.0)
        return BatchedStep(self.position.clone(), reward, terminated, truncated,
                           terminated.clone())

