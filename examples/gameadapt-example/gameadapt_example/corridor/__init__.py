"""Corridor: a tiny native tensor game (a 1-D walk to a hidden goal cell).

The level is the corridor's length and its goal cell (placed by ``level.seed``); the rules
are the step cost, the goal reward and the control mapping (``reversed`` swaps the two
actions). Importing this module never imports torch; :func:`make_batched` imports the
batched view lazily. Importing it also registers the single view with gymnasium as
``gameadapt_example/Corridor-v0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium
from gameadapt.game import BatchedGame, GameSpec

from .dynamics import VARIANT_SPACE
from .env import CorridorEnv, action_space, observation_space

GAME_ID = "corridor"
GYM_ID = "gameadapt_example/Corridor-v0"

__all__ = ["GAME_ID", "GYM_ID", "SPEC", "VARIANT_SPACE", "CorridorEnv", "make_batched",
           "make_env"]


def make_env(variant: Mapping[str, Any] | None = None, render_mode: str | None = None
             ) -> CorridorEnv:
    """The single-instance gymnasium view of one variant."""
    return CorridorEnv(variant, render_mode=render_mode)


def make_batched(variants: Sequence[Mapping[str, Any]], envs_per_task: int, device: Any,
                 first_task: int = 0) -> BatchedGame:
    """The batched torch view (imports torch); ``first_task``: global index of the first task."""
    from .batched import BatchedCorridor

    return BatchedCorridor(variants, envs_per_task, device, first_task)


SPEC = GameSpec(
    id=GAME_ID,
    description="Walk a 1-D corridor to a hidden goal cell; variants change the length, the "
                "goal, the step cost, the goal reward and whether the controls are reversed.",
    api="native",
    observation_space=observation_space(),
    action_space=action_space(),
    variant_space=VARIANT_SPACE,
    make_env=make_env,
    make_batched=make_batched,
    gym_id=GYM_ID,
)

if GYM_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ID, entry_point="gameadapt_example.corridor.env:CorridorEnv")
