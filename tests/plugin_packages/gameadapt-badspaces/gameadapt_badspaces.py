"""Games whose declared spaces are wrong: the host must refuse them before training.

- ``wrongobs``: declares a 5-dim observation, its env (CartPole) returns 4 values;
- ``pixels``: image observations (64 x 64 x 3 uint8), which gameadapt policies cannot take;
- ``wrongbatch``: a native game whose batched view returns observations of the wrong width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gameadapt
import gymnasium
import numpy as np
from gameadapt.game import GameSpec
from gameadapt.variants import VariantSpace

CARTPOLE_OBS = gymnasium.make("CartPole-v1").observation_space


def cartpole(variant: Any = None, render_mode: str | None = None) -> gymnasium.Env:
    return gymnasium.make("CartPole-v1", render_mode=render_mode)


class Pixels(gymnasium.Env):
    """Random 64 x 64 RGB frames."""

    observation_space = gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        return self.observation_space.sample(), 0.0, False, True, {}


class WrongBatch:
    """A batched view that returns 3-wide observations instead of CartPole's 4."""

    horizon = 5

    def __init__(self, variants: Any, envs_per_task: int, device: Any) -> None:
        import torch

        self.num_tasks, self.envs_per_task = len(variants), envs_per_task
        self.device = torch.device(device)
        self._zeros = torch.zeros(self.num_tasks, envs_per_task, 3)

    def reset(self, seed: int) -> Any:
        return self._zeros

    def step(self, action: Any) -> Any:
        import torch
        from gameadapt.game import BatchedStep

        flags = torch.zeros(self.num_tasks, self.envs_per_task, dtype=torch.bool)
        return BatchedStep(self._zeros, self._zeros[..., 0], flags, flags)


@gameadapt.hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register ``wrongobs``, ``pixels`` and ``wrongbatch``."""
    register(GameSpec(id="wrongobs", description="declares 5 observations, has 4",
                      api="gymnasium",
                      observation_space=gymnasium.spaces.Box(-1.0, 1.0, (5,), np.float32),
                      action_space=gymnasium.spaces.Discrete(2), variant_space=VariantSpace([]),
                      make_env=cartpole))
    register(GameSpec(id="pixels", description="image observations", api="gymnasium",
                      observation_space=Pixels.observation_space,
                      action_space=Pixels.action_space, variant_space=VariantSpace([]),
                      make_env=lambda variant=None, render_mode=None: Pixels()))
    register(GameSpec(id="wrongbatch", description="a batched view of the wrong width",
                      api="native", observation_space=CARTPOLE_OBS,
                      action_space=gymnasium.spaces.Discrete(2), variant_space=VariantSpace([]),
                      make_env=cartpole, make_batched=WrongBatch))
