"""GridNav rules, written once for numpy and torch.

:func:`initial_state`, :func:`observe` and :func:`step` take ``xp`` (the ``numpy`` or
``torch`` module) and only use operations that give identical results in both: integer
arithmetic, comparisons, ``xp.where``, advanced indexing, float32 division. Per-task tables
(:class:`Params`) have one row per task and are gathered with ``Params.task``, an int64 index
broadcastable to the batch shape: ``[1]`` in the single view, ``[M, 1]`` in the batched one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from gameadapt.hashrandom import uniform
from gameadapt.variants import Choice, FloatRange, IntRange, Param, Text, Variant, VariantSpace
from gameadapt.xp import cast

from .levels import MAX_LAYOUT_LENGTH, MAX_SIZE, MIN_SIZE, check_layout, distance_map, level_of

OBS_DIM = 9
NUM_ACTIONS = 4  # 0 up, 1 down, 2 left, 3 right
DX = (0, 0, -1, 1)
DY = (-1, 1, 0, 0)  # row 0 is the top, so "up" decreases y

# The 8 symmetries of the square, as "actual direction of intended action 0..3".
CONTROLS: dict[str, tuple[int, int, int, int]] = {
    "normal": (0, 1, 2, 3),
    "rotated_90": (3, 2, 0, 1),  # clockwise: up -> right
    "rotated_180": (1, 0, 3, 2),
    "rotated_270": (2, 3, 1, 0),  # counter-clockwise: up -> left
    "mirrored": (0, 1, 3, 2),  # left <-> right
    "flipped": (1, 0, 2, 3),  # up <-> down
    "transposed": (2, 3, 0, 1),  # x <-> y: up <-> left, down <-> right
    "antitransposed": (3, 2, 1, 0),  # up <-> right, down <-> left
}
ALL_CONTROLS = tuple(CONTROLS)
PADDED = MAX_SIZE + 2  # padded wall grids have a one-cell wall border

VARIANT_SPACE = VariantSpace([
    Param("seed", "level", IntRange(0, 999_999), 0, "level generator seed",
          train=IntRange(0, 9_999), test=IntRange(10_000, 19_999)),
    Param("size", "level", IntRange(MIN_SIZE, MAX_SIZE), 7, "grid side length in cells"),
    Param("wall_density", "level", FloatRange(0.0, 0.35), 0.15,
          "probability that a cell is a wall"),
    Param("layout", "level",
          Text(MAX_LAYOUT_LENGTH, check_layout,
               f"rows of . # A G joined by /, square {MIN_SIZE}..{MAX_SIZE}; empty: generated"),
          "", "an explicit level: rows joined by '/', '.' floor, '#' wall, 'A' start, 'G' goal "
          "(one each, the goal reachable); when set, seed, size and wall_density are ignored"),
    Param("controls", "rules", Choice(ALL_CONTROLS), "normal",
          "symmetry of the square that maps intended to actual move directions (not observed: "
          "adaptation must identify it)",
          train=Choice(ALL_CONTROLS), test=Choice(ALL_CONTROLS)),
    Param("slip", "rules", FloatRange(0.0, 0.5), 0.0,
          "probability that a move goes in a uniformly random direction instead "
          "(held-out variants slip more than training ones)",
          train=FloatRange(0.0, 0.1), test=FloatRange(0.1, 0.2)),
    Param("goal_reward", "rules", FloatRange(0.1, 10.0), 1.0, "reward for reaching the goal"),
    Param("progress_reward", "rules", FloatRange(0.0, 1.0), 0.1,
          "reward per step times the decrease of the shortest-path distance to the goal "
          "(dense shaping; 0 leaves only the goal reward and the step cost)"),
    Param("step_cost", "rules", FloatRange(0.0, 0.2), 0.01, "reward subtracted every step"),
    Param("time_limit", "rules", IntRange(5, 200), 40, "steps before the episode is truncated"),
])


class Params(NamedTuple):
    """Per-task tables (first axis = task) plus the task index of every env."""

    task: Any  # int64, broadcastable to the batch shape
    walls: Any  # bool [T, PADDED, PADDED], indexed [task, y + 1, x + 1]; outside the level = wall
    controls: Any  # int64 [T, 4]
    dx: Any  # int64 [4]
    dy: Any  # int64 [4]
    start_x: Any  # int64 [T]
    start_y: Any  # int64 [T]
    goal_x: Any  # int64 [T]
    goal_y: Any  # int64 [T]
    distance: Any  # int64 [T, PADDED, PADDED], shortest-path moves to the goal, like walls
    scale: Any  # float32 [T]: size - 1
    slip: Any  # float32 [T]
    goal_reward: Any  # float32 [T]
    step_cost: Any  # float32 [T]
    progress_reward: Any  # float32 [T]
    time_limit: Any  # int64 [T]


class State(NamedTuple):
    """Per-env state, every field an int64 array of the batch shape."""

    x: Any
    y: Any
    t: Any
    key: Any  # the env's random stream key


def build_params(variants: Sequence[Variant]) -> Params:
    """Numpy tables for validated variants (one task each), with ``task = arange(T)``."""
    levels = [level_of(v["level"]) for v in variants]
    walls = np.ones((len(variants), PADDED, PADDED), dtype=bool)
    distance = np.zeros((len(variants), PADDED, PADDED), dtype=np.int64)
    for i, level in enumerate(levels):
        walls[i, 1:level.size + 1, 1:level.size + 1] = level.walls
        # -1 (walls, floor cut off from the goal) marks cells the agent never occupies
        distance[i, 1:level.size + 1, 1:level.size + 1] = distance_map(level.walls, level.goal)

    def rules(name: str, dtype: Any) -> np.ndarray:
        return np.array([v["rules"][name] for v in variants], dtype=dtype)

    return Params(
        task=np.arange(len(variants), dtype=np.int64),
        walls=walls,
        controls=np.array([CONTROLS[v["rules"]["controls"]] for v in variants],
                          dtype=np.int64).reshape(-1, NUM_ACTIONS),
        dx=np.array(DX, dtype=np.int64),
        dy=np.array(DY, dtype=np.int64),
        start_x=np.array([lv.start[0] for lv in levels], dtype=np.int64),
        start_y=np.array([lv.start[1] for lv in levels], dtype=np.int64),
        goal_x=np.array([lv.goal[0] for lv in levels], dtype=np.int64),
        goal_y=np.array([lv.goal[1] for lv in levels], dtype=np.int64),
        distance=distance,
        scale=np.array([lv.size - 1 for lv in levels], dtype=np.float32),
        slip=rules("slip", np.float32),
        goal_reward=rules("goal_reward", np.float32),
        step_cost=rules("step_cost", np.float32),
        progress_reward=rules("progress_reward", np.float32),
        time_limit=rules("time_limit", np.int64),
    )


def initial_state(xp: Any, p: Params, key: Any) -> State:
    """Every env at its task's start cell at time 0; ``key`` (int64) sets the batch shape."""
    zero = key * 0
    return State(p.start_x[p.task] + zero, p.start_y[p.task] + zero, zero, key)


def observe(xp: Any, p: Params, s: State) -> Any:
    """Float32 observations ``[..., 9]`` (see :class:`~.env.GridNavEnv`)."""
    f32 = xp.float32
    scale = p.scale[p.task]
    x, y = cast(xp, s.x, f32), cast(xp, s.y, f32)
    gx, gy = cast(xp, p.goal_x[p.task], f32), cast(xp, p.goal_y[p.task], f32)
    px, py = s.x + 1, s.y + 1  # coordinates in the padded grid
    walls = [p.walls[p.task, py + dy, px + dx] for dx, dy in zip(DX, DY)]
    t = cast(xp, s.t, f32) / cast(xp, p.time_limit[p.task], f32)
    features = [x / scale, y / scale, (gx - x) / scale, (gy - y) / scale]
    features += [cast(xp, w, f32) for w in walls] + [t]
    return xp.stack(features, -1)


def step(xp: Any, p: Params, s: State, action: Any) -> tuple[State, Any, Any, Any]:
    """Move every env by ``action`` (int64, batch shape); return (state, reward, terminated,
    truncated).

    The reward is ``goal_reward`` on entering the goal, minus ``step_cost``, plus
    ``progress_reward`` times the decrease of the shortest-path distance to the goal (a
    potential-based shaping: it sums to ``progress_reward`` times the start's distance minus
    the final one, and tells the agent at every step whether its move brought it closer).
    Draws ``uniform(key, 2t)`` for the slip and ``uniform(key, 2t + 1)`` for the random
    direction."""
    task = p.task
    slipped = uniform(xp, s.key, 2 * s.t) < p.slip[task]
    random_direction = cast(xp, uniform(xp, s.key, 2 * s.t + 1) * 4, xp.int64)
    direction = xp.where(slipped, random_direction, p.controls[task, action])
    tx, ty = s.x + p.dx[direction], s.y + p.dy[direction]
    blocked = p.walls[task, ty + 1, tx + 1]
    x, y, t = xp.where(blocked, s.x, tx), xp.where(blocked, s.y, ty), s.t + 1
    terminated = (x == p.goal_x[task]) & (y == p.goal_y[task])
    truncated = (t >= p.time_limit[task]) & ~terminated
    cost = p.step_cost[task]
    progress = p.distance[task, s.y + 1, s.x + 1] - p.distance[task, y + 1, x + 1]
    shaping = p.progress_reward[task] * cast(xp, progress, xp.float32)
    reward = xp.where(terminated, p.goal_reward[task] - cost, -cost) + shaping
    return State(x, y, t, s.key), reward, terminated, truncated


def shortest_path_action(xp: Any, p: Params, s: State) -> Any:
    """The reference's action (int64, batch shape): a shortest-path move to the goal.

    The first intended action (in action order) whose move under the task's *true* control
    mapping, without slip, lands on the cell nearest the goal by BFS distance; recomputed
    from the current cell on every step, so a slip only costs the moves it undid.
    """
    task = p.task
    best = best_distance = None
    for action in range(NUM_ACTIONS):
        direction = p.controls[task, action]
        tx, ty = s.x + p.dx[direction], s.y + p.dy[direction]
        blocked = p.walls[task, ty + 1, tx + 1]
        x, y = xp.where(blocked, s.x, tx), xp.where(blocked, s.y, ty)
        distance = p.distance[task, y + 1, x + 1]
        if best is None:
            best, best_distance = distance * 0, distance
            continue
        better = distance < best_distance
        best = xp.where(better, action, best)
        best_distance = xp.where(better, distance, best_distance)
    return best
