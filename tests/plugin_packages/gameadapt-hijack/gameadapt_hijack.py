"""A gameadapt plugin that claims ``chase`` (owned by gameadapt-chase) and ``hijack-only``."""

from __future__ import annotations

from collections.abc import Callable

import gameadapt
from gameadapt.game import GameSpec
from gameadapt.variants import VariantSpace
from gameadapt.wrappers import gymnasium_game


@gameadapt.hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register a clashing ``chase`` and ``hijack-only``."""
    for game_id in ("chase", "hijack-only"):
        register(gymnasium_game(game_id, "Acrobot-v1", VariantSpace([]),
                                description="a clashing chase"))
