"""Duel rules, written once for numpy and torch.

Like GridNav's rules, every function takes ``xp`` (the ``numpy`` or ``torch`` module) and
only uses operations that give identical results in both: integer arithmetic, comparisons,
``xp.where``, advanced indexing, float32 division. Per-task tables (:class:`Params`) are
gathered with ``Params.task``, an int64 index broadcastable to the batch shape (``[1]`` in
the parallel env, ``[M, 1]`` in the batched view); the state holds one value per env.

Each agent acts and observes in its own frame. The attacker's frame is the global one
(forward = up = ``y - 1``, left = ``x - 1``); the defender faces it from the other side, so
its frame is rotated 180 degrees: a cell ``(x, y)`` is ``(size-1-x, size-1-y)`` to it and
each of its moves goes the opposite global way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from gameadapt.hashrandom import uniform
from gameadapt.variants import Choice, FloatRange, IntRange, Param, Variant, VariantSpace
from gameadapt.xp import cast

from .levels import generate_arena

AGENTS = ("attacker", "defender")
LEARNER = "attacker"
ATTACKER, DEFENDER = 0, 1
SIGN = (1, -1)  # global move = SIGN[agent] * own-frame move
OBS_DIM = 15
NUM_ACTIONS = 5  # own frame: 0 stay, 1 forward, 2 back, 3 left, 4 right
DX = (0, 0, 0, -1, 1)
DY = (0, -1, 1, 0, 0)  # in the attacker's (global) frame: forward is up, row 0 at the top
WEST, EAST = 0, 1  # flag indices: top-left and top-right corner

OPPONENTS = ("aggressive", "defensive_west", "defensive_east", "patrolling", "mirroring")
AGGRESSIVE, DEFENSIVE_WEST, DEFENSIVE_EAST, PATROLLING, MIRRORING = range(len(OPPONENTS))
TRAIN_OPPONENTS = OPPONENTS[:3]
TEST_OPPONENTS = OPPONENTS[3:]  # held-out styles
MIN_SIZE, MAX_SIZE = 7, 11
PADDED = MAX_SIZE + 2  # padded wall grids have a one-cell wall border

MAX_TIME_LIMIT = 100  # the longest episode of any variant
VARIANT_SPACE = VariantSpace([
    Param("seed", "level", IntRange(0, 999_999), 0, "arena generator seed",
          train=IntRange(0, 9_999), test=IntRange(10_000, 19_999)),
    Param("size", "level", IntRange(MIN_SIZE, MAX_SIZE), 9, "arena side length in cells"),
    Param("wall_density", "level", FloatRange(0.0, 0.3), 0.1,
          "probability that a cell is a wall"),
    Param("opponent", "rules", Choice(OPPONENTS), "aggressive",
          "the scripted defender's behaviour: chase the attacker, guard the west or the east "
          "flag, patrol between the flags, or mirror the attacker's previous action "
          "(held-out variants use the last two)",
          train=Choice(TRAIN_OPPONENTS), test=Choice(TEST_OPPONENTS)),
    Param("defender_speed", "rules", FloatRange(0.2, 1.0), 0.8,
          "probability that the scripted defender moves on a step (it stays put otherwise)",
          train=FloatRange(0.6, 0.9), test=FloatRange(0.6, 0.9)),
    Param("view_radius", "rules", IntRange(0, 20), 3,
          "Chebyshev distance up to which an agent sees the other"),
    Param("capture_reward", "rules", FloatRange(0.1, 10.0), 1.0,
          "attacker's reward (defender's loss) for reaching a flag"),
    Param("tag_penalty", "rules", FloatRange(0.0, 10.0), 1.0,
          "attacker's loss (defender's reward) for being tagged"),
    Param("step_cost", "rules", FloatRange(0.0, 0.2), 0.01,
          "reward subtracted from the attacker every step"),
    Param("progress_reward", "rules", FloatRange(0.0, 1.0), 0.05,
          "attacker's reward per step times the decrease of its BFS distance to the nearer "
          "flag (dense shaping)"),
    Param("time_limit", "rules", IntRange(5, MAX_TIME_LIMIT), 30,
          "steps before the episode is truncated"),
])


class Params(NamedTuple):
    """Per-task tables (first axis = task) plus the task index of every env."""

    task: Any  # int64, broadcastable to the batch shape
    walls: Any  # bool [T, PADDED, PADDED], indexed [task, y + 1, x + 1]; outside = wall
    flag_distance: Any  # int64 [T, 2, PADDED, PADDED]: BFS moves to the west / east flag
    dx: Any  # int64 [5], attacker frame
    dy: Any  # int64 [5]
    last: Any  # int64 [T]: size - 1, the east flag's x
    scale: Any  # float32 [T]: size - 1
    start_x: Any  # int64 [T, 2]: attacker, defender
    start_y: Any  # int64 [T, 2]
    opponent: Any  # int64 [T], an index into OPPONENTS
    defender_speed: Any  # float32 [T]
    view_radius: Any  # int64 [T]
    capture_reward: Any  # float32 [T]
    tag_penalty: Any  # float32 [T]
    step_cost: Any  # float32 [T]
    progress_reward: Any  # float32 [T]
    time_limit: Any  # int64 [T]


class State(NamedTuple):
    """Per-env state, every field an int64 array of the batch shape."""

    attacker_x: Any
    attacker_y: Any
    defender_x: Any
    defender_y: Any
    t: Any
    last_action: Any  # the attacker's previous action (0 at t = 0), for "mirroring"
    target: Any  # the flag a "patrolling" defender walks to (WEST or EAST)
    key: Any  # the env's random stream key


def build_params(variants: Sequence[Variant]) -> Params:
    """Numpy tables for validated variants (one task each), with ``task = arange(T)``."""
    arenas = [generate_arena(v["level"]["seed"], v["level"]["size"],
                             v["level"]["wall_density"]) for v in variants]
    walls = np.ones((len(variants), PADDED, PADDED), dtype=bool)
    distance = np.full((len(variants), 2, PADDED, PADDED), -1, dtype=np.int64)
    for i, arena in enumerate(arenas):
        inner = slice(1, arena.size + 1)
        walls[i, inner, inner] = arena.walls
        distance[i, :, inner, inner] = arena.flag_distances()

    def rules(name: str, dtype: Any) -> np.ndarray:
        return np.array([v["rules"][name] for v in variants], dtype=dtype)

    def starts(axis: int) -> np.ndarray:
        return np.array([[cell[axis] for cell in a.starts] for a in arenas],
                        dtype=np.int64).reshape(-1, 2)

    return Params(
        task=np.arange(len(variants), dtype=np.int64),
        walls=walls,
        flag_distance=distance,
        dx=np.array(DX, dtype=np.int64),
        dy=np.array(DY, dtype=np.int64),
        last=np.array([a.size - 1 for a in arenas], dtype=np.int64),
        scale=np.array([a.size - 1 for a in arenas], dtype=np.float32),
        start_x=starts(0),
        start_y=starts(1),
        opponent=np.array([OPPONENTS.index(v["rules"]["opponent"]) for v in variants],
                          dtype=np.int64),
        defender_speed=rules("defender_speed", np.float32),
        view_radius=rules("view_radius", np.int64),
        capture_reward=rules("capture_reward", np.float32),
        tag_penalty=rules("tag_penalty", np.float32),
        step_cost=rules("step_cost", np.float32),
        progress_reward=rules("progress_reward", np.float32),
        time_limit=rules("time_limit", np.int64),
    )


def initial_state(xp: Any, p: Params, key: Any) -> State:
    """Every env at its task's starts at time 0; ``key`` (int64) sets the batch shape."""
    zero = key * 0
    x, y = p.start_x[p.task], p.start_y[p.task]
    return State(x[..., ATTACKER] + zero, y[..., ATTACKER] + zero,
                 x[..., DEFENDER] + zero, y[..., DEFENDER] + zero, zero, zero, zero + WEST, key)


def position(s: State, agent: int) -> tuple[Any, Any]:
    """The global ``(x, y)`` of ``agent`` (ATTACKER or DEFENDER)."""
    return (s.attacker_x, s.attacker_y) if agent == ATTACKER else (s.defender_x, s.defender_y)


def _own_frame(p: Params, agent: int, x: Any, y: Any) -> tuple[Any, Any]:
    """Global coordinates in ``agent``'s frame (the defender's is rotated 180 degrees)."""
    if agent == ATTACKER:
        return x, y
    last = p.last[p.task]
    return last - x, last - y


def _target(p: Params, x: Any, y: Any, action: Any, agent: int) -> tuple[Any, Any]:
    """The cell an own-frame ``action`` of ``agent`` at ``(x, y)`` heads for."""
    return x + SIGN[agent] * p.dx[action], y + SIGN[agent] * p.dy[action]


def _wall(p: Params, x: Any, y: Any) -> Any:
    """True for a wall or a cell off the arena."""
    return p.walls[p.task, y + 1, x + 1]


def _move(xp: Any, p: Params, x: Any, y: Any, action: Any, agent: int) -> tuple[Any, Any]:
    """Where ``agent`` at ``(x, y)`` ends up after an own-frame ``action`` (walls block)."""
    tx, ty = _target(p, x, y, action, agent)
    blocked = _wall(p, tx, ty)
    return xp.where(blocked, x, tx), xp.where(blocked, y, ty)


def _flag_distance(p: Params, flag: Any, x: Any, y: Any) -> Any:
    return p.flag_distance[p.task, flag, y + 1, x + 1]


def observe_agent(xp: Any, p: Params, s: State, agent: int) -> Any:
    """Float32 observations ``[..., 15]`` of one agent (see :class:`~.env.DuelParallelEnv`)."""
    task, f32 = p.task, xp.float32
    zero = s.t * 0
    x, y = _own_frame(p, agent, *position(s, agent))
    other_x, other_y = _own_frame(p, agent, *position(s, 1 - agent))
    flags = [_own_frame(p, agent, zero, zero), _own_frame(p, agent, zero + p.last[task], zero)]
    left_flag, right_flag = flags if agent == ATTACKER else flags[::-1]
    dx, dy = other_x - x, other_y - y
    visible = xp.maximum(xp.abs(dx), xp.abs(dy)) <= p.view_radius[task]
    coordinates = [x, y, left_flag[0] - x, left_flag[1] - y, right_flag[0] - x,
                   right_flag[1] - y]
    hidden = [xp.where(visible, dx, 0), xp.where(visible, dy, 0)]
    scale = p.scale[task]
    features = [cast(xp, c, f32) / scale for c in coordinates]
    features.append(cast(xp, visible, f32))
    features += [cast(xp, c, f32) / scale for c in hidden]
    gx, gy = position(s, agent)
    for action in range(1, NUM_ACTIONS):  # forward, back, left, right
        features.append(cast(xp, _wall(p, *_target(p, gx, gy, action, agent)), f32))
    features.append(cast(xp, s.t, f32) / cast(xp, p.time_limit[task], f32))
    features.append(cast(xp, zero, f32) + float(agent))  # role
    return xp.stack(features, -1)


def observe(xp: Any, p: Params, s: State) -> Any:
    """Float32 observations ``[..., 2, 15]``: the attacker's, then the defender's."""
    return xp.stack([observe_agent(xp, p, s, agent) for agent in (ATTACKER, DEFENDER)], -2)


def scripted_defender_action(xp: Any, p: Params, s: State) -> Any:
    """The variant's scripted defender action (int64, batch shape), in the defender's frame.

    Chasing and flag-seeking styles take the first of the 5 moves (in action order) that
    minimises the Manhattan distance to the attacker, or the BFS distance to the style's
    flag; "mirroring" repeats the attacker's previous action. With probability
    ``1 - defender_speed`` (``uniform(key, t)``) the defender stays instead.
    """
    task = p.task
    style = p.opponent[task]
    flag = xp.where(style == DEFENSIVE_WEST, WEST,
                    xp.where(style == DEFENSIVE_EAST, EAST, s.target))
    best = best_cost = None
    for action in range(NUM_ACTIONS):
        x, y = _move(xp, p, s.defender_x, s.defender_y, action, DEFENDER)
        chase = xp.abs(x - s.attacker_x) + xp.abs(y - s.attacker_y)
        cost = xp.where(style == AGGRESSIVE, chase, _flag_distance(p, flag, x, y))
        if best is None:
            best, best_cost = cost * 0, cost
            continue
        better = cost < best_cost
        best, best_cost = xp.where(better, action, best), xp.where(better, cost, best_cost)
    action = xp.where(style == MIRRORING, s.last_action, best)
    moves = uniform(xp, s.key, s.t) < p.defender_speed[task]
    return xp.where(moves, action, 0)


def step(xp: Any, p: Params, s: State, attacker_action: Any, defender_action: Any
         ) -> tuple[State, Any, Any, Any, Any]:
    """Move both agents at once by own-frame actions (int64, batch shape).

    Returns ``(state, attacker_reward, defender_reward, terminated, truncated)``. Capture
    (the attacker on a flag, the defender not on its cell) wins ``capture_reward`` for the
    attacker; otherwise a tag (Manhattan distance <= 1) wins ``tag_penalty`` for the
    defender. The attacker also pays ``step_cost`` and earns ``progress_reward`` times the
    decrease of its BFS distance to the nearer flag."""
    task, f32 = p.task, xp.float32
    ax, ay = _move(xp, p, s.attacker_x, s.attacker_y, attacker_action, ATTACKER)
    bx, by = _move(xp, p, s.defender_x, s.defender_y, defender_action, DEFENDER)
    t = s.t + 1
    capture = captured(p, ax, ay, bx, by)
    tag = ~capture & (xp.abs(ax - bx) + xp.abs(ay - by) <= 1)
    terminated = capture | tag
    truncated = ~terminated & (t >= p.time_limit[task])
    won = cast(xp, capture, f32) * p.capture_reward[task]
    lost = cast(xp, tag, f32) * p.tag_penalty[task]
    progress = _nearest_flag(xp, p, s.attacker_x, s.attacker_y) - _nearest_flag(xp, p, ax, ay)
    shaping = p.progress_reward[task] * cast(xp, progress, f32)
    attacker_reward = won - lost - p.step_cost[task] + shaping
    defender_reward = lost - won
    reached = (by == 0) & (bx == s.target * p.last[task])  # a patrolling defender turns round
    target = xp.where(reached, 1 - s.target, s.target)
    state = State(ax, ay, bx, by, t, attacker_action + s.t * 0, target, s.key)
    return state, attacker_reward, defender_reward, terminated, truncated


def captured(p: Params, ax: Any, ay: Any, bx: Any, by: Any) -> Any:
    """Capture: the attacker at ``(ax, ay)`` on a flag, the defender at ``(bx, by)`` not with it.

    Of a state after a step, it says whether that step ended the episode with a capture (the
    attacker's success); a step that terminated otherwise ended with a tag (the defender's).
    """
    on_flag = (ay == 0) & ((ax == 0) | (ax == p.last[p.task]))
    return on_flag & ~((ax == bx) & (ay == by))


def outcome(p: Params, s: State, terminated: Any) -> tuple[Any, Any]:
    """``(attacker won, defender won)`` of a step that led to ``s`` and ``terminated``:
    a capture for the attacker, a tag for the defender (each agent's success)."""
    capture = captured(p, s.attacker_x, s.attacker_y, s.defender_x, s.defender_y) & terminated
    return capture, terminated & ~capture


def _nearest_flag(xp: Any, p: Params, x: Any, y: Any) -> Any:
    """BFS moves from ``(x, y)`` to the nearer flag."""
    return xp.minimum(_flag_distance(p, WEST, x, y), _flag_distance(p, EAST, x, y))
