"""The ``gameadapt`` command line: thin wrappers that parse, call the engine, and print.

Bad input never shows a traceback: every :class:`GameadaptError` and click usage error is
printed as one ``Error: ...`` line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from . import __version__
from .errors import GameadaptError
from .game import GameSpec, space_to_json
from .registry import get_registry, reset_registry
from .tables import format_table, to_json
from .variants import SPLITS, Variant, VariantSpace


class OneLineErrorGroup(click.Group):
    """A click group that reports bad input as a single line instead of usage or a traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except GameadaptError as exc:
            _fail(str(exc), 1)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (click.Abort, EOFError, KeyboardInterrupt):
            _fail("aborted", 1)
        sys.exit(result if isinstance(result, int) else 0)


def _fail(message: str, code: int) -> None:
    first_line = " ".join(message.split("\n")).strip()
    click.echo(f"Error: {first_line}", err=True)
    sys.exit(code)


def _echo_json(data: Any) -> None:
    click.echo(to_json(data))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
variant_options = [
    click.option("--variant", "-v", "assignments", multiple=True, metavar="KEY=VALUE",
                 help="Set a variant parameter (repeatable), e.g. -v slip=0.1 -v level.seed=3."),
    click.option("--variant-file", type=click.Path(dir_okay=False, path_type=Path),
                 help="Read the variant from a JSON or TOML file; --variant values override it."),
]


def with_variant_options(func: Any) -> Any:
    """Add ``--variant`` and ``--variant-file`` to a command."""
    for option in reversed(variant_options):
        func = option(func)
    return func


def resolve_variant(space: VariantSpace, assignments: Sequence[str], variant_file: Path | None
                    ) -> Variant:
    """The variant given by an optional file plus ``key=value`` overrides."""
    base = space.load_file(variant_file) if variant_file is not None else None
    return space.parse_assignments(assignments, base)


@click.group(cls=OneLineErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="gameadapt")
def cli() -> None:
    """Meta-train game agents that adapt to new levels and rules, and ship them as ONNX."""


# -- plugins ----------------------------------------------------------------------------
@cli.group()
def plugins() -> None:
    """Installed plugins: list, install, uninstall."""


@plugins.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
@json_option
def plugins_list(show_all: bool, as_json: bool) -> None:
    """List plugins with their version, hooks, what they registered and any errors."""
    infos = [p for p in get_registry().plugins.values() if show_all or not p.builtin]
    if as_json:
        _echo_json([p.to_json() for p in infos])
        return
    if not infos:
        click.echo("No third-party plugins installed (use --all to see the built-ins).")
        return
    rows = [(p.name, p.version, "built-in" if p.builtin else "installed", p.hooks,
             p.games + p.algorithms, "; ".join(p.errors) or "ok") for p in infos]
    click.echo(format_table(["name", "version", "source", "hooks", "provides", "status"], rows))


@plugins.command("install")
@click.argument("specs", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_install(specs: tuple[str, ...], yes: bool) -> None:
    """Install plugin packages with pip (names, paths or URLs pip understands)."""
    _run_pip(["install", *specs], f"Install {', '.join(specs)} into {sys.executable}?", yes)
    reset_registry()
    new = [p for p in get_registry().plugins.values() if not p.builtin]
    for info in new:
        status = "; ".join(info.errors) or "ok"
        click.echo(f"plugin {info.name} {info.version}: {status}")


@plugins.command("uninstall")
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_uninstall(names: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugin packages with pip."""
    _run_pip(["uninstall", "-y", *names], f"Uninstall {', '.join(names)}?", yes)
    click.echo(f"uninstalled {', '.join(names)}")


def _run_pip(pip_args: list[str], question: str, yes: bool) -> None:
    if not yes:
        click.confirm(question, abort=True)
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *pip_args]
    completed = subprocess.run(command, check=False)  # an argument list, never a shell
    if completed.returncode != 0:
        raise GameadaptError(f"pip {pip_args[0]} failed with exit code {completed.returncode}")


# -- games ------------------------------------------------------------------------------
@cli.group()
def games() -> None:
    """Installed games: list, show, sample variants, play."""


@games.command("list")
@json_option
def games_list(as_json: bool) -> None:
    """List every installed game."""
    registry = get_registry()
    specs = sorted(registry.games.values(), key=lambda s: s.id)
    if as_json:
        _echo_json([{"id": s.id, "api": s.api, "plugin": registry.owner("game", s.id),
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
        _echo_json(spec.to_json())
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
@click.option("-n", "count", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def games_sample(game: str, split: str, count: int, seed: int, as_json: bool) -> None:
    """Draw variants from the train or held-out split (same seed, same variants)."""
    spec = get_registry().game(game)
    variants = spec.variant_space.sample(split, count, seed)  # type: ignore[arg-type]
    if as_json:
        _echo_json(variants)
        return
    names = [(p.part, p.name) for p in spec.variant_space.params]
    rows = [[i] + [v[part][name] for part, name in names] for i, v in enumerate(variants)]
    click.echo(format_table(["#"] + [f"{part}.{name}" for part, name in names], rows))


@games.command("play")
@click.argument("game")
@with_variant_options
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True,
              help="Render at most this many steps.")
def games_play(game: str, assignments: tuple[str, ...], variant_file: Path | None, seed: int,
               steps: int) -> None:
    """Play a few random steps of a variant and render them as text."""
    from .preview import play_random

    spec = get_registry().game(game)
    variant = resolve_variant(spec.variant_space, assignments, variant_file)
    play_random(spec, variant, seed=seed, steps=steps, echo=click.echo)


# -- algorithms -------------------------------------------------------------------------
@cli.group()
def algorithms() -> None:
    """Installed algorithms."""


@algorithms.command("list")
@json_option
def algorithms_list(as_json: bool) -> None:
    """List every installed algorithm."""
    registry = get_registry()
    specs = sorted(registry.algorithms.values(), key=lambda s: s.id)
    if as_json:
        _echo_json([dict(s.to_json(), plugin=registry.owner("algorithm", s.id)) for s in specs])
        return
    rows = [(s.id, "yes" if s.adapts else "baseline", s.action_kinds,
             registry.owner("algorithm", s.id), s.description) for s in specs]
    click.echo(format_table(["algorithm", "meta-learns", "actions", "plugin", "description"], rows))


get_registry().add_commands(cli)
