"""The single-instance gymnasium view of pointnav (numpy only; never imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gameadapt.game import check_render_mode, show_text

from . import dynamics

GRID = 21  # the text picture shows [-1, 1]^2 at 0.1 per cell


class PointNavEnv(gymnasium.Env):
    """A point agent moves in the plane towards a goal it cannot see.

    ## Description
    The 2D navigation task of MAML (Finn et al., 2017; ``2DNavigation-v0`` of
    pytorch-maml-rl). Each variant (task) places the goal somewhere in ``[-0.5, 0.5]^2``; the
    agent only observes its own position, so it must find the goal from the rewards.
    Variant rules can change the agent's speed, add a constant drift and change the horizon;
    the defaults reproduce the paper exactly.

    ## Action Space
    ``Box(-0.1, 0.1, (2,), float32)``: a velocity. Any action is accepted and clipped to
    ``[-0.1, 0.1]`` elementwise (policies output unbounded Gaussian samples); the move is
    ``speed * clipped_action + drift``.

    ## Observation Space
    ``Box(-inf, inf, (2,), float32)``: the agent's position ``(x, y)``.

    ## Rewards
    Minus the Euclidean distance from the agent to the goal, measured after the move.

    ## Starting State
    The agent starts at the origin ``(0, 0)``; nothing is random.

    ## Episode End
    Terminated when ``|x - gx| < 0.01`` and ``|y - gy| < 0.01``; truncated after
    ``rules.horizon`` steps (100) unless the goal was reached on that step.
    ``info["is_success"]`` is True on the step that reaches the goal (False on every other).

    ## Arguments
    ``PointNavEnv(variant=None, render_mode=None)``: ``variant`` is a (partial) variant dict,
    validated with :data:`~gameadapt.games.pointnav.dynamics.VARIANT_SPACE`; ``render_mode``
    is ``None``, ``"ansi"`` (``render()`` returns a text picture) or ``"human"`` (prints it on
    every reset and step). ``reset(seed, options)`` accepts the option ``"stream"`` of the
    batched protocol and ignores it, as pointnav uses no randomness.
    """

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 10}

    def __init__(self, variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> None:
        check_render_mode(self.metadata, render_mode)
        self.variant = dynamics.VARIANT_SPACE.validate(variant or {})
        params = dynamics.task_params(self.variant)
        self.goal = np.asarray(params.goal, dtype=np.float32)
        self.speed = np.float32(params.speed)
        self.drift = np.asarray(params.drift, dtype=np.float32)
        self.horizon = params.horizon
        self.render_mode = render_mode
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(-dynamics.ACTION_LIMIT, dynamics.ACTION_LIMIT,
                                                 (2,), np.float32)
        self.position = np.zeros(2, dtype=np.float32)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position = np.zeros(2, dtype=np.float32)
        self.steps = 0
        if self.render_mode == "human":
            self.render()
        return self.position.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float32).reshape(2)
        self.position, reward, terminated = dynamics.step(
            np, self.position, action, self.goal, self.speed, self.drift)
        self.steps += 1
        truncated = dynamics.truncated(self.steps, self.horizon, terminated)
        if self.render_mode == "human":
            self.render()
        reached = bool(terminated)  # the goal: the only way an episode terminates
        return (self.position.copy(), float(reward), reached, bool(truncated),
                {"is_success": reached})

    def reference_action(self) -> np.ndarray:
        """The reference policy's action now: the move that ends nearest the goal."""
        return dynamics.nearest_action(np, self.position, self.goal, self.speed, self.drift)

    def render(self) -> str | None:
        """A text picture of ``[-1, 1]^2`` (``A`` agent, ``G`` goal, ``@`` both, ``+`` origin).

        Returned in ``ansi`` mode, printed in ``human`` mode.
        """
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; use 'ansi' or 'human'")
            return None
        return show_text(self.render_mode, self._picture())

    def _picture(self) -> str:
        grid = [["." for _ in range(GRID)] for _ in range(GRID)]
        grid[GRID // 2][GRID // 2] = "+"
        for (x, y), mark in ((self.goal, "G"), (self.position, "A")):
            row, col = GRID - 1 - _cell(float(y)), _cell(float(x))
            grid[row][col] = "@" if grid[row][col] == "G" else mark
        x, y = self.position
        gx, gy = self.goal
        distance = float(np.hypot(x - gx, y - gy))
        return "\n".join(" ".join(row) for row in grid) + (
            f"\nagent ({x:+.3f}, {y:+.3f})  goal ({gx:+.3f}, {gy:+.3f})  "
            f"distance {distance:.3f}  step {self.steps}/{self.horizon}")


def _cell(value: float) -> int:
    """Grid index of a coordinate; points outside [-1, 1] are drawn on the border."""
    return min(GRID - 1, max(0, round((value + 1.0) * (GRID - 1) / 2.0)))
