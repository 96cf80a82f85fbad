"""``gameadapt adapt``, ``export`` and ``play``: the shipping commands.

Importing this module is cheap: torch (adapt, export) and onnxruntime (play, export) load
inside the commands, and ``play`` never imports torch at all.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import GameadaptError
from ..host.registry import get_registry
from ..limits import MAX_EPISODES, MAX_INNER_STEPS
from ..locks import lock_output
from ..ship.formats import (
    ACTION_MODES,
    DEFAULT_OPSET,
    LATENT_MODES,
    MANIFEST_FILE,
    MAX_OPSET,
    MIN_OPSET,
    QUANTIZE_TYPES,
)
from ..ship.targets import DEFAULT_TARGET, TARGET_NAMES
from .options import SEED, InputPath, OutputPath, with_variant_options

if TYPE_CHECKING:
    from ..ship.export import ExportResult


@click.command("adapt")
@click.argument("source", metavar="RUN", type=InputPath(file_okay=False, path_type=Path))
@with_variant_options
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=20, show_default=True,
              help="Episodes of the target variant to adapt on (K).")
@click.option("--steps", type=click.IntRange(1, MAX_INNER_STEPS),
              help="Inner adaptation steps (default: the run's inner_steps).")
@click.option("--eval-episodes", type=click.IntRange(1, MAX_EPISODES), default=20,
              show_default=True, help="Fresh episodes that measure the return before and after.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("-o", "--out", "out_dir", required=True, type=OutputPath(folder=True),
              help="Folder to write the adapted policy to (must not exist).")
def adapt_command(source: Path, assignments: tuple[str, ...], variant_file: Path | None,
                  episodes: int, steps: int | None, eval_episodes: int, seed: int,
                  out_dir: Path) -> None:
    """Adapt a meta-trained RUN to one variant and save the adapted policy to OUT."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..ship.adapt import adapt_policy, check_adaptable
    from ..ship.sources import load_policy_source

    if not assignments and variant_file is None:
        raise GameadaptError("give the target variant with --variant KEY=VALUE or --variant-file")
    if out_dir.exists():
        raise GameadaptError(f"{out_dir} already exists; adapt never overwrites, choose another -o")
    with lock_output(out_dir, "gameadapt adapt"):  # one adapt at a time writes OUT
        loaded = load_policy_source(source)
        check_adaptable(loaded)
        space = loaded.spec.variant_space
        base = space.load_file(variant_file) if variant_file is not None else loaded.variant
        variant = space.parse_assignments(assignments, base)
        click.echo(f"adapting {source} to {variant} ({episodes} episodes) ...", err=True)
        result = adapt_policy(loaded, variant, out_dir, episodes=episodes, steps=steps,
                              seed=seed, eval_episodes=eval_episodes)
    steps_done = result.provenance["adapted"]["steps"]
    click.echo(f"mean return on this variant ({eval_episodes} fresh episodes each):")
    for mode in ("sampled", "greedy"):
        click.echo(f"  {mode + ':':8} before {result.before[mode].mean_return:.3f}, after "
                   f"{steps_done} step(s) {result.after[mode].mean_return:.3f}")
    success = result.provenance["adapted"]["success"]
    if success is not None:
        means = f" ({success['means']})" if success["means"] else ""
        click.echo(f"success rate{means}: " + ", ".join(
            f"{mode} {success[mode]['before']:.0%} -> {success[mode]['after']:.0%}"
            for mode in ("sampled", "greedy")))
    click.echo(f"adapted policy: {out_dir}")


@click.command("play")
@click.argument("policy_dir", metavar="POLICY_DIR",
                type=InputPath(file_okay=False, path_type=Path))
@click.option("--game", help="Game to play (default: the policy's); must match the policy.")
@with_variant_options
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=5, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True,
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
    # onnxruntime loads here, when the command runs: gameadapt --help stays torch-free
    from ..ship.play import load_policy, play

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


@click.command("export")
@click.argument("source", metavar="RUN|ADAPTED", type=InputPath(path_type=Path))
@click.option("-o", "--out", "out_dir", type=OutputPath(folder=True),
              help="Output folder (default exports/GAME-NAME, NAME the run or adapted folder).")
@click.option("--target", type=click.Choice(TARGET_NAMES), default=DEFAULT_TARGET,
              show_default=True,
              help="The runtime the game loads it with: ort (ONNX Runtime 1.15.1+), sentis "
                   "(Unity Sentis / Inference Engine: opset 15, its operators, no int8), godot "
                   "(also godot.onnx for Godot RL Agents; stateless policies) or web "
                   "(onnxruntime-web). See exports/README.md, 'Which target?'.")
@click.option("--opset", type=click.IntRange(MIN_OPSET, MAX_OPSET),
              help=f"ONNX opset (default: the target's; {DEFAULT_OPSET}, sentis 15).")
@click.option("--quantize", type=click.Choice(QUANTIZE_TYPES),
              help="Also write policy.int8.onnx (dynamic int8 quantisation), verified.")
@click.option("--with-adapter", is_flag=True,
              help="Also write adapter.onnx (the inner adaptation step), policy_weights.onnx "
                   "and weights.bin, for adapting on the device.")
@click.option("--action", "action", type=click.Choice(ACTION_MODES),
              help="What policy.onnx's action output is: greedy, or sampled from the policy "
                   "with a 'noise' input of uniform numbers the game fills (default: the "
                   "one measured better for the run's family and action kind).")
@click.option("--latent", "latent", type=click.Choice(LATENT_MODES),
              help="A context-family policy only: the z the game makes from the posterior "
                   "(before every step, or at each episode's start: the run's z_update), "
                   "its mean or a draw with normals fixed per episode (default: mean).")
@click.option("--force", is_flag=True, help="Replace an existing export in the output folder.")
def export_command(source: Path, out_dir: Path | None, target: str, opset: int | None,
                   quantize: str | None, with_adapter: bool, action: str | None,
                   latent: str | None, force: bool) -> None:
    """Export a run or an adapted policy as ONNX + policy.json, verified with ONNX Runtime."""
    # torch loads here, when the command runs: gameadapt --help stays torch-free
    from ..ship.export import export_lock, export_policy

    # -o known: own it before the source loads (export_policy takes the same lock again)
    with export_lock(out_dir) if out_dir is not None else contextlib.nullcontext():
        result = export_policy(source, out_dir, opset=opset, quantize=quantize,
                               with_adapter=with_adapter, force=force, action=action,
                               latent=latent, target=target,
                               log=lambda message: click.echo(message, err=True))
    click.echo(format_result(result))


def _diffs(values: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value:.2g}" for name, value in values.items())


def _verification_lines(check: dict[str, Any]) -> list[str]:
    """What ``policy.onnx``'s verification found (a recurrent or context one: per part)."""
    kind = check.get("kind")
    if kind not in ("recurrent", "context"):
        return [f"verification: ONNX Runtime vs PyTorch on {check['samples']} observations: "
                f"max abs diff {_diffs(check['max_abs_diff'])} (tolerance "
                f"{check['tolerance']:g}) passed"]
    if kind == "recurrent":
        scaled = f"value: {check['value_tolerance']}"
        carried = "the state carried, ONNX Runtime fed its own state_out"
        randomised = "states and inputs"
    else:
        scaled = f"{', '.join(check['scaled_tolerance']['outputs'])}: " \
                 f"{check['scaled_tolerance']['rule']}"
        carried = (f"the posterior's sums carried (latent {check['latent']}, z_update "
                   f"{check.get('z_update', 'episode')}), ONNX Runtime fed its own sums and z")
        randomised = "z, actions, rewards and sums"
    lines = [f"verification: ONNX Runtime vs PyTorch, {kind}, tolerance "
             f"{check['tolerance']:g} ({scaled}): max abs diff "
             f"{_diffs(check['max_abs_diff'])} passed",
             f"  {check['episodes']} episodes ({check['steps']} steps) with {carried}: "
             f"{_diffs(check['sequence']['max_abs_diff'])}",
             f"  the same steps as one batch of {check['sequence_batched']['batch_size']}: "
             f"{_diffs(check['sequence_batched']['max_abs_diff'])}"]
    if kind == "context":
        incremental = check["incremental_vs_batch"]
        steps = f", before {incremental['steps']} steps" if incremental.get("steps") else ""
        lines.append(f"  encoder.onnx step by step vs the batch posterior (sums at "
                     f"{incremental['episode_starts']} episode starts{steps} and the end): "
                     f"{_diffs(incremental['max_abs_diff'])}")
    return lines + [f"  {check['samples']} observations with random {randomised} (batch "
                    f"{', '.join(map(str, check['batch_sizes']))}): "
                    f"{_diffs(check['random_inputs']['max_abs_diff'])}"]


def format_result(result: ExportResult) -> str:
    """The summary ``gameadapt export`` prints."""
    manifest = result.manifest
    lines = [f"exported {manifest['game']} policy ({manifest['source']['kind']} "
             f"{manifest['source']['path']}) to {result.out_dir}"]
    for name, entry in manifest["files"].items():
        took = result.seconds.get(name)
        details = [f"{entry['bytes'] / 1024:.1f} KiB"]
        if "opset" in entry:
            details.insert(0, f"opset {entry['opset']}")
        if took is not None:
            details.append(f"exported in {took:.1f} s")
        lines.append(f"  {result.out_dir / entry['path']}  ({', '.join(details)})")
    lines.append(f"  {result.out_dir / MANIFEST_FILE}  (manifest)")
    lines.append(f"action: {manifest.get('action_mode', 'greedy')}"
                 + (" (fill the 'noise' input with uniform(0, 1) numbers every call)"
                    if manifest.get("noise") else ""))
    context = manifest.get("context")
    if context:
        made = ("before every step" if context.get("z_update") == "step" else
                "once per episode")
        lines.append(f"latent: {context['latent_mode']} ({context['z']['formula']}, {made}; "
                     f"the sums reset at a new level only)")
    lines += _verification_lines(manifest["verification"])
    check = manifest["verification"]
    if "policy_weights" in check:
        lines.append(f"  policy_weights.onnx + weights.bin: max abs diff "
                     f"{_diffs(check['policy_weights']['max_abs_diff'])} passed")
    if "adapter" in check:
        adapter = check["adapter"]
        worst = max(adapter["max_abs_diff"].values(), default=0.0)
        lines.append(f"  adapter.onnx vs the engine's inner step (N={adapter['samples']}, "
                     f"inner_lr {adapter['inner_lr']:g}): max abs diff {worst:.2g}; adapted "
                     f"policy {_diffs(adapter['adapted_policy_max_abs_diff'])} passed")
    latency = manifest["latency_us"]
    lines.append(f"latency (ONNX Runtime CPU, 1 thread, median): batch 1 {latency['batch_1']:.1f} "
                 f"us, batch 64 {latency['batch_64']:.1f} us")
    if "encoder" in latency:
        lines.append(f"  encoder.onnx: batch 1 {latency['encoder']['batch_1']:.1f} us, batch 64 "
                     f"{latency['encoder']['batch_64']:.1f} us")
    return "\n".join(lines + _target_lines(manifest))


def _target_lines(manifest: dict[str, Any]) -> list[str]:
    """What the int8 check and the target's own checks found."""
    lines = []
    quantization = manifest.get("quantization")
    if quantization and quantization.get("passed"):
        q_latency = quantization["latency_us"]
        agreement = (f", action agreement {quantization['action_agreement']:.1%}"
                     if "action_agreement" in quantization else "")
        lines.append(f"int8: {quantization['file']} max abs diff "
                     f"{_diffs(quantization['max_abs_diff'])} (tolerance "
                     f"{_diffs(quantization['tolerance'])}){agreement}; latency batch 1 "
                     f"{q_latency['batch_1']:.1f} us, batch 64 {q_latency['batch_64']:.1f} us")
    elif quantization:
        lines.append(f"int8: not written ({quantization.get('failure', 'mismatch')})")
    target = manifest.get("target") or {"name": "ort", "runtime": "ONNX Runtime"}
    lines.append(f"target: {target['name']} ({target['runtime']})")
    godot = manifest["verification"].get("godot")
    if godot:
        lines.append(f"  godot.onnx (obs, state_ins -> output: {godot['output']}, state_outs) "
                     f"as Godot RL Agents calls it vs PyTorch: max abs diff "
                     f"{_diffs(godot['max_abs_diff'])} passed")
    if "sentis" in target:
        lines.append(f"  every graph uses only operators all Sentis importers 1.3-2.4 convert "
                     f"({len(target['sentis']['operators'])} op types)")
    return lines
