"""GridNav: the built-in native grid-navigation game (levels x control rules x slip).

Importing this module never imports torch; :func:`make_batched` imports the batched view
lazily. Importing it also registers the single view with gymnasium as
``gameadapt/GridNav-v0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium
from gameadapt import hookimpl
from gameadapt.game import BatchedGame, GameSpec, TaskLabel

from .dynamics import VARIANT_SPACE
from .env import GridNavEnv, action_space, observation_space

GAME_ID = "gridnav"
GYM_ID = "gameadapt/GridNav-v0"
DESCRIPTION = ("Grid navigation to a goal cell through generated walls; variants change the "
               "level, the unobserved control mapping (8 symmetries of the square), slip, "
               "rewards and time limit.")
SUCCESS = "reached the goal"

__all__ = ["GAME_ID", "GYM_ID", "SUCCESS", "VARIANT_SPACE", "GridNavEnv", "make_batched",
           "make_env", "reference", "register_games"]


def make_env(variant: Mapping[str, Any] | None = None, render_mode: str | None = None
             ) -> GridNavEnv:
    """The single-instance gymnasium view of one variant."""
    return GridNavEnv(variant, render_mode=render_mode)


def make_batched(variants: Sequence[Mapping[str, Any]], envs_per_task: int, device: Any,
                 first_task: int = 0) -> BatchedGame:
    """The batched torch view (imports torch); ``first_task``: global index of the first task."""
    from .batched import BatchedGridNav

    return BatchedGridNav(variants, envs_per_task, device, first_task)


def reference(env: Any, observation: Any, variant: Mapping[str, Any]) -> int:
    """The upper-bound policy: a shortest path to the goal under the true control mapping.

    Reads the env's cell and its variant's (hidden) mapping; after a slip it goes on from the
    cell it landed in. Deterministic given the env's state.
    """
    return int(env.unwrapped.reference_action())


@hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    register(GameSpec(
        id=GAME_ID,
        description=DESCRIPTION,
        api="native",
        observation_space=observation_space(),
        action_space=action_space(),
        variant_space=VARIANT_SPACE,
        make_env=make_env,
        make_batched=make_batched,
        gym_id=GYM_ID,
        success=SUCCESS,
        reference=reference,
        task_label=TaskLabel("control mapping", lambda variant: variant["rules"]["controls"]),
    ))


if GYM_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ID, entry_point="gameadapt.games.gridnav.env:GridNavEnv")
