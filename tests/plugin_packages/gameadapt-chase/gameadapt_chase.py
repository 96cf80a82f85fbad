"""A gameadapt plugin with the games ``chase`` and ``chase-easy`` (for the duplicate-id tests)."""

from __future__ import annotations

from collections.abc import Callable

import gameadapt
from gameadapt.game import GameSpec
from gameadapt.variants import VariantSpace
from gameadapt.wrappers import gymnasium_game


@gameadapt.hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register ``chase`` and ``chase-easy``."""
    for game_id in ("chase", "chase-easy"):
        register(gymnasium_game(game_id, "CartPole-v1", VariantSpace([]),
                                description="the real chase"))
