"""Old-ONNX-Runtime compatibility check of export folders (numpy and onnxruntime only).

    python ort_compat_check.py record  EXPORTS   # with the current ONNX Runtime
    python ort_compat_check.py compare EXPORTS   # with the old one, in its own environment

``EXPORTS`` holds export folders (``policy.json`` and its ``.onnx`` files). ``record`` feeds
every graph fixed inputs (uniform(0, 1) floats, int64 zeros, ``inner_lr`` 0.1; a dynamic
dimension is 5) and saves inputs and outputs next to it (``<file>.ortcheck.npz``).
``compare`` loads every file in this interpreter's ONNX Runtime, runs the recorded inputs and
compares: float outputs within TOLERANCE (max abs diff), integer outputs equal; it prints a
table and exits 1 if any file fails to load, differs, or lacks the ``gameadapt.role``
metadata. Used by ``scripts/ort_compat.sh``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-5
BATCH = 5
SUFFIX = ".ortcheck.npz"


def session(path: Path) -> Any:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds_for(sess: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed inputs for every input of ``sess``."""
    generator = np.random.default_rng(seed)
    feeds = {}
    for value in sess.get_inputs():
        shape = [dim if isinstance(dim, int) else BATCH for dim in value.shape]
        if value.type == "tensor(int64)":
            feeds[value.name] = np.zeros(shape, np.int64)
        elif value.name == "inner_lr":
            feeds[value.name] = np.asarray(0.1, np.float32)
        else:
            feeds[value.name] = generator.random(shape).astype(np.float32)
    return feeds


def graphs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``.onnx`` file under ``root`` with its manifest entry."""
    found = []
    for manifest_path in sorted(root.glob("*/policy.json")):
        files = json.loads(manifest_path.read_text())["files"]
        for name, entry in sorted(files.items()):
            if name.endswith(".onnx"):
                found.append((manifest_path.parent / name, entry))
    return found


def record(root: Path) -> int:
    for path, _ in graphs(root):
        sess = session(path)
        feeds = feeds_for(sess)
        names = [out.name for out in sess.get_outputs()]
        outputs = dict(zip(names, sess.run(names, feeds)))
        np.savez(str(path) + SUFFIX, **{f"in.{k}": v for k, v in feeds.items()},
                 **{f"out.{k}": v for k, v in outputs.items()})
    return 0


def max_diff(want: np.ndarray, have: np.ndarray) -> float:
    if want.shape != have.shape:
        return float("inf")
    if np.issubdtype(want.dtype, np.integer):
        return 0.0 if np.array_equal(want, have) else float("inf")
    return float(np.abs(want.astype(np.float64) - have.astype(np.float64)).max(initial=0.0))


def kind(metadata: dict[str, str]) -> str:
    """The file's kind from its metadata: its role, and the family of a policy."""
    role = json.loads(metadata.get("gameadapt.role", '"?"'))
    if json.loads(metadata.get("gameadapt.state_size", "null")) is not None:
        return f"{role} (recurrent)"
    if json.loads(metadata.get("gameadapt.latent_size", "null")) is not None:
        return f"{role} (context)"
    return role


def check_one(path: Path) -> tuple[str, float, str]:
    """``(kind, max abs diff, problem or "")`` of one file in this ONNX Runtime."""
    try:
        sess = session(path)
    except Exception as exc:  # noqa: BLE001 - any load failure is the finding
        return "?", float("inf"), str(exc).splitlines()[0][:120]
    metadata = sess.get_modelmeta().custom_metadata_map
    if "gameadapt.role" not in metadata:
        return "?", float("inf"), "no gameadapt.role metadata"
    saved = np.load(str(path) + SUFFIX)
    feeds = {k[3:]: saved[k] for k in saved.files if k.startswith("in.")}
    names = [k[4:] for k in saved.files if k.startswith("out.")]
    outputs = dict(zip(names, sess.run(names, feeds)))
    worst = max((max_diff(saved[f"out.{n}"], outputs[n]) for n in names), default=0.0)
    return kind(metadata), worst, "" if worst <= TOLERANCE else f"differs by {worst:.3g}"


def compare(root: Path) -> int:
    print(f"ONNX Runtime {ort.__version__} vs the recorded outputs (tolerance {TOLERANCE:g} "
          f"max abs diff; integer outputs equal)")
    print(f"{'export / file':40} {'kind':22} {'opset':>5} {'IR':>3} {'max abs diff':>12}  "
          f"passed")
    failures = 0
    for path, entry in graphs(root):
        what, diff, problem = check_one(path)
        failures += bool(problem)
        print(f"{path.parent.name + '/' + path.name:40} {what:22} {entry['opset']:>5} "
              f"{entry['ir_version']:>3} {diff:>12.3g}  {'no: ' + problem if problem else 'yes'}")
    count = len(graphs(root))
    print(f"{count - failures} of {count} files passed")
    return 1 if failures or not count else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("record", "compare"):
        sys.exit(__doc__)
    sys.exit({"record": record, "compare": compare}[sys.argv[1]](Path(sys.argv[2])))
