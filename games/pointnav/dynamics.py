"""Pointnav's rules and step, written once for both views.

Every function takes ``xp``, the ``numpy`` or the ``torch`` module, and works elementwise on
float32 arrays / tensors of any leading shape, so :class:`~gameadapt.games.pointnav.env.PointNavEnv`
(numpy) and :class:`~gameadapt.games.pointnav.batched.BatchedPointNav` (torch) compute
bit-identical results. Importing this module imports neither numpy nor torch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gameadapt.variants import FloatRange, IntRange, Param, Variant, VariantSpace

ACTION_LIMIT = 0.1  # each action component is clipped to [-0.1, 0.1]
GOAL_TOLERANCE = 0.01  # terminated when |x - gx| < 0.01 and |y - gy| < 0.01
GOAL_RANGE = FloatRange(-0.5, 0.5)  # the paper's goal distribution: uniform on this square
DEFAULT_GOAL = (0.3, 0.3)

_GOAL_SPLIT_NOTE = ("Train and held-out goals are both drawn uniformly from the paper's square "
                    "-0.5..0.5, from a different random stream per split, so held-out goals are "
                    "fresh draws from the same distribution (as in MAML's evaluation).")

VARIANT_SPACE = VariantSpace([
    Param("goal_x", "level", GOAL_RANGE, DEFAULT_GOAL[0],
          f"x coordinate of the goal (default {DEFAULT_GOAL[0]}). " + _GOAL_SPLIT_NOTE,
          train=GOAL_RANGE, test=GOAL_RANGE),
    Param("goal_y", "level", GOAL_RANGE, DEFAULT_GOAL[1],
          f"y coordinate of the goal (default {DEFAULT_GOAL[1]}). " + _GOAL_SPLIT_NOTE,
          train=GOAL_RANGE, test=GOAL_RANGE),
    Param("speed", "rules", FloatRange(0.1, 2.0), 1.0,
          "multiplies the clipped action before it moves the agent (1.0 = paper)"),
    Param("drift_x", "rules", FloatRange(-0.05, 0.05), 0.0,
          "constant x velocity added to every move, like a current (0.0 = paper)"),
    Param("drift_y", "rules", FloatRange(-0.05, 0.05), 0.0,
          "constant y velocity added to every move, like a current (0.0 = paper)"),
    Param("horizon", "rules", IntRange(10, 500), 100,
          "steps after which an episode is truncated (100 = paper)"),
])


class TaskParams(NamedTuple):
    """The numbers a (validated) variant sets, as Python scalars."""

    goal: tuple[float, float]
    speed: float
    drift: tuple[float, float]
    horizon: int


def task_params(variant: Variant) -> TaskParams:
    """Read the dynamics' parameters from a complete, validated variant."""
    level, rules = variant["level"], variant["rules"]
    return TaskParams((level["goal_x"], level["goal_y"]), rules["speed"],
                      (rules["drift_x"], rules["drift_y"]), rules["horizon"])


def move(xp: Any, position: Any, action: Any, speed: Any, drift: Any) -> Any:
    """``position + (clip(action, -0.1, 0.1) * speed + drift)``; ``[..., 2]`` float32."""
    return position + (xp.clip(action, -ACTION_LIMIT, ACTION_LIMIT) * speed + drift)


def reward_and_terminated(xp: Any, position: Any, goal: Any) -> tuple[Any, Any]:
    """Reward ``-distance(position, goal)`` and whether the agent is inside the goal box."""
    delta = position - goal
    dx, dy = delta[..., 0], delta[..., 1]
    reward = -sqrt(xp, dx * dx + dy * dy)
    terminated = (xp.abs(dx) < GOAL_TOLERANCE) & (xp.abs(dy) < GOAL_TOLERANCE)
    return reward, terminated


def sqrt(xp: Any, x: Any) -> Any:
    """The correctly rounded float32 square root, in numpy and in torch.

    torch's vectorised float32 ``sqrt`` on CPU can be one ulp off the exact result (numpy's is
    exact); the float64 root rounded to float32 is exact, since double rounding is harmless
    for square roots of float32 numbers. MPS has no float64 and keeps the float32 root.
    """
    if xp.__name__ != "torch" or x.device.type == "mps":
        return xp.sqrt(x)
    return xp.sqrt(x.to(xp.float64)).to(xp.float32)


def step(xp: Any, position: Any, action: Any, goal: Any, speed: Any, drift: Any
         ) -> tuple[Any, Any, Any]:
    """One move: the new position, its reward (computed after the move) and termination."""
    position = move(xp, position, action, speed, drift)
    reward, terminated = reward_and_terminated(xp, position, goal)
    return position, reward, terminated


def nearest_action(xp: Any, position: Any, goal: Any, speed: Any, drift: Any) -> Any:
    """The reference's action: the one whose move ends nearest the goal, drift included.

    The move is ``speed * clip(action) + drift``, so the wanted velocity
    ``(goal - position - drift) / speed`` clipped to the action box is that action (clipping
    is the projection onto the box): full speed on every axis still short of the goal, the
    goal itself once it is in reach, the drift compensated as far as the speed allows. As
    every axis moves independently, each step then ends as near the goal as any policy can
    be after that many steps: the best return there is.
    """
    return xp.clip((goal - position - drift) / speed, -ACTION_LIMIT, ACTION_LIMIT)


def truncated(steps: Any, horizon: Any, terminated: Any) -> Any:
    """Truncated: the episode reached its horizon without reaching the goal on that step."""
    return (steps >= horizon) & ~terminated
