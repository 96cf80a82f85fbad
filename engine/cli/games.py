"""``gameadapt games`` and ``gameadapt algorithms``: what the installed plugins provide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..game import GameSpec, space_to_json
from ..host.registry import get_registry
from ..limits import MAX_PREVIEW_STEPS, MAX_SAMPLE_VARIANTS
from ..tables import format_table
from ..variants import SPLITS, as_split
from .options import SEED, echo_json, json_option, resolve_variant, with_variant_options
from .preview import play_random


@click.group()
def games() -> None:
    """Installed games: list, show, sample variants, play."""


@games.command("list")
@json_option
def games_list(as_json: bool) -> None:
    """List every installed game."""
    registry = get_registry()
    specs = sorted(registry.games.values(), key=lambda s: s.id)
    if as_json:
        echo_json([{"id": s.id, "api": s.api, "plugin": registry.owner("game", s.id),
                     "description": s.description} for s in specs])
        return
    rows = [(s.id, s.api, registry.owner("game", s.id), s.description) for s in specs]
    click.echo(format_table(["game", "api", "plugin", "description"], rows))


@games.command("show")
@click.argument("game")
@json_option
def games_show(game: str, as_json: bool) -> None:
    """Show a game's spaces, every variant parameter and the train / held-out split."""
    spec = get_registry().game(game)
    if as_json:
        echo_json(spec.to_json())
        return
    click.echo(_describe_game(spec))


def _describe_game(spec: GameSpec) -> str:
    lines = [
        f"{spec.id}: {spec.description}",
        f"api: {spec.api}" + (" (batched tensor view)" if spec.make_batched else "")
        + (f", gymnasium id {spec.gym_id}" if spec.gym_id else ""),
        f"observation space: {_space_text(spec.observation_space)}",
        f"action space: {_space_text(spec.action_space)}",
        "",
    ]
    rows = [
        (f"{p.part}.{p.name}", p.domain.describe(), p.default,
         p.train.describe() if p.train else "default", p.test.describe() if p.test else "default",
         p.description)
        for p in spec.variant_space.params
    ]
    lines.append(format_table(["parameter", "domain", "default", "train", "held-out", "description"],
                              rows))
    return "\n".join(lines)


def _space_text(space: Any) -> str:
    data = space_to_json(space)
    if data["type"] == "discrete":
        return f"Discrete({data['n']})"
    if data["type"] == "box":
        return f"Box(shape={tuple(data['shape'])}, dtype={data['dtype']})"
    return data["type"]


@games.command("sample")
@click.argument("game")
@click.option("--split", type=click.Choice(SPLITS), default="train", show_default=True)
@click.option("-n", "count", type=click.IntRange(1, MAX_SAMPLE_VARIANTS), default=5,
              show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@json_option
def games_sample(game: str, split: str, count: int, seed: int, as_json: bool) -> None:
    """Draw variants from the train or held-out split (same seed, same variants)."""
    spec = get_registry().game(game)
    variants = spec.variant_space.sample(as_split(split), count, seed)
    if as_json:
        echo_json(variants)
        return
    names = [(p.part, p.name) for p in spec.variant_space.params]
    rows = [[i] + [v[part][name] for part, name in names] for i, v in enumerate(variants)]
    click.echo(format_table(["#"] + [f"{part}.{name}" for part, name in names], rows))


@games.command("play")
@click.argument("game")
@with_variant_options
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1, MAX_PREVIEW_STEPS), default=10, show_default=True,
              help="Render at most this many steps.")
def games_play(game: str, assignments: tuple[str, ...], variant_file: Path | None, seed: int,
               steps: int) -> None:
    """Play a few random steps of a variant and render them as text."""
    spec = get_registry().game(game)
    variant = resolve_variant(spec.variant_space, assignments, variant_file)
    play_random(spec, variant, seed=seed, steps=steps, echo=click.echo)


@click.group()
def algorithms() -> None:
    """Installed algorithms."""


@algorithms.command("list")
@json_option
def algorithms_list(as_json: bool) -> None:
    """List every installed algorithm."""
    registry = get_registry()
    specs = sorted(registry.algorithms.values(), key=lambda s: s.id)
    if as_json:
        echo_json([dict(s.to_json(), plugin=registry.owner("algorithm", s.id)) for s in specs])
        return
    rows = [(s.id, "yes" if s.adapts else "baseline", s.action_kinds,
             registry.owner("algorithm", s.id), s.description) for s in specs]
    click.echo(format_table(["algorithm", "meta-learns", "actions", "plugin", "description"], rows))
