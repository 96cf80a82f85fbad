"""The duel's reference attacker (numpy only): a short expectimax lookahead over the true rules.

It knows what a learner has to find out: the defender's style and speed (the variant's
rules) and where the defender is, even out of view. It does not know the defender's dice
(``uniform(key, t)``, whether it moves on a step): it weighs both outcomes by the speed.

Every step it searches :data:`DEPTH` moves ahead, over its own five moves and the defender's
move-or-stay after each, for the most expected value: 1 for a capture, -1 for a tag, less
:data:`COST` per step taken and, where the episode goes on, per BFS move still to go to its
*target flag*, plus ``SAFETY * COST`` per move between the agents (up to :data:`APART`: a
little room, so that it steps aside from a defender it cannot get past). The target is the nearer of the flags it reaches :data:`MARGIN` moves before
the defender can (by where the style sends the defender: a defensive defender to its flag
only, a patrolling one along its round, an aggressive one anywhere, a mirroring one nowhere
in particular), else the one with the biggest lead. Deterministic given the env's state
(ties: the first action).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import dynamics
from .dynamics import (
    AGGRESSIVE,
    DEFENSIVE_EAST,
    DEFENSIVE_WEST,
    EAST,
    NUM_ACTIONS,
    PATROLLING,
    WEST,
    Params,
    State,
)

DEPTH = 3
COST = 0.01  # value per step and per move still to go (a capture is worth 1)
SAFETY, APART = 0.5, 4  # value of a move further apart, up to APART moves
MARGIN = 2.0  # moves ahead of the defender that make a flag safe to run for


def attacker_action(p: Params, s: State) -> int:
    """The reference attacker's own-frame action in a single env (``p.task``, ``s`` of shape 1)."""
    value = _plan_values(p, s, target_flag(p, s)).reshape((NUM_ACTIONS, 2) * DEPTH)
    speed = float(p.defender_speed[p.task][0])
    weights = np.array([1.0 - speed, speed])  # the defender stays, moves
    for _ in range(DEPTH):  # expectation over the dice, then the best action, from the leaves
        value = value @ weights
        if value.ndim > 1:
            value = value.max(-1)
    return int(np.argmax(value))


def _plan_values(p: Params, s: State, target: int) -> np.ndarray:
    """The value of every plan of DEPTH (attacker action, defender moves?) pairs, the first
    pair most significant: ``10 ** DEPTH`` values, grown level by level from ``s``."""
    always = p._replace(defender_speed=np.ones_like(p.defender_speed))  # the dice: below
    branch_action = np.repeat(np.arange(NUM_ACTIONS), 2)
    branch_moves = np.tile(np.array([False, True]), NUM_ACTIONS)
    branches = len(branch_action)
    state, value, done = s, np.zeros(1), np.zeros(1, dtype=bool)
    for k in range(DEPTH):
        state = State(*(np.repeat(field, branches) for field in state))
        value, done = np.repeat(value, branches), np.repeat(done, branches)
        parents = len(value) // branches
        action, moves = np.tile(branch_action, parents), np.tile(branch_moves, parents)
        defender = np.where(moves, dynamics.scripted_defender_action(np, always, state), 0)
        state, _, _, terminated, truncated = dynamics.step(np, p, state, action, defender)
        won, lost = dynamics.outcome(p, state, terminated)
        spent = COST * (k + 1)
        to_go = spent + COST * (_distance(p, target, state) - SAFETY * _apart(state))
        value = np.where(done, value, np.where(won, 1.0 - spent, np.where(lost, -1.0, -to_go)))
        done = done | terminated | truncated
    return value


def _apart(s: State) -> Any:
    """The agents' Manhattan distance, up to :data:`APART`."""
    return np.minimum(np.abs(s.attacker_x - s.defender_x) + np.abs(s.attacker_y - s.defender_y),
                      APART)


def _distance(p: Params, flag: int, s: State) -> Any:
    """BFS moves from the attacker to ``flag``."""
    return p.flag_distance[p.task, flag, s.attacker_y + 1, s.attacker_x + 1]


def target_flag(p: Params, s: State) -> int:
    """The flag to run for (WEST or EAST): see the module docstring."""
    attacker = [float(_distance(p, flag, s)[0]) for flag in (WEST, EAST)]
    lead = [defender_arrival(p, s, flag) - attacker[flag] for flag in (WEST, EAST)]
    safe = [flag for flag in (WEST, EAST) if lead[flag] >= MARGIN]
    if safe:
        return min(safe, key=lambda flag: attacker[flag])
    return max((WEST, EAST), key=lambda flag: lead[flag])


def defender_arrival(p: Params, s: State, flag: int) -> float:
    """Expected steps before the scripted defender reaches ``flag`` (inf: its style never goes)."""
    style, speed = int(p.opponent[p.task][0]), float(p.defender_speed[p.task][0])

    def moves(to: int) -> float:
        return float(p.flag_distance[p.task, to, s.defender_y + 1, s.defender_x + 1][0])

    if style == AGGRESSIVE:
        return moves(flag) / speed
    if style in (DEFENSIVE_WEST, DEFENSIVE_EAST):
        guarded = WEST if style == DEFENSIVE_WEST else EAST
        return moves(flag) / speed if flag == guarded else math.inf
    if style == PATROLLING:
        target = int(s.target[0])
        if flag == target:
            return moves(flag) / speed
        between = float(p.flag_distance[p.task, target, 1, p.last[p.task] * flag + 1][0])
        return (moves(target) + between) / speed
    return math.inf  # mirroring: it goes where the attacker's moves send it
