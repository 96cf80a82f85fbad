"""The single-instance gymnasium view of GridNav (numpy only, never imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gameadapt import hashrandom
from gameadapt.game import check_render_mode, show_text

from . import dynamics
from .dynamics import NUM_ACTIONS, OBS_DIM, VARIANT_SPACE


def observation_space() -> gymnasium.spaces.Box:
    """``Box(-1, 1, (9,), float32)``."""
    return gymnasium.spaces.Box(low=-1.0, high=1.0, shape=(OBS_DIM,), dtype=np.float32)


def action_space() -> gymnasium.spaces.Discrete:
    """``Discrete(4)``: 0 up, 1 down, 2 left, 3 right."""
    return gymnasium.spaces.Discrete(NUM_ACTIONS)


class GridNavEnv(gymnasium.Env):
    """Walk through a small walled grid to the goal cell.

    ## Description
    A ``size x size`` grid (5..9) of walls and floor, a start and a goal cell, generated from
    ``level.seed`` and always solvable. The ``controls`` rule permutes the move directions by
    one of the 8 symmetries of the square (not observed: an agent must infer it from what its
    moves do), and with probability ``slip`` a move goes in a uniformly random direction
    instead.

    ## Action Space
    ``Discrete(4)``: the intended direction, 0 up, 1 down, 2 left, 3 right. Moving into a wall
    or off the grid leaves the agent where it is.

    ## Observation Space
    ``Box(-1, 1, (9,), float32)``: ``[ax, ay, gx - ax, gy - ay]`` divided by ``size - 1``
    (agent ``a``, goal ``g``, ``x`` = column, ``y`` = row from the top), then 1.0/0.0 for a
    wall or the border next to the agent up, down, left and right, then ``t / time_limit``.

    ## Rewards
    ``-step_cost`` every step, plus ``goal_reward`` on the step that enters the goal, plus
    ``progress_reward`` times the decrease of the shortest-path (BFS) distance to the goal on
    that step: +progress_reward for a move closer, -progress_reward for a move away, 0 for a
    blocked move. The shaping sums to ``progress_reward`` times (start distance - final
    distance), so it does not change which paths are best.

    ## Episode End
    Terminated when the agent reaches the goal; truncated after ``time_limit`` steps.
    ``info["is_success"]`` is True on the step that reaches the goal (False on every other).

    ## Arguments
    ``variant``: a (partial) variant dict validated by ``VARIANT_SPACE``; ``render_mode``:
    ``"ansi"`` (``render()`` returns the grid as text) or ``"human"`` (prints it).
    ``reset(seed, options={"stream": i})`` replays env ``i`` of a batched game reset with
    ``seed``.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(self, variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> None:
        check_render_mode(self.metadata, render_mode)
        self.variant = VARIANT_SPACE.validate(variant or {})
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space = action_space()
        self._params = dynamics.build_params([self.variant])._replace(
            task=np.zeros(1, dtype=np.int64))
        self._state = dynamics.initial_state(np, self._params, np.zeros(1, dtype=np.int64))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**62))
        stream = int((options or {}).get("stream", 0))
        key = np.array([hashrandom.stream_key(seed, stream)], dtype=np.int64)
        self._state = dynamics.initial_state(np, self._params, key)
        if self.render_mode == "human":
            self.render()
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray([action], dtype=np.int64).reshape(1)
        if not 0 <= action[0] < NUM_ACTIONS:
            raise ValueError(f"action must be in 0..{NUM_ACTIONS - 1}, got {action[0]}")
        self._state, reward, terminated, truncated = dynamics.step(
            np, self._params, self._state, action)
        if self.render_mode == "human":
            self.render()
        reached = bool(terminated[0])  # the goal: the only way an episode terminates
        return (self._observe(), float(reward[0]), reached, bool(truncated[0]),
                {"is_success": reached})

    def reference_action(self) -> int:
        """The reference policy's action now: a shortest-path move under the true controls."""
        return int(dynamics.shortest_path_action(np, self._params, self._state)[0])

    def render(self) -> str | None:
        return show_text(self.render_mode, self._text())

    def _observe(self) -> np.ndarray:
        return dynamics.observe(np, self._params, self._state)[0]

    def _text(self) -> str:
        p, s = self._params, self._state
        size = int(p.scale[0]) + 1
        rows = [["#" if wall else "." for wall in row[1:size + 1]]
                for row in p.walls[0, 1:size + 1]]
        rows[int(p.goal_y[0])][int(p.goal_x[0])] = "G"
        rows[int(s.y[0])][int(s.x[0])] = "A"
        return "\n".join("".join(row) for row in rows) + "\n"
