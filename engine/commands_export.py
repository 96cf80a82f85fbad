"""``gameadapt export``: ship a run or an adapted policy as verified ONNX (see gameadapt.export).

Importing this module is cheap (it is imported by :mod:`gameadapt.cli`): torch, onnx and
onnxruntime load inside the command. The option limits below repeat
:mod:`gameadapt.export`'s (a test keeps them equal).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .export import ExportResult

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 7, 21
QUANTIZE_TYPES = ("int8",)
MANIFEST_FILE = "policy.json"


@click.command("export")
@click.argument("source", metavar="RUN|ADAPTED", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default exports/GAME-NAME, NAME the run or adapted folder).")
@click.option("--opset", type=click.IntRange(MIN_OPSET, MAX_OPSET), default=DEFAULT_OPSET,
              show_default=True, help="ONNX opset to target (Unity Sentis reads up to 15).")
@click.option("--quantize", type=click.Choice(QUANTIZE_TYPES),
              help="Also write policy.int8.onnx (dynamic int8 quantisation), verified.")
@click.option("--with-adapter", is_flag=True,
              help="Also write adapter.onnx (the inner adaptation step), policy_weights.onnx "
                   "and weights.bin, for adapting on the device.")
@click.option("--force", is_flag=True, help="Replace an existing export in the output folder.")
def export_command(source: Path, out_dir: Path | None, opset: int, quantize: str | None,
                   with_adapter: bool, force: bool) -> None:
    """Export a run or an adapted policy as ONNX + policy.json, verified with ONNX Runtime."""
    from .export import export_policy

    result = export_policy(source, out_dir, opset=opset, quantize=quantize,
                           with_adapter=with_adapter, force=force,
                           log=lambda message: click.echo(message, err=True))
    click.echo(format_result(result))


def _diffs(values: dict[str, Any]) -> str:
    return ", ".join(f"{name} {value:.2g}" for name, value in values.items())


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
    check = manifest["verification"]
    lines.append(f"verification: ONNX Runtime vs PyTorch on {check['samples']} observations: "
                 f"max abs diff {_diffs(check['max_abs_diff'])} (tolerance "
                 f"{check['tolerance']:g}) passed")
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
    quantization = manifest.get("quantization")
    if quantization:
        q_latency = quantization["latency_us"]
        agreement = (f", action agreement {quantization['action_agreement']:.1%}"
                     if "action_agreement" in quantization else "")
        lines.append(f"int8: {quantization['file']} max abs diff "
                     f"{_diffs(quantization['max_abs_diff'])} (tolerance "
                     f"{_diffs(quantization['tolerance'])}){agreement}; latency batch 1 "
                     f"{q_latency['batch_1']:.1f} us, batch 64 {q_latency['batch_64']:.1f} us")
    return "\n".join(lines)
