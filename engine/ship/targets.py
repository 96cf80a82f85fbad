"""``gameadapt export --target``: the runtime a game loads the export with, and what it needs.

A target names a runtime instead of its knobs: it fixes the opset (unless ``--opset`` agrees
with it), says whether an int8 copy is allowed, and which extra file or check it adds. Pure
Python (the CLI reads it without torch). What each one was verified with is in
``exports/README.md``, "Which target?".

- ``ort``: ONNX Runtime (C, C++, C#, Java, Python, Node) 1.15.1 and later; any ``--opset``
  (default 18), every optional file.
- ``sentis``: Unity Sentis 1.3-2.1 / Inference Engine 2.2-2.4: opset 15, only the operators
  every one of those importers converts (:mod:`~gameadapt.ship.sentis`), and no int8 graph
  (Sentis quantises the weights itself at import).
- ``godot``: Godot RL Agents' C# loader (Microsoft.ML.OnnxRuntime 1.15.1): ``godot.onnx``
  beside ``policy.onnx``, with the input and output names that loader reads
  (:mod:`~gameadapt.ship.godot`); stateless policies only, since that loader never feeds a
  state back.
- ``web``: onnxruntime-web (WASM) in a browser, as the playground runs it: opset 18, float32
  graphs only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GameadaptError
from .formats import DEFAULT_OPSET, GODOT_FILE, ORT_CHECKED_OPSETS


@dataclass(frozen=True)
class Target:
    """One ``--target``: its runtime, its opset, and what it allows."""

    name: str
    runtime: str
    opset: int | None  # the one opset it takes; None: any --opset
    opsets: tuple[int, ...] = ()  # the opsets it accepts (empty: any)
    int8: str = ""  # why --quantize int8 is refused ("" if allowed)
    stateless_only: str = ""  # why recurrent and context policies are refused ("" if not)
    extra_file: str | None = None  # a file only this target writes


SENTIS_INT8 = ("Sentis cannot import int8 graphs (DynamicQuantizeLinear and MatMulInteger are "
               "in none of its importers); export float32 and let Sentis quantise the weights "
               "at import (ModelQuantizer.QuantizeWeights with QuantizationType.Uint8 or "
               "Float16)")
GODOT_STATELESS = ("Godot RL Agents' loader never feeds a state back (it sends a constant "
                   "state_ins and drops state_outs), so {what} would forget what it learnt "
                   "about the level at every step; export with --target ort and carry the "
                   "state in your own C# as exports/README.md shows")
WEB_INT8 = ("the browser target ships float32 graphs only (the int8 copy is not verified in "
            "onnxruntime-web, and these policies are a few KiB); export without --quantize")

TARGETS = {
    "ort": Target("ort", "ONNX Runtime 1.15.1+", None),
    "sentis": Target("sentis", "Unity Sentis 1.3-2.1 / Inference Engine 2.2-2.4", 15, (15,),
                     int8=SENTIS_INT8),
    "godot": Target("godot", "Godot RL Agents (ONNX Runtime 1.15.1)", DEFAULT_OPSET,
                    ORT_CHECKED_OPSETS, stateless_only=GODOT_STATELESS, extra_file=GODOT_FILE),
    "web": Target("web", "onnxruntime-web (WASM)", DEFAULT_OPSET, (DEFAULT_OPSET,),
                  int8=WEB_INT8),
}
TARGET_NAMES = tuple(TARGETS)
DEFAULT_TARGET = "ort"


def get_target(name: str) -> Target:
    """The target called ``name`` (a one-line error for any other)."""
    if name not in TARGETS:
        raise GameadaptError(f"--target must be one of {', '.join(TARGET_NAMES)}, got {name!r}")
    return TARGETS[name]


def resolve_opset(target: Target, opset: int | None) -> int:
    """The opset to export at: ``--opset`` if the target accepts it, else the target's."""
    if opset is None:
        return target.opset or DEFAULT_OPSET
    if target.opsets and opset not in target.opsets:
        accepted = " or ".join(map(str, target.opsets))
        raise GameadaptError(f"--target {target.name} exports at opset {accepted} "
                             f"({target.runtime}); drop --opset {opset}")
    return opset


def check_target(target: Target, quantize: str | None, family: str, algorithm: str) -> None:
    """One-line errors for what the target cannot take (before anything is built)."""
    if quantize and target.int8:
        raise GameadaptError(f"--target {target.name} --quantize {quantize}: {target.int8}")
    if target.stateless_only and family in ("recurrent", "context"):
        what = (f"an {algorithm!r} policy, which adapts in its recurrent state"
                if family == "recurrent" else
                f"a {algorithm!r} policy, which adapts in its task posterior")
        raise GameadaptError(f"--target {target.name}: "
                             + target.stateless_only.format(what=what))
