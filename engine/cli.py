"""The ``gameadapt`` command line: thin wrappers that parse, call the engine, and print.

Bad input never shows a traceback: every :class:`GameadaptError` and click usage error is
printed as one ``Error: ...`` line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


# -- train / evaluate -------------------------------------------------------------------
def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise GameadaptError(f"--{name} must be comma-separated integers, got {text!r}") from None


@cli.command("train")
@click.argument("game", required=False)
@click.option("--algo", "algorithm", help="Algorithm id (default maml).")
@click.option("--iterations", type=int, help="Meta-iterations to reach (default 100).")
@click.option("--meta-batch", type=int, help="Variants (tasks) per meta-iteration (default 20).")
@click.option("--envs-per-task", type=int, help="Episodes per task and round (default 20).")
@click.option("--inner-steps", type=int, help="Inner adaptation steps (default 1).")
@click.option("--inner-lr", type=float, help="Inner learning rate (default 0.1).")
@click.option("--option", "-o", "extra_options", multiple=True, metavar="KEY=VALUE",
              help="Any other algorithm option, e.g. -o outer_lr=3e-4 (repeatable).")
@click.option("--device", help="auto (CUDA if present), cpu or cuda.")
@click.option("--seed", type=int, help="Seed of everything random (default 0).")
@click.option("--variant-split", type=click.Choice(SPLITS), help="Split to train on (train).")
@click.option("--checkpoint-every", type=int, help="Checkpoint every N iterations (default 5).")
@click.option("--share-policy", is_flag=True, default=None,
              help="Multi-agent games: one policy drives every agent (parameter sharing).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default runs/GAME-ALGO-seedS).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with these settings; flags override it.")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the run in this folder from its last checkpoint.")
def train_command(game: str | None, resume: Path | None, run_dir: Path | None,
                  config_file: Path | None, extra_options: tuple[str, ...], **flags: Any) -> None:
    """Meta-train an agent on GAME's variants (or continue a run with --resume)."""
    from .runs import RunDir
    from .trainer import load_config_file, load_session, make_config, start_run

    if resume is not None:
        run = RunDir(resume)
        saved = run.read_config()["train"]
        if game is not None and game != saved["game"]:
            raise GameadaptError(f"{resume} is a run of {saved['game']!r}, not {game!r}")
        allowed = {"iterations", "device"}
        given = {k for k, v in flags.items() if v is not None} | ({"option"} if extra_options else set())
        if given - allowed or config_file is not None:
            raise GameadaptError("--resume continues a run as configured; only --iterations "
                                 "and --device may be given")
        overrides = {k: flags[k] for k in allowed if flags[k] is not None}
        config = make_config({**saved, **overrides})
        session = load_session(run, config)
        if overrides:
            run.write_config({**run.read_config(), "train": config.to_json()})
    else:
        values = load_config_file(config_file) if config_file is not None else {}
        options = dict(values.get("options", {}))
        for key in ("inner_steps", "inner_lr"):
            value = flags.pop(key)
            if value is not None:
                options[key] = value
        values.update({k: v for k, v in flags.items() if v is not None})
        if game is not None:
            values["game"] = game
        if "game" not in values:
            raise GameadaptError("missing GAME (or --resume RUN)")
        for assignment in extra_options:
            key, sep, text = assignment.partition("=")
            if not sep or not key.strip():
                raise GameadaptError(f"expected --option key=value, got {assignment!r}")
            options[key.strip()] = text.strip()
        values["options"] = options
        config = make_config(values)
        run = RunDir(run_dir or Path("runs") / f"{config.game}-{config.algorithm}-seed{config.seed}")
        session = start_run(config, run)
    _train_with_progress(session, run)


def _train_with_progress(session: Any, run: Any) -> None:
    from .trainer import train

    config = session.config
    remaining = config.iterations - session.iteration
    click.echo(f"training {config.algorithm} on {config.game} ({config.meta_batch} tasks x "
               f"{config.envs_per_task} episodes per iteration, device {session.device}) "
               f"in {run.path}", err=True)
    if remaining <= 0:
        click.echo(f"{run.path} has already reached {config.iterations} iterations", err=True)
        return

    def show(row: Any) -> str:
        if row is None:
            return ""
        return (f"it {row['iteration'] + 1}  pre {row['pre_return']:.2f}  "
                f"post {row['post_return']:.2f}  {row['env_steps_per_s']:.0f} steps/s")

    with click.progressbar(length=remaining, label="meta-training", item_show_func=show,
                           file=sys.stderr) as bar:  # type: ignore[type-var]
        train(session, run, progress=lambda row: bar.update(1, row))
    last = run.read_metrics()[-1]
    click.echo(f"done: {session.iteration} iterations; last pre-adaptation return "
               f"{last['pre_return']:.3f}, post-adaptation {last['post_return']:.3f}; "
               f"checkpoint {run.checkpoint_path}")


@cli.command("evaluate")
@click.argument("run_path", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--tasks", type=int, default=40, show_default=True, help="Variants per seed.")
@click.option("--episodes", type=int, default=20, show_default=True,
              help="Episodes per variant, before and after adaptation.")
@click.option("--steps", default="0,1,3", show_default=True, help="Adaptation step counts.")
@click.option("--baselines", default="pretrain,scratch", show_default=True,
              help="Comma-separated baselines given the same data ('' for none).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save a PNG: return vs adaptation steps.")
@click.option("--variant", "-v", "fixed", multiple=True, metavar="KEY=VALUE",
              help="Fix a parameter in every evaluated variant (repeatable), e.g. "
                   "-v rules.opponent=mirroring.")
@json_option
def evaluate_command(run_path: Path, split: str, tasks: int, episodes: int, steps: str,
                     baselines: str, seeds: str, plot: Path | None, fixed: tuple[str, ...],
                     as_json: bool) -> None:
    """Return before and after adaptation on held-out variants, vs baselines."""
    from .evaluate import EvalSettings, evaluate_run, format_results, plot_results, require_pyplot

    if plot is not None:
        require_pyplot()
    settings = EvalSettings(split, tasks, episodes, _int_list(steps, "steps"),
                            _int_list(seeds, "seeds"), tuple(fixed))
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    for name in names:
        get_registry().algorithm(name)
    result = evaluate_run(run_path, settings, names,
                          progress=lambda m: click.echo(f"evaluating {m} ...", err=True))
    if plot is not None:
        plot_results(result, plot)
    if as_json:
        _echo_json(result)
    else:
        click.echo(format_results(result))
        if plot is not None:
            click.echo(f"plot: {plot}")


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


from .commands_play import adapt_command, play_command  # noqa: E402 (needs the helpers above)

cli.add_command(adapt_command)
cli.add_command(play_command)

from .commands_export import export_command  # noqa: E402

cli.add_command(export_command)

get_registry().add_commands(cli)
