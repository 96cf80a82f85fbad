#!/usr/bin/env bash
# Create .venv (if needed) and install gameadapt into it, editable.
# Usage: source scripts/setup.sh [EXTRA]   e.g. EXTRA=test
# torch is pinned to the 2.13.0 CPU build first, so pip never pulls a multi-GB CUDA build;
# pyproject.toml states the range the code supports.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GAMEADAPT_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRA="${1:-}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {  # pip install, without the noise of index locations that do not exist here
  set -o pipefail
  "$VENV/bin/python" -m pip --disable-pip-version-check -q install "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "==> installing torch==2.13.0 (CPU)"
  pip_install "torch==2.13.0"
fi
SPEC="$ROOT"
[ -n "$EXTRA" ] && SPEC="$ROOT[$EXTRA]"
echo "==> installing gameadapt${EXTRA:+[$EXTRA]}"
pip_install -e "$SPEC"
"$VENV/bin/python" -c "import gameadapt" || { echo "gameadapt failed to install" >&2; exit 1; }
export PATH="$VENV/bin:$PATH"
