"""The ``gameadapt`` command line: thin wrappers that parse, call the engine, and print.

Bad input never shows a traceback: every :class:`GameadaptError` and click usage error is
printed as one ``Error: ...`` line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import GameadaptError, GameadaptNote, GameadaptWarning, PluginError, debug_enabled
from .game import GameSpec, space_to_json
from .interrupts import EXIT_INTERRUPTED, INTERRUPTED, DeferredInterrupt, stop_check
from .registry import (
    BUILTIN_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    LOAD_PLUGINS_ENV,
    canonical_name,
    get_registry,
    reset_registry,
)
from .tables import format_table, to_json
from .variants import SPLITS, Variant, VariantSpace


class OneLineErrorGroup(click.Group):
    """A click group that reports bad input as a single line instead of usage or a traceback.

    Bare ``gameadapt`` or ``gameadapt GROUP`` prints the group's help and exits 0 (click
    8.2+ would exit 2). :func:`gameadapt.errors.warn` / ``note`` lines are printed once each
    as ``Warning:`` / ``Note:``. With ``GAMEADAPT_DEBUG=1`` errors also show their traceback.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        with warnings.catch_warnings():
            _print_warnings_as_lines()
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                      **extra)
            except _NoArgsIsHelp as exc:
                click.echo(exc.ctx.get_help() if exc.ctx else self.get_help(click.Context(self)))
                sys.exit(0)
            except GameadaptError as exc:
                _fail(str(exc), getattr(exc, "exit_code", 1))
            except click.ClickException as exc:
                _fail(exc.format_message(), exc.exit_code)
            except (click.Abort, EOFError, KeyboardInterrupt) as exc:
                ctrl_c = isinstance(exc, KeyboardInterrupt) or \
                    isinstance(exc.__cause__, KeyboardInterrupt)
                _fail("aborted", EXIT_INTERRUPTED if ctrl_c else 1)
        sys.exit(result if isinstance(result, int) else 0)


# click 8.2+ raises this for a group called without a subcommand; older clicks print the help.
_NoArgsIsHelp: type[click.ClickException] = getattr(click.exceptions, "NoArgsIsHelpError",
                                                    type("_Never", (click.ClickException,), {}))


def _print_warnings_as_lines() -> None:
    """Show gameadapt's warnings and notes as one line each, each message once."""
    shown: set[str] = set()
    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if not issubclass(category, GameadaptWarning):
            original(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            label = "Note" if issubclass(category, GameadaptNote) else "Warning"
            click.echo(f"{label}: {text}", err=True)

    warnings.showwarning = show
    warnings.simplefilter("always", GameadaptWarning)


def _fail(message: str, code: int) -> None:
    if debug_enabled():
        traceback.print_exc()
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
    """List plugins with their distribution, version, hooks, what they registered and status."""
    infos = [p for p in get_registry().plugins.values() if show_all or not p.builtin]
    if as_json:
        _echo_json([p.to_json() for p in infos])
        return
    if not infos:
        click.echo("No third-party plugins installed (use --all to see the built-ins).")
        return
    rows = [(p.name, p.distribution or "-", p.version, "built-in" if p.builtin else "installed",
             p.hooks, p.games + p.algorithms, p.status) for p in infos]
    click.echo(format_table(["name", "distribution", "version", "source", "hooks", "provides",
                             "status"], rows))


@plugins.command("install")
@click.argument("specs", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_install(specs: tuple[str, ...], yes: bool) -> None:
    """Install plugin packages with pip (names, paths or URLs pip understands).

    Then loads the plugins in a fresh process and exits non-zero, naming the reason, unless
    every plugin the installed distributions declare loads cleanly.
    """
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "pip-report.json"
        _run_pip(["install", "--report", str(report), *specs],
                 f"Install {', '.join(specs)} into {sys.executable}?", yes)
        installed = _reported_installs(report)
    reset_registry()
    if not installed:
        click.echo("pip installed nothing new (already installed?)")
        return
    mine = [p for p in _plugins_in_fresh_process()
            if not p["builtin"] and canonical_name(p["distribution"]) in installed]
    for info in mine:
        click.echo(f"plugin {info['name']} ({info['distribution']} {info['version']}): "
                   f"{info['status']}")
    if not mine:
        raise PluginError(f"pip installed {', '.join(sorted(installed))}, but none of it declares "
                          f"a gameadapt plugin (entry-point group 'gameadapt')")
    for info in mine:
        if info["status"] != "ok":
            how = "does not load" if info["errors"] else "loads with problems"
            raise PluginError(f"plugin {info['name']} was installed but {how}: {info['status']}")


def _reported_installs(report: Path) -> set[str]:
    """Canonical names of the distributions a ``pip install --report`` installed."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
        return {canonical_name(item["metadata"]["name"]) for item in data.get("install", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _plugins_in_fresh_process() -> list[dict[str, Any]]:
    """``plugins list --all --json`` of a new process (sees what pip just installed)."""
    env = {k: v for k, v in os.environ.items() if k != LOAD_PLUGINS_ENV}
    completed = subprocess.run([sys.executable, "-m", "gameadapt", "plugins", "list", "--all",
                                "--json"], capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise PluginError(f"gameadapt no longer starts after the install: {last}")
    return json.loads(completed.stdout)


@plugins.command("uninstall")
@click.argument("names", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def plugins_uninstall(names: tuple[str, ...], yes: bool) -> None:
    """Uninstall plugins with pip, named by plugin name or distribution name."""
    dists = list(dict.fromkeys(_plugin_distribution(name) for name in names))
    _run_pip(["uninstall", "-y", *dists], f"Uninstall {', '.join(dists)}?", yes)
    importlib.invalidate_caches()
    reset_registry()
    left = [name for name in dists if _is_installed(name)]
    if left:
        raise PluginError(f"pip did not uninstall {', '.join(left)}")
    click.echo(f"uninstalled {', '.join(dists)}")


def _plugin_distribution(name: str) -> str:
    """The installed distribution that provides the plugin called ``name`` (or named so)."""
    wanted = canonical_name(name)
    for info in get_registry().plugins.values():
        if name == info.name or wanted == canonical_name(info.distribution):
            if info.builtin or canonical_name(info.distribution) == BUILTIN_DISTRIBUTION:
                raise PluginError(f"{name!r} is built into gameadapt and cannot be uninstalled "
                                  f"on its own")
            if info.distribution:
                return info.distribution
    if wanted == BUILTIN_DISTRIBUTION:
        raise PluginError("gameadapt itself is not a plugin; uninstall it with pip")
    for ep in entry_points(group=ENTRY_POINT_GROUP):  # also those GAMEADAPT_LOAD_PLUGINS leaves out
        if ep.dist is not None and (ep.name == name or canonical_name(ep.dist.name) == wanted):
            return ep.dist.name
    if _is_installed(name):
        raise PluginError(f"{name!r} is installed but is not a gameadapt plugin; nothing was "
                          f"uninstalled")
    raise PluginError(f"nothing to uninstall: {name!r} is neither an installed plugin nor its "
                      f"distribution (see gameadapt plugins list)")


def _is_installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True


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
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop at the first iteration boundary after this many minutes, with a "
                   "checkpoint (continue later with --resume).")
def train_command(game: str | None, resume: Path | None, run_dir: Path | None,
                  config_file: Path | None, extra_options: tuple[str, ...],
                  max_minutes: float | None, **flags: Any) -> None:
    """Meta-train an agent on GAME's variants (or continue a run with --resume).

    Ctrl-C stops at the end of the running iteration and saves it (exit code 130); a second
    Ctrl-C stops at once, keeping the last checkpoint.
    """
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
            raise GameadaptError("--resume continues a run as configured; only --iterations, "
                                 "--device and --max-minutes may be given")
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
    session = _train_with_progress(session, run, max_minutes=max_minutes)
    resume_command = f"gameadapt train --resume {shlex.quote(str(run.path))}"
    total = session.config.iterations
    if session.stopped == INTERRUPTED:
        click.echo(f"interrupted: saved the state after iteration {session.iteration} of {total} "
                   f"in {run.checkpoint_path}; continue with: {resume_command}", err=True)
        click.get_current_context().exit(EXIT_INTERRUPTED)
    if session.stopped is not None:
        click.echo(f"stopped by the time budget (--max-minutes {max_minutes:g}) after "
                   f"{session.iteration} of {total} iterations; checkpoint "
                   f"{run.checkpoint_path}; continue with: {resume_command}")
        return
    last = run.read_metrics()[-1] if run.read_metrics() else None
    if last is not None:
        click.echo(f"done: {session.iteration} iterations; last pre-adaptation return "
                   f"{last['pre_return']:.3f}, post-adaptation {last['post_return']:.3f}; "
                   f"checkpoint {run.checkpoint_path}")


def _train_with_progress(session: Any, run: Any, why: str | None = None,
                         max_minutes: float | None = None) -> Any:
    """Train ``session`` with a progress line; Ctrl-C stops it at an iteration boundary."""
    from .progress import TrainProgress
    from .trainer import train

    config = session.config
    remaining = config.iterations - session.iteration
    click.echo(f"training {config.algorithm} on {config.game} ({config.meta_batch} tasks x "
               f"{config.envs_per_task} episodes per iteration, device {session.device}) "
               f"in {run.path}" + (f": {why}" if why else ""), err=True)
    if remaining <= 0:
        click.echo(f"{run.path} has already reached {config.iterations} iterations", err=True)
        return session
    progress = TrainProgress(session.iteration, config.iterations)

    def on_ctrl_c() -> None:
        click.echo("\nCtrl-C: stopping after this iteration (Ctrl-C again to stop now) ...",
                   err=True)

    with DeferredInterrupt(on_ctrl_c) as interrupt:
        try:
            train(session, run, progress=progress, should_stop=stop_check(interrupt, max_minutes))
        finally:
            progress.close()
    return session


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

    def train_baseline(session: Any, baseline_run: Any, reason: str) -> Any:
        why = (f"the {session.config.algorithm} baseline is trained with the run's settings on "
               f"the same variants, for comparison; {reason}")
        return _train_with_progress(session, baseline_run, why)

    result = evaluate_run(run_path, settings, names,
                          progress=lambda m: click.echo(f"evaluating {m} ...", err=True),
                          train_baseline=train_baseline)
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
