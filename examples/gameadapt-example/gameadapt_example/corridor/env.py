"""The single-instance gymnasium view of Corridor (numpy only, never imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gameadapt import hashrandom
from gameadapt.game import check_render_mode

from . import dynamics
from .dynamics import NUM_ACTIONS, OBS_DIM, VARIANT_SPACE


def observation_space() -> gymnasium.spaces.Box:
    """``Box(0, 1, (3,), float32)``."""
    return gymnasium.spaces.Box(low=0.0, high=1.0, shape=(OBS_DIM,), dtype=np.float32)


def action_space() -> gymnasium.spaces.Discrete:
    """``Discrete(2)``: 0 left, 1 right (swapped when ``rules.controls`` is ``reversed``)."""
    return gymnasium.spaces.Discrete(NUM_ACTIONS)


class CorridorEnv(gymnasium.Env):
    """Walk along a corridor of ``length`` cells to a hidden goal cell.

    Observation ``[position / (length - 1), length / 16, t / time_limit]``; reward
    ``-step_cost`` per step plus ``goal_reward`` on reaching the goal (terminated); truncated
    after ``2 * length`` steps. ``reset(seed=s, options={"stream": i})`` replays env ``i`` of
    a batched game reset with seed ``s``. ``render_mode="ansi"`` renders the corridor as text.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> None:
        check_render_mode(self.metadata, render_mode)
        self.variant = VARIANT_SPACE.validate(variant or {})
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space = action_space()
        self._params = dynamics.build_params([self.variant])  # every field shaped [1]
        self._state = dynamics.initial_state(np, self._params, np.zeros(1, dtype=np.int64))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None:  # unseeded resets still follow the env's seeded np_random
            seed = int(self.np_random.integers(2**62))
        stream = int((options or {}).get("stream", 0))
        key = np.array([hashrandom.stream_key(seed, stream)], dtype=np.int64)
        self._state = dynamics.initial_state(np, self._params, key)
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.int64).reshape(1)
        if not 0 <= action[0] < NUM_ACTIONS:
            raise ValueError(f"action must be 0 or 1, got {action[0]}")
        self._state, reward, terminated, truncated = dynamics.step(
            np, self._params, self._state, action)
        return self._observe(), float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self) -> str | None:
        """The corridor as text: ``A`` agent, ``G`` goal, ``.`` floor (``ansi`` mode)."""
        if self.render_mode is None:
            return None
        cells = ["."] * int(self._params.length[0])
        cells[int(self._params.goal[0])] = "G"
        cells[int(self._state.position[0])] = "A"
        return "".join(cells) + "\n"

    def _observe(self) -> np.ndarray:
        return dynamics.observe(np, self._params, self._state)[0]
