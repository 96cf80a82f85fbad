"""A tiny batched game for the meta-learning tests (no dependency on the built-in games).

A point moves in the plane towards a per-task goal (reward: minus the distance). Task ``m``
*terminates* after ``lifetimes[m]`` steps when that is below ``horizon`` (so masks can be
checked exactly); otherwise episodes are truncated at ``horizon``. Start positions are drawn
from ``seed``. Continuous actions are ``[M, E, 2]`` velocities; discrete actions (4) move by
0.1 along an axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium
import numpy as np
import torch
from gameadapt.game import BatchedStep

OBSERVATION_SPACE = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
BOX_ACTIONS = gymnasium.spaces.Box(-0.1, 0.1, (2,), np.float32)
DISCRETE_ACTIONS = gymnasium.spaces.Discrete(4)
_MOVES = torch.tensor([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]])


class FakeGame:
    """``len(goals)`` tasks x ``envs_per_task`` envs of the point game."""

    def __init__(self, goals: Sequence[tuple[float, float]], envs_per_task: int,
                 lifetimes: Sequence[int] | None = None, horizon: int = 12,
                 discrete: bool = False) -> None:
        self.num_tasks = len(goals)
        self.envs_per_task = envs_per_task
        self.horizon = horizon
        self.device = torch.device("cpu")
        self.discrete = discrete
        self.goal = torch.tensor(goals, dtype=torch.float32).unsqueeze(1)  # [M, 1, 2]
        lifetimes = lifetimes or [horizon + 1] * self.num_tasks
        self.lifetime = torch.tensor(lifetimes).unsqueeze(1)  # [M, 1]
        self.sent_actions: list[torch.Tensor] = []

    @property
    def action_space(self) -> gymnasium.spaces.Space:
        return DISCRETE_ACTIONS if self.discrete else BOX_ACTIONS

    def reset(self, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        shape = (self.num_tasks, self.envs_per_task)
        self.position = torch.rand(*shape, 2, generator=generator) * 0.2 - 0.1
        self.steps = torch.zeros(shape, dtype=torch.long)
        self.done = torch.zeros(shape, dtype=torch.bool)
        self.sent_actions = []
        return self.position.clone()

    def step(self, action: torch.Tensor) -> BatchedStep:
        self.sent_actions.append(action.clone())
        move = _MOVES[action] if self.discrete else action.clamp(-0.1, 0.1)
        live = ~self.done
        self.position = torch.where(live.unsqueeze(-1), self.position + move, self.position)
        self.steps = self.steps + live.long()
        terminated = (self.steps >= self.lifetime) & live
        truncated = (self.steps >= self.horizon) & live & ~terminated
        reward = torch.where(live, -(self.position - self.goal).norm(dim=-1), torch.zeros(()))
        self.done = self.done | terminated | truncated
        return BatchedStep(self.position.clone(), reward, terminated, truncated)
