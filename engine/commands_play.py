"""``gameadapt adapt`` and ``gameadapt play`` (imported by :mod:`gameadapt.cli`).

Importing this module is cheap: torch (adapt) and onnxruntime (play) load inside the
commands, and ``play`` never imports torch at all.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli import with_variant_options
from .errors import GameadaptError
from .registry import get_registry


@click.command("adapt")
@click.argument("source", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@with_variant_options
@click.option("--episodes", type=click.IntRange(min=1), default=20, show_default=True,
              help="Episodes of the target variant to adapt on (K).")
@click.option("--steps", type=click.IntRange(min=1),
              help="Inner adaptation steps (default: the run's inner_steps).")
@click.option("--eval-episodes", type=click.IntRange(min=1), default=20, show_default=True,
              help="Fresh episodes that measure the return before and after.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("-o", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the adapted policy to (must not exist).")
def adapt_command(source: Path, assignments: tuple[str, ...], variant_file: Path | None,
                  episodes: int, steps: int | None, eval_episodes: int, seed: int,
                  out_dir: Path) -> None:
    """Adapt a meta-trained RUN to one variant and save the adapted policy to OUT."""
    from .adapt import adapt_policy
    from .artifacts import load_policy_source

    if not assignments and variant_file is None:
        raise GameadaptError("give the target variant with --variant KEY=VALUE or --variant-file")
    if out_dir.exists():
        raise GameadaptError(f"{out_dir} already exists; adapt never overwrites, choose another -o")
    loaded = load_policy_source(source)
    space = loaded.spec.variant_space
    base = space.load_file(variant_file) if variant_file is not None else loaded.variant
    variant = space.parse_assignments(assignments, base)
    click.echo(f"adapting {source} to {variant} ({episodes} episodes) ...", err=True)
    result = adapt_policy(loaded, variant, out_dir, episodes=episodes, steps=steps, seed=seed,
                          eval_episodes=eval_episodes)
    steps_done = result.provenance["adapted"]["steps"]
    click.echo(f"return on this variant ({eval_episodes} fresh episodes): before "
               f"{result.return_before:.3f}, after {steps_done} step(s) "
               f"{result.return_after:.3f}")
    click.echo(f"adapted policy: {out_dir}")


@click.command("play")
@click.argument("policy_dir", metavar="POLICY_DIR",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--game", help="Game to play (default: the policy's); must match the policy.")
@with_variant_options
@click.option("--episodes", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Episode i is reset with seed SEED + i.")
@click.option("--render", is_flag=True, help="Print every frame as text.")
@click.option("--sample", is_flag=True,
              help="Draw actions from the policy's distribution instead of the greedy action.")
@click.option("--adapt-online", is_flag=True,
              help="Adapt with adapter.onnx after every episode (needs --with-adapter); "
                   "implies --sample, as a policy gradient needs exploration.")
def play_command(policy_dir: Path, game: str | None, assignments: tuple[str, ...],
                 variant_file: Path | None, episodes: int, seed: int, render: bool,
                 sample: bool, adapt_online: bool) -> None:
    """Play an exported policy with ONNX Runtime only (no torch), greedily by default."""
    from .play import load_policy, play

    policy = load_policy(policy_dir)
    registry = get_registry()
    if game is None or game == policy.game:
        registry.check_providers(policy.manifest.get("providers"), {"game": policy.game},
                                 f"export {policy_dir}")
    spec = registry.game(game or policy.game)
    if policy.game != spec.id:
        raise GameadaptError(f"{policy_dir} is a policy for game {policy.game!r}, not {spec.id!r}")
    base = (spec.variant_space.load_file(variant_file) if variant_file is not None
            else spec.variant_space.validate(policy.variant))
    variant = spec.variant_space.parse_assignments(assignments, base)
    play(policy, spec, variant, episodes=episodes, seed=seed, render=render, sample=sample,
         adapt_online=adapt_online, echo=click.echo)
