#!/usr/bin/env bash
# Type-check engine/, plugins/ and games/ with mypy, as the one package `gameadapt` they form
# (pyproject.toml maps the folders with setuptools package-dir, which mypy cannot read: the
# folders are copied into that layout first). Usage: bash scripts/typecheck.sh [PYTHON]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:-${PYTHON:-$ROOT/.venv/bin/python}}"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -r "$ROOT/engine" "$STAGE/gameadapt"
cp -r "$ROOT/plugins" "$STAGE/gameadapt/plugins"
cp -r "$ROOT/games" "$STAGE/gameadapt/games"
cd "$STAGE"
"$PY" -m mypy --config-file "$ROOT/pyproject.toml" -p gameadapt 2>&1 \
  | sed -e "s#^gameadapt/plugins/#plugins/#" -e "s#^gameadapt/games/#games/#" -e "s#^gameadapt/#engine/#"
