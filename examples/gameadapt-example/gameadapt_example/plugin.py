"""The plugin module named by the ``gameadapt`` entry point: the hook implementations."""

from __future__ import annotations

from collections.abc import Callable

import click
import gameadapt
from gameadapt.errors import VariantError
from gameadapt.game import GameSpec

from . import arena, corridor, mountaincar
from .corridor.dynamics import goal_cell


@gameadapt.hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register ``corridor`` (native), ``mountaincar`` (gymnasium) and ``arena`` (PettingZoo)."""
    register(corridor.SPEC)
    register(mountaincar.SPEC)
    register(arena.SPEC)


@click.command("corridor-info")
@click.option("--seed", type=int, default=0, show_default=True, help="Level seed.")
@click.option("--length", type=int, default=8, show_default=True, help="Number of cells.")
def corridor_info(seed: int, length: int) -> None:
    """Show a corridor level: its length and where the goal is."""
    try:
        variant = corridor.VARIANT_SPACE.validate({"level": {"seed": seed, "length": length}})
    except VariantError as exc:
        raise click.ClickException(str(exc)) from None
    level = variant["level"]
    goal = goal_cell(level["seed"], level["length"])
    click.echo(f"corridor seed={level['seed']} length={level['length']}: goal at cell {goal}")
    click.echo("".join("G" if cell == goal else "." for cell in range(level["length"])))


@gameadapt.hookimpl
def register_commands(cli: click.Group) -> None:
    """Add ``gameadapt corridor-info``."""
    cli.add_command(corridor_info)
