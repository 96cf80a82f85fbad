"""A gameadapt plugin whose hooks never run: one is misspelt, the other is not marked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gameadapt


@gameadapt.hookimpl
def register_game(register: Callable[[Any], None]) -> None:
    """Misspelt: the hook is ``register_games``."""
    raise AssertionError("never called")


def register_algorithms(register: Callable[[Any], None]) -> None:
    """Not marked with @gameadapt.hookimpl."""
    raise AssertionError("never called")
