"""A gameadapt plugin that registers a game id another plugin owns (for the registry tests).

It registers a fresh id first and then ``gridnav``; the host must skip the plugin as a
whole, so neither id may end up registered by it.
"""

from __future__ import annotations

from collections.abc import Callable

import gameadapt
from gameadapt.game import GameSpec
from gameadapt.variants import VariantSpace
from gameadapt.wrappers import gymnasium_game


@gameadapt.hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register ``duplicate-extra`` and a clashing ``gridnav``."""
    for game_id in ("duplicate-extra", "gridnav"):
        register(gymnasium_game(game_id, "CartPole-v1", VariantSpace([]),
                                description="a clashing copy of CartPole"))
