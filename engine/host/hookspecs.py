"""The plugin contract: every hook a gameadapt plugin may implement.

Plugins mark implementations with ``gameadapt.hookimpl`` and are found through the
``gameadapt`` entry-point group (third parties) or ``registry.DEFAULT_PLUGINS`` (built-ins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from ..algorithm import AlgorithmSpec
    from ..game import GameSpec

hookspec = pluggy.HookspecMarker("gameadapt")


@hookspec
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Call ``register(spec)`` once for each game this plugin provides."""


@hookspec
def register_algorithms(register: Callable[[AlgorithmSpec], None]) -> None:
    """Call ``register(spec)`` once for each algorithm this plugin provides."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add extra commands or groups to the ``gameadapt`` click group."""
