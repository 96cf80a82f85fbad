"""The plugin contract: every hook a gameadapt plugin may implement.

Plugins mark implementations with ``gameadapt.hookimpl`` and are found through the
``gameadapt`` entry-point group (third parties) or ``registry.DEFAULT_PLUGINS`` (built-ins).

Every spec passed to ``register`` is checked at once (``registry.check_spec``): its id is 1 to
100 letters, digits and ``_ . : / -``, starting with a letter or digit (``gridnav``,
``CartPole-v1``, ``ALE/Pong-v5``), and its callables (``make_env``, ``make``, and any optional
one given) are callable; otherwise the plugin is reported broken. A command may not replace
an existing one (the existing one is kept, with a warning).
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
