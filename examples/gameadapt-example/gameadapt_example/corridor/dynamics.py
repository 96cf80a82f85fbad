"""Corridor rules, written once for numpy and torch.

A corridor is a row of ``length`` cells with a hidden goal cell. The agent starts on a random
other cell and walks left or right until it stands on the goal or runs out of time.

:func:`initial_state`, :func:`observe` and :func:`step` take ``xp`` (the ``numpy`` or
``torch`` module) and only use operations that give identical results in both: integer
arithmetic, comparisons, ``xp.where``, float32 products and divisions. Every field of
:class:`Params` is an array broadcastable to the batch shape: ``[1]`` in the single view,
``[M, 1]`` (one row per task) in the batched view.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from gameadapt.hashrandom import stream_key, uniform
from gameadapt.variants import Choice, FloatRange, IntRange, Param, Variant, VariantSpace
from gameadapt.xp import cast

MIN_LENGTH, MAX_LENGTH = 3, 16
OBS_DIM = 3
NUM_ACTIONS = 2  # 0 left, 1 right (swapped by the "reversed" controls)
STEPS_PER_CELL = 2  # time limit = STEPS_PER_CELL * length
LEVEL_STREAM = 0  # the hashrandom stream of a level seed that places the goal

VARIANT_SPACE = VariantSpace([
    Param("seed", "level", IntRange(0, 999_999), 0, "level seed: where the goal cell is",
          train=IntRange(0, 9_999), test=IntRange(10_000, 19_999)),
    Param("length", "level", IntRange(MIN_LENGTH, MAX_LENGTH), 8, "number of cells",
          train=IntRange(4, 12), test=IntRange(13, MAX_LENGTH)),
    Param("step_cost", "rules", FloatRange(0.0, 0.2), 0.01, "reward subtracted every step",
          train=FloatRange(0.0, 0.05), test=FloatRange(0.05, 0.1)),
    Param("goal_reward", "rules", FloatRange(0.1, 10.0), 1.0, "reward for reaching the goal"),
    Param("controls", "rules", Choice(("normal", "reversed")), "normal",
          "'reversed' swaps the meaning of the two actions",
          train=Choice(("normal", "reversed")), test=Choice(("normal", "reversed"))),
])


class Params(NamedTuple):
    """Per-task constants, each broadcastable to the batch shape."""

    length: Any  # int64
    goal: Any  # int64, 0 <= goal < length
    reversed: Any  # bool
    step_cost: Any  # float32
    goal_reward: Any  # float32
    time_limit: Any  # int64


class State(NamedTuple):
    """Per-env state, each field an int64 array of the batch shape."""

    position: Any
    t: Any


def goal_cell(seed: int, length: int) -> int:
    """The goal cell of the level ``(seed, length)``: a pure function of the level."""
    return stream_key(seed, LEVEL_STREAM) % length


def build_params(variants: Sequence[Variant]) -> Params:
    """Numpy arrays ``[T]`` for validated variants, one task each."""

    def column(part: str, name: str, dtype: Any) -> np.ndarray:
        return np.array([v[part][name] for v in variants], dtype=dtype)

    length = column("level", "length", np.int64)
    return Params(
        length=length,
        goal=np.array([goal_cell(v["level"]["seed"], v["level"]["length"]) for v in variants],
                      dtype=np.int64),
        reversed=np.array([v["rules"]["controls"] == "reversed" for v in variants], dtype=bool),
        step_cost=column("rules", "step_cost", np.float32),
        goal_reward=column("rules", "goal_reward", np.float32),
        time_limit=STEPS_PER_CELL * length,
    )


def initial_state(xp: Any, p: Params, key: Any) -> State:
    """Every env on a uniformly random non-goal cell at time 0.

    ``key`` (int64) is each env's random-stream key and sets the batch shape; the start cell
    uses draw 0 of the stream.
    """
    others = cast(xp, p.length - 1, xp.float32)  # the number of non-goal cells
    start = cast(xp, uniform(xp, key, 0) * others, xp.int64)
    start = xp.where(start >= p.length - 1, p.length - 2, start)  # guard against rounding up
    start = start + cast(xp, start >= p.goal, xp.int64)  # skip over the goal cell
    return State(position=start, t=key * 0)


def observe(xp: Any, p: Params, s: State) -> Any:
    """Float32 observations ``[..., 3]``: position / (length - 1), length / MAX_LENGTH,
    t / time_limit. The goal is not observed: it must be found (and adapted to)."""
    f32 = xp.float32
    position = cast(xp, s.position, f32) / cast(xp, p.length - 1, f32)
    length = cast(xp, p.length + s.t * 0, f32) / float(MAX_LENGTH)
    time = cast(xp, s.t, f32) / cast(xp, p.time_limit, f32)
    return xp.stack([position, length, time], -1)


def step(xp: Any, p: Params, s: State, action: Any) -> tuple[State, Any, Any, Any]:
    """Move every env by ``action`` (int64, batch shape); return (state, reward, terminated,
    truncated). Moves into an end wall leave the agent where it is."""
    right = (action == 1) != p.reversed
    position = s.position + xp.where(right, 1, -1)
    position = xp.where(position < 0, 0, position)
    position = xp.where(position > p.length - 1, p.length - 1, position)
    t = s.t + 1
    terminated = position == p.goal
    truncated = (t >= p.time_limit) & ~terminated
    reward = xp.where(terminated, p.goal_reward - p.step_cost, -p.step_cost)
    return State(position, t), reward, terminated, truncated
