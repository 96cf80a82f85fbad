"""The PettingZoo parallel view of Duel (numpy only, never imports torch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gameadapt import hashrandom
from gameadapt.game import check_render_mode, show_text
from pettingzoo import ParallelEnv

from . import dynamics
from .dynamics import AGENTS, ATTACKER, DEFENDER, NUM_ACTIONS, OBS_DIM, VARIANT_SPACE
from .reference import attacker_action


def observation_space() -> gymnasium.spaces.Box:
    """``Box(-1, 1, (15,), float32)``, the same for both agents."""
    return gymnasium.spaces.Box(low=-1.0, high=1.0, shape=(OBS_DIM,), dtype=np.float32)


def action_space() -> gymnasium.spaces.Discrete:
    """``Discrete(5)`` in the agent's own frame: 0 stay, 1 forward, 2 back, 3 left, 4 right."""
    return gymnasium.spaces.Discrete(NUM_ACTIONS)


class DuelParallelEnv(ParallelEnv):
    """An attacker runs for one of two flags; a defender tries to tag it first.

    ## Description
    A ``size x size`` arena (7..11) with generated walls, a flag in each top corner ("west"
    at ``(0, 0)``, "east" at ``(size-1, 0)``; ``x`` = column, ``y`` = row from the top). The
    attacker starts at the bottom centre, the defender a little above the middle. Both agents
    move at once; the learning agent is the attacker. Without a policy for it, the defender
    plays the variant's ``opponent`` style (:meth:`scripted_action`): ``aggressive`` chases
    the attacker, ``defensive_west`` / ``defensive_east`` walk to that flag and stay on it,
    ``patrolling`` walks between the flags forever, ``mirroring`` repeats the attacker's
    previous action in its own frame (the attacker's mirror image). The scripted defender
    stays put with probability ``1 - defender_speed``.

    ## Action Space
    ``Discrete(5)`` per agent, in its own frame: 0 stay, 1 forward, 2 back, 3 left, 4 right.
    The attacker's frame is the global one (forward = up); the defender faces it, so its
    frame is rotated 180 degrees (forward = down, left = right). Moving into a wall or off
    the arena is staying; the agents do not block each other.

    ## Observation Space
    ``Box(-1, 1, (15,), float32)`` per agent, in its own frame (the defender sees a cell
    ``(x, y)`` as ``(size-1-x, size-1-y)``), coordinates divided by ``size - 1``:
    ``[x, y, left_flag - (x, y), right_flag - (x, y), other_visible, other - (x, y),
    wall_forward, wall_back, wall_left, wall_right, t / time_limit, role]``. The left flag
    is the west one for the attacker and the east one for the defender. The other agent is
    visible (1.0) when its Chebyshev distance is ``<= view_radius``; otherwise its relative
    position reads 0. ``role`` is 0.0 for the attacker and 1.0 for the defender, so one
    shared policy can play both sides.

    ## Rewards
    Capture (the attacker on a flag, the defender not on the same cell): ``+capture_reward``
    to the attacker and ``-capture_reward`` to the defender. Otherwise a tag (Manhattan
    distance <= 1): ``-tag_penalty`` to the attacker, ``+tag_penalty`` to the defender. The
    attacker also gets ``-step_cost`` every step plus ``progress_reward`` times the decrease
    of its BFS distance to the nearer flag.

    ## Episode End
    Both agents terminate on a capture or a tag; both are truncated after ``time_limit``
    steps. ``agents`` is then empty until :meth:`reset`. Each agent's
    ``infos[agent]["is_success"]`` says whether it won on that step: the attacker by a
    capture, the defender by a tag (False on every other step, and for both at a time-out).

    ## Arguments
    ``variant``: a (partial) variant dict validated by ``VARIANT_SPACE``; ``render_mode``:
    ``"ansi"`` (``render()`` returns the arena as text) or ``"human"`` (prints it).
    ``reset(seed, options={"stream": i})`` replays env ``i`` of a batched view reset with
    ``seed``.
    """

    metadata = {"name": "duel_v0", "render_modes": ["ansi", "human"], "render_fps": 4,
                "is_parallelizable": True}

    def __init__(self, variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> None:
        check_render_mode(self.metadata, render_mode)
        self.variant = VARIANT_SPACE.validate(variant or {})
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.observation_spaces = {agent: observation_space() for agent in AGENTS}
        self.action_spaces = {agent: action_space() for agent in AGENTS}
        self.state_space = gymnasium.spaces.Box(-1.0, 1.0, (len(AGENTS) * OBS_DIM,), np.float32)
        self._params = dynamics.build_params([self.variant])._replace(
            task=np.zeros(1, dtype=np.int64))
        self._state = dynamics.initial_state(np, self._params, np.zeros(1, dtype=np.int64))
        self._seeds = np.random.default_rng()

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
        else:
            seed = int(self._seeds.integers(2**62))
        stream = int((options or {}).get("stream", 0))
        key = np.array([hashrandom.stream_key(seed, stream)], dtype=np.int64)
        self._state = dynamics.initial_state(np, self._params, key)
        self.agents = list(AGENTS)
        if self.render_mode == "human":
            self.render()
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions: Mapping[str, Any]) -> tuple[
            dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool],
            dict[str, dict[str, Any]]]:
        if not self.agents:
            raise RuntimeError("the episode has ended: call reset() before step()")
        attacker, defender = (self._action(actions, agent) for agent in AGENTS)
        self._state, *rewards, terminated, truncated = dynamics.step(
            np, self._params, self._state, attacker, defender)
        if self.render_mode == "human":
            self.render()
        observations = self._observe()
        terminations = dict.fromkeys(self.agents, bool(terminated[0]))
        truncations = dict.fromkeys(self.agents, bool(truncated[0]))
        won = dynamics.outcome(self._params, self._state, terminated)
        infos = {agent: {"is_success": bool(w[0])} for agent, w in zip(AGENTS, won)}
        if terminated[0] or truncated[0]:
            self.agents = []
        return (observations, {agent: float(r[0]) for agent, r in zip(AGENTS, rewards)},
                terminations, truncations, infos)

    def scripted_action(self, agent: str) -> int:
        """The variant's scripted action for ``agent`` (only the defender has one) now."""
        if agent != AGENTS[DEFENDER]:
            raise ValueError(f"only the defender has a scripted action, not {agent!r}")
        return int(dynamics.scripted_defender_action(np, self._params, self._state)[0])

    def reference_action(self) -> int:
        """The reference attacker's action now (see :mod:`~.reference`)."""
        return attacker_action(self._params, self._state)

    def state(self) -> np.ndarray:
        """Global state: both observations concatenated (float32 ``[30]``, ``state_space``)."""
        return dynamics.observe(np, self._params, self._state)[0].reshape(-1)

    def render(self) -> str | None:
        return show_text(self.render_mode, self._text())

    def close(self) -> None:
        pass

    def _action(self, actions: Mapping[str, Any], agent: str) -> np.ndarray:
        if agent not in actions:
            raise ValueError(f"missing an action for {agent!r}")
        action = np.asarray([actions[agent]], dtype=np.int64).reshape(1)
        if not 0 <= action[0] < NUM_ACTIONS:
            raise ValueError(f"{agent}'s action must be in 0..{NUM_ACTIONS - 1}, "
                             f"got {action[0]}")
        return action

    def _observe(self) -> dict[str, np.ndarray]:
        observations = dynamics.observe(np, self._params, self._state)[0]
        return {agent: observations[i] for i, agent in enumerate(AGENTS)}

    def _text(self) -> str:
        p, s = self._params, self._state
        size = int(p.last[0]) + 1
        rows = [["#" if wall else "." for wall in row[1:size + 1]]
                for row in p.walls[0, 1:size + 1]]
        rows[0][0], rows[0][size - 1] = "W", "E"
        for agent, mark in zip((DEFENDER, ATTACKER), "DA"):  # the attacker drawn on top
            x, y = dynamics.position(s, agent)
            rows[int(y[0])][int(x[0])] = mark
        return "\n".join("".join(row) for row in rows) + "\n"
