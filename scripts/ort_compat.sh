#!/usr/bin/env bash
# Old-ONNX-Runtime compatibility check (CI; README "Older ONNX Runtimes").
# Usage: bash scripts/ort_compat.sh [PYTHON]   (PYTHON: one with gameadapt installed)
#   1. tiny fresh runs (maml on gridnav and pointnav, rl2 on pointnav, context on gridnav),
#      each exported at the default opset and at --opset 15 (maml: --with-adapter
#      --quantize int8, and --target godot): every kind of file;
#   2. their inputs and outputs recorded with the current ONNX Runtime;
#   3. in a virtual environment of its own with onnxruntime==$GAMEADAPT_OLD_ORT (default
#      1.15.1) and numpy<2, every file loaded and its outputs compared
#      (scripts/ort_compat_check.py: a table; a non-zero exit on any failure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-${PYTHON:-$ROOT/.venv/bin/python}}"
OLD="${GAMEADAPT_OLD_ORT:-1.15.1}"
OLD_VENV="$ROOT/.ci-venv-ort-$OLD"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export GAMEADAPT_TORCH_THREADS="${GAMEADAPT_TORCH_THREADS:-1}"
started=$SECONDS
tiny=(--iterations 1 --meta-batch 2 --envs-per-task 2 --device cpu)

echo "==> ort compat: a virtual environment with onnxruntime==$OLD"
rm -rf "$OLD_VENV"
"$PY" -m venv "$OLD_VENV"
"$OLD_VENV/bin/python" -m pip install -q "onnxruntime==$OLD" "numpy<2" 2>&1 \
  | grep -v "is ignored: it is neither" || true
"$OLD_VENV/bin/python" -c "import onnxruntime" # fail here if the install did not work

echo "==> ort compat: tiny runs and their exports (default opset and --opset 15)"
train() {  # NAME GAME ALGO
  "$PY" -m gameadapt train "$2" --algo "$3" "${tiny[@]}" --run-dir "$WORK/runs/$1" > /dev/null
}
export_both() {  # NAME [EXPORT OPTIONS...]
  local name="$1"; shift
  "$PY" -m gameadapt export "$WORK/runs/$name" -o "$WORK/exports/$name-default" "$@" > /dev/null
  "$PY" -m gameadapt export "$WORK/runs/$name" -o "$WORK/exports/$name-opset15" --opset 15 \
    "$@" > /dev/null
}
train grid-maml gridnav maml
train point-maml pointnav maml
train point-rl2 pointnav rl2
train grid-context gridnav context
export_both grid-maml --with-adapter --quantize int8
export_both point-maml --with-adapter --quantize int8
export_both point-rl2
export_both grid-context
for name in grid-maml point-maml; do  # godot.onnx: what Godot RL Agents (ORT 1.15.1) loads
  "$PY" -m gameadapt export "$WORK/runs/$name" -o "$WORK/exports/$name-godot" --target godot \
    > /dev/null
  "$PY" -m gameadapt export "$WORK/runs/$name" -o "$WORK/exports/$name-godot15" \
    --target godot --opset 15 > /dev/null
done

echo "==> ort compat: outputs with the current ONNX Runtime, then with $OLD"
"$PY" "$ROOT/scripts/ort_compat_check.py" record "$WORK/exports"
"$OLD_VENV/bin/python" "$ROOT/scripts/ort_compat_check.py" compare "$WORK/exports"
echo "==> ort compat passed ($((SECONDS - started)) s)"
