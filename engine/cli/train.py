"""``gameadapt train`` and ``gameadapt evaluate`` (torch loads inside the commands)."""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import GameadaptError
from ..host.registry import get_registry
from ..limits import (
    MAX_BUDGET,
    MAX_EPISODES,
    MAX_INNER_STEPS,
    MAX_ITERATIONS,
    MAX_PROCESSES,
    MAX_TASKS,
    MAX_TRIALS,
)
from ..train.stopping import EXIT_INTERRUPTED, INTERRUPTED, DeferredInterrupt, stop_check
from ..variants import SPLITS, as_split
from .launch import launch
from .options import SEED, InputPath, OutputPath, echo_json, int_list, json_option, memory_option
from .progress import TrainProgress


@click.command("train")
@click.argument("game", required=False)
@click.option("--algo", "algorithm", help="Algorithm id (default maml).")
@click.option("--iterations", type=click.IntRange(max=MAX_ITERATIONS),
              help="Meta-iterations to reach (default 100).")
@click.option("--meta-batch", type=int,
              help="Variants (tasks) per meta-iteration (default 20; bounded by memory).")
@click.option("--envs-per-task", type=int,
              help="Episodes per task and round (default 20; bounded by memory).")
@click.option("--inner-steps", type=click.IntRange(max=MAX_INNER_STEPS),
              help="Inner adaptation steps (default 1).")
@click.option("--inner-lr", type=float, help="Inner learning rate (default 0.1).")
@click.option("--option", "-o", "extra_options", multiple=True, metavar="KEY=VALUE",
              help="Any other algorithm option, e.g. -o outer_lr=3e-4 (repeatable).")
@click.option("--device", help="auto (CUDA if present), cpu or cuda.")
@click.option("--seed", type=SEED, help="Seed of everything random (default 0).")
@click.option("--variant-split", type=click.Choice(SPLITS), help="Split to train on (train).")
@click.option("--checkpoint-every", type=click.IntRange(max=MAX_ITERATIONS),
              help="Checkpoint every N iterations (default 5).")
@click.option("--share-policy", is_flag=True, default=None,
              help="Multi-agent games: one policy drives every agent (parameter sharing).")
@click.option("--run-dir", type=OutputPath(folder=True),
              help="Run folder (default runs/GAME-ALGO-seedS).")
@click.option("--config", "config_file", type=InputPath(dir_okay=False, path_type=Path),
              help="TOML file with these settings; flags override it.")
@click.option("--resume", type=InputPath(file_okay=False, path_type=Path),
              help="Continue the run in this folder from its last checkpoint.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Stop at the first iteration boundary after this many minutes, with a "
                   "checkpoint (continue later with --resume).")
@click.option("--nproc", type=click.IntRange(1, MAX_PROCESSES),
              help="Train on N processes of this machine (what torchrun --nproc-per-node N "
                   "does; for several machines run torchrun yourself).")
@memory_option
def train_command(game: str | None, resume: Path | None, run_dir: Path | None,
                  config_file: Path | None, extra_options: tuple[str, ...],
                  max_minutes: float | None, nproc: int | None, **flags: Any) -> None:
    """Meta-train an agent on GAME's variants (or continue a run with --resume).

    Ctrl-C stops at the end of the running iteration and saves it (exit code 130); a second
    Ctrl-C stops at once, keeping the last checkpoint. Under torchrun (or with --nproc) the
    meta-batch is split across the processes; rank 0 writes the run folder.
    """
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.distributed import launched

    if resume is not None and run_dir is not None and \
            Path(run_dir).resolve() != Path(resume).resolve():
        raise GameadaptError(f"--resume {resume} continues the run in its own folder; drop "
                             f"--run-dir {run_dir} (or give the same folder)")
    if nproc is not None and nproc > 1 and not launched():
        click.get_current_context().exit(launch(nproc, sys.argv[1:]))
    world = _join(resume, flags)
    with contextlib.ExitStack() as owned:  # the run folder's lock, held until the end
        session, run = _start(world, game, resume, run_dir, config_file, extra_options, flags,
                              owned)
        session = train_with_progress(session, run, max_minutes=max_minutes)
    if session.writer:
        _report(session, run, max_minutes)
    elif session.stopped == INTERRUPTED:  # another rank: rank 0 said it; the same exit code
        click.get_current_context().exit(EXIT_INTERRUPTED)


def _join(resume: Path | None, flags: dict[str, Any]) -> Any:
    """Join torchrun's process group, if launched by it (gloo, or NCCL for CUDA runs)."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.distributed import join
    from ..train.runs import RunDir

    device = flags.get("device")
    if device is None and resume is not None:
        with contextlib.suppress(GameadaptError, OSError, ValueError, KeyError, TypeError):
            device = RunDir(resume).read_config()["train"]["device"]
    return join(device or "auto")


def _start(world: Any, game: str | None, resume: Path | None, run_dir: Path | None,
           config_file: Path | None, extra_options: tuple[str, ...], flags: dict[str, Any],
           owned: contextlib.ExitStack) -> tuple[Any, Any]:
    """The session and run folder: rank 0 (or the only process) locks, creates or loads the
    run and writes its config; the other ranks then load it, read-only."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.distributed import agree_ok, broadcast_state, record
    from ..train.session import load_session

    if world is not None and not world.writer:
        agree_ok(world, True, "start the run")  # waits for rank 0's folder
        run = _new_config(game, run_dir, config_file, extra_options, dict(flags))[1] \
            if resume is None else _run_dir(resume)
        session = load_session(run)
    else:
        try:
            if resume is not None:
                session, run = _resumed_session(resume, game, config_file, extra_options,
                                                flags, owned)
            else:
                session, run = _new_session(game, run_dir, config_file, extra_options, flags,
                                            owned)
            run.write_config({**run.read_config(),  # the world size and the split
                              "distributed": record(world, session.config.meta_batch)})
        except BaseException:
            agree_ok(world, False, "start the run")
            raise
        agree_ok(world, True, "start the run")
    session.world = world
    broadcast_state(world, session.policy)
    return session, run


def _run_dir(path: Path) -> Any:
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.runs import RunDir

    return RunDir(path)


def _resumed_session(resume: Path, game: str | None, config_file: Path | None,
                     extra_options: tuple[str, ...], flags: dict[str, Any],
                     owned: contextlib.ExitStack) -> tuple[Any, Any]:
    """The session of a run to continue; only ``--iterations`` and ``--device`` may change.

    The run's lock is entered on ``owned`` before anything is read; ``config.json`` is
    rewritten only once the checkpoint has loaded and the new settings fit it.
    """
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.runs import RunDir
    from ..train.session import load_session, make_config, run_train_config

    run = RunDir(resume)
    owned.enter_context(run.locked())
    saved = run_train_config(run).to_json()
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
    if config.iterations < session.iteration:
        raise GameadaptError(f"--iterations {config.iterations} is below the "
                             f"{session.iteration} iterations {resume} has completed; give "
                             f"--iterations {session.iteration} or more")
    run.read_metrics()  # a corrupt metrics.jsonl is refused before anything is written
    if overrides:
        run.write_config({**run.read_config(), "train": config.to_json()})
    return session, run


def _new_session(game: str | None, run_dir: Path | None, config_file: Path | None,
                 extra_options: tuple[str, ...], flags: dict[str, Any],
                 owned: contextlib.ExitStack) -> tuple[Any, Any]:
    """A new run from a config file, flags and ``-o`` options (flags win over the file).

    The run folder is made and locked (on ``owned``) before its files are written; if the
    start fails, a folder it made is removed again.
    """
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.session import start_run

    config, run = _new_config(game, run_dir, config_file, extra_options, flags)
    owned.enter_context(run.locked(create=True))
    return start_run(config, run), run


def _new_config(game: str | None, run_dir: Path | None, config_file: Path | None,
                extra_options: tuple[str, ...], flags: dict[str, Any]) -> tuple[Any, Any]:
    """A new run's config from a config file, flags and ``-o`` options, and its folder."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.runs import RunDir
    from ..train.session import load_config_file, make_config

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
    return config, RunDir(run_dir or Path("runs") /
                          f"{config.game}-{config.algorithm}-seed{config.seed}")


def _report(session: Any, run: Any, max_minutes: float | None) -> None:
    """The last line of ``train``: done, stopped by the budget, or interrupted (exit 130)."""
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
    metrics = run.read_metrics()
    if metrics:
        click.echo(f"done: {session.iteration} iterations; last pre-adaptation return "
                   f"{metrics[-1]['pre_return']:.3f}, post-adaptation "
                   f"{metrics[-1]['post_return']:.3f}; checkpoint {run.checkpoint_path}")


def train_with_progress(session: Any, run: Any, why: str | None = None,
                        max_minutes: float | None = None) -> Any:
    """Train ``session`` with a progress line; Ctrl-C stops it at an iteration boundary.

    The process is tuned for training first (torch threads, malloc: see train.tuning).
    """
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.distributed import leave, lost_peer, lost_peer_error
    from ..train.trainer import train
    from ..train.tuning import tune_process

    config = session.config
    world = session.world
    echo = click.echo if session.writer else (lambda *args, **kwargs: None)  # rank 0 speaks
    processes = f", {world.size} processes ({world.backend})" if world is not None else ""
    echo(f"training {config.algorithm} on {config.game} ({config.meta_batch} tasks x "
         f"{config.envs_per_task} episodes per iteration, device {session.device}{processes}) "
         f"in {run.path}" + (f": {why}" if why else ""), err=True)
    if session.iteration >= config.iterations:
        echo(f"{run.path} has already reached {config.iterations} iterations", err=True)
        return session
    tune_process(session.device)
    progress = TrainProgress(session.iteration, config.iterations,
                             budget_seconds=None if max_minutes is None else max_minutes * 60) \
        if session.writer else None

    def on_ctrl_c() -> None:
        echo("\nCtrl-C: stopping after this iteration (Ctrl-C again to stop now) ...", err=True)

    with DeferredInterrupt(on_ctrl_c) as interrupt:
        try:
            train(session, run, progress=progress, should_stop=stop_check(interrupt, max_minutes))
        except RuntimeError as exc:  # a collective failed: another rank died
            if world is None or not lost_peer_error(exc):
                raise
            raise lost_peer(world, exc, f"gameadapt train --resume {shlex.quote(str(run.path))}"
                            ) from None
        finally:
            if progress is not None:
                progress.close()
            leave(world)
    return session


@click.command("evaluate")
@click.argument("run_path", metavar="RUN", type=InputPath(file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--tasks", type=click.IntRange(max=MAX_TASKS), default=40, show_default=True,
              help="Variants per seed.")
@click.option("--episodes", type=click.IntRange(max=MAX_EPISODES), default=20, show_default=True,
              help="Episodes per variant, before and after adaptation.")
@click.option("--steps", default="0,1,3", show_default=True,
              help="Inner step counts of the gradient methods' per-step columns.")
@click.option("--budgets", default="0,1,2,5,20", show_default=True,
              help="Episodes of experience n on the experience axis (the return of episode "
                   "n+1 is measured); the run's episodes per task is always added.")
@click.option("--trials", type=click.IntRange(max=MAX_TRIALS), default=5, show_default=True,
              help="Independent trials per variant on the experience axis.")
@click.option("--compare", "compare", multiple=True,
              type=InputPath(file_okay=False, path_type=Path), metavar="RUN",
              help="Another run of the same game to evaluate beside this one (repeatable), "
                   "e.g. an rl2 run against a maml run.")
@click.option("--baselines", default="pretrain,scratch", show_default=True,
              help="Comma-separated baselines given the same data ('' for none).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Evaluation seeds.")
@click.option("--plot", type=OutputPath(folder=False, suffix=".png"),
              help="Also save a PNG: return vs adaptation steps.")
@click.option("--variant", "-v", "fixed", multiple=True, metavar="KEY=VALUE",
              help="Fix a parameter in every evaluated variant (repeatable), e.g. "
                   "-v rules.opponent=mirroring.")
@json_option
@memory_option
def evaluate_command(run_path: Path, split: str, tasks: int, episodes: int, steps: str,
                     budgets: str, trials: int, compare: tuple[Path, ...], baselines: str,
                     seeds: str, plot: Path | None, fixed: tuple[str, ...],
                     as_json: bool) -> None:
    """How well the agent plays held-out variants after n episodes on them, vs baselines.

    Greedy (what a game playing the exported `action` gets) and sampled, with the success
    rate and the game's reference policy where the game defines them.
    """
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.evaluate import EvalSettings, evaluate_run
    from ..train.memory import check_evaluation_resources
    from ..train.report import format_results, plot_results, require_pyplot
    from ..train.runs import RunDir
    from ..train.session import check_run_providers, run_train_config
    from ..train.tuning import tune_process

    if plot is not None:
        require_pyplot()
    settings = EvalSettings(as_split(split), tasks, episodes,
                            int_list(steps, "steps", None, MAX_INNER_STEPS),
                            int_list(seeds, "seeds"), tuple(fixed),
                            int_list(budgets, "budgets", None, MAX_BUDGET), trials)
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    for name in names:
        get_registry().algorithm(name)
    run = RunDir(run_path)
    config = run_train_config(run)
    check_run_providers(run, config)  # a missing plugin is named before its game is looked up
    check_evaluation_resources(config, settings)

    def train_baseline(session: Any, baseline_run: Any, reason: str) -> Any:
        why = (f"the {session.config.algorithm} baseline is trained with the run's settings on "
               f"the same variants, for comparison; {reason}")
        return train_with_progress(session, baseline_run, why)

    tune_process(config.device)
    result = evaluate_run(run_path, settings, names,
                          progress=lambda m: click.echo(f"evaluating {m} ...", err=True),
                          train_baseline=train_baseline, compare=compare)
    if plot is not None:
        plot_results(result, plot)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_results(result))
        if plot is not None:
            click.echo(f"plot: {plot}")


@click.command("latents")
@click.argument("run_path", metavar="RUN", type=InputPath(file_okay=False, path_type=Path))
@click.option("--plot", type=OutputPath(folder=False, suffix=".png"), required=True,
              help="The PNG to write.")
@click.option("--tasks", type=click.IntRange(max=MAX_TASKS), default=120, show_default=True,
              help="Variants to place.")
@click.option("--episodes", type=click.IntRange(max=MAX_EPISODES), default=1, show_default=True,
              help="Episodes on each variant before its posterior is read.")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--color", metavar="PART.PARAM",
              help="Colour by this variant parameter (default: the game's task label).")
@json_option
def latents_command(run_path: Path, plot: Path, tasks: int, episodes: int, split: str,
                    seed: int, color: str | None, as_json: bool) -> None:
    """Picture a context run's learnt task space: the posterior means of held-out variants
    after a few episodes, in two dimensions (PCA), coloured by what tells them apart."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..train.latents import latent_map, plot_latent_map
    from ..train.report import require_pyplot

    pyplot = require_pyplot()
    data = latent_map(run_path, tasks, episodes, seed, as_split(split), color)
    plot_latent_map(data, plot, pyplot)
    if as_json:
        echo_json(dataclasses.asdict(data))
    else:
        click.echo(data.summary())
        click.echo(f"plot: {plot}")
