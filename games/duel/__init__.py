"""Duel: the built-in multi-agent game, an attacker against a scripted or learnt defender.

The PettingZoo view is :class:`~.env.DuelParallelEnv`; :func:`make_env` is the learner's
(the attacker's) gymnasium view, with the defender playing the variant's scripted style.
Importing this module never imports torch; :func:`make_batched` imports the batched view
lazily. Importing it also registers the learner's view with gymnasium as
``gameadapt/Duel-v0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium
from gameadapt import hookimpl
from gameadapt.game import BatchedGame, GameSpec, TaskLabel

from .dynamics import AGENTS, LEARNER, MAX_TIME_LIMIT, VARIANT_SPACE
from .env import DuelParallelEnv, action_space, observation_space

GAME_ID = "duel"
GYM_ID = "gameadapt/Duel-v0"
DESCRIPTION = ("Attacker against defender on a walled grid with a flag in each top corner: the "
               "attacker scores by reaching a flag, the defender by tagging it first; variants "
               "change the arena, the defender's scripted style (held-out styles at test time), "
               "its speed, the view radius, rewards and time limit.")
MAX_EPISODE_STEPS = MAX_TIME_LIMIT
SUCCESS = "the attacker captured a flag (a defender's row: it tagged the attacker)"

__all__ = ["AGENTS", "DESCRIPTION", "GAME_ID", "GYM_ID", "LEARNER", "SUCCESS", "VARIANT_SPACE",
           "DuelParallelEnv", "make_batched", "make_env", "make_parallel_env", "opponent",
           "reference", "register_games"]


def make_parallel_env(variant: Mapping[str, Any] | None = None,
                      render_mode: str | None = None) -> DuelParallelEnv:
    """The PettingZoo parallel view of one variant."""
    return DuelParallelEnv(variant, render_mode=render_mode)


def opponent(env: DuelParallelEnv, agent: str, observation: Any,
             variant: Mapping[str, Any] | None = None) -> int:
    """The scripted action of ``agent`` (the defender) in ``env``: the variant's style."""
    return env.scripted_action(agent)


def make_env(variant: Mapping[str, Any] | None = None, render_mode: str | None = None
             ) -> gymnasium.Env:
    """The learner's (attacker's) gymnasium view; the defender plays its scripted style."""
    from gameadapt.multiagent import ControlledAgentEnv

    parallel_env = make_parallel_env(variant, render_mode)
    return ControlledAgentEnv(parallel_env, LEARNER, opponent, parallel_env.variant)


def reference(env: Any, observation: Any, variant: Mapping[str, Any] | None = None) -> int:
    """The upper-bound attacker in the learner's view ``env``: it knows the defender's style.

    An expectimax lookahead over the true rules with the defender's style, speed and
    position (even out of view), but not its dice; see :mod:`~.reference` for the details.
    """
    return int(env.unwrapped.parallel_env.reference_action())


def make_batched(variants: Sequence[Mapping[str, Any]], envs_per_task: int, device: Any,
                 agents: Sequence[str] = (LEARNER,), first_task: int = 0) -> BatchedGame:
    """The batched torch view (imports torch): one row per controlled agent of each env;
    ``first_task`` is the global index of the first task (its random streams)."""
    from .batched import BatchedDuel

    return BatchedDuel(variants, envs_per_task, device, agents, first_task)


@hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    register(GameSpec(
        id=GAME_ID,
        description=DESCRIPTION,
        api="pettingzoo",
        observation_space=observation_space(),
        action_space=action_space(),
        variant_space=VARIANT_SPACE,
        make_env=make_env,
        make_batched=make_batched,
        gym_id=GYM_ID,
        agents=AGENTS,
        learner=LEARNER,
        make_parallel_env=make_parallel_env,
        opponent=opponent,
        max_episode_steps=MAX_EPISODE_STEPS,
        success=SUCCESS,
        reference=reference,
        task_label=TaskLabel("opponent style", lambda variant: variant["rules"]["opponent"]),
    ))


if GYM_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ID, entry_point="gameadapt.games.duel:make_env")
