#!/usr/bin/env bash
# The main job, end to end on the built-in default game: install (if needed), then run
# every stage of the pipeline that exists at this commit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
GAME="${GAMEADAPT_GAME:-gridnav}"
OUT="$ROOT/runs/main"
mkdir -p "$OUT"

echo "==> gameadapt $(gameadapt --version | awk '{print $NF}')"
echo "==> installed games"
gameadapt games list
echo
echo "==> the default game, $GAME: spaces, level and rule parameters, train / held-out split"
gameadapt games show "$GAME"
echo
echo "==> 3 training variants and 3 held-out variants (seeded)"
gameadapt games sample "$GAME" --split train -n 3 --seed 0
gameadapt games sample "$GAME" --split test -n 3 --seed 0
echo
echo "==> a few random steps of a held-out variant"
gameadapt games sample "$GAME" --split test -n 1 --seed 0 --json | python -c \
  'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' > "$OUT/heldout-variant.json"
gameadapt games play "$GAME" --variant-file "$OUT/heldout-variant.json" --seed 0 --steps 5
