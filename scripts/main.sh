#!/usr/bin/env bash
# The main job, end to end on the built-in default game: install (if needed), look at the
# game's variants, meta-train a small preset, evaluate it on held-out variants against the
# baselines, adapt to one held-out variant, export it to ONNX (verified), and play the
# exported file with ONNX Runtime only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
GAME="${GAMEADAPT_GAME:-gridnav}"
STAMP="$(date +%Y%m%d-%H%M%S)"
RUN="runs/main-$GAME-$STAMP"
ADAPTED="$RUN/adapted"
EXPORT="exports/$GAME-main-$STAMP"
# The small preset: about a minute on 2 CPU cores (see docs/performance.md for full runs).
# GAMEADAPT_QUICK=1 (what CI runs) shrinks every stage to seconds; it proves the pipeline
# works on a fresh machine, not what the agent learns.
ITERATIONS="${GAMEADAPT_ITERATIONS:-40}"
EVALUATE=(--tasks 40 --episodes 20 --steps 0,1,3 --seeds 0,1,2)
ADAPT_EPISODES=20
if [ -n "${GAMEADAPT_QUICK:-}" ]; then
  ITERATIONS="${GAMEADAPT_ITERATIONS:-3}"
  EVALUATE=(--tasks 4 --episodes 4 --steps 0,1 --seeds 0)
  ADAPT_EPISODES=4
fi
PRESET=(--iterations "$ITERATIONS" --meta-batch 20 --envs-per-task 10 --inner-lr 0.3
        -o gae_lambda=0.9)

echo "==> gameadapt $(gameadapt --version | awk '{print $NF}')"
gameadapt games list
echo
echo "==> $GAME: spaces, level and rule parameters, train / held-out split"
gameadapt games show "$GAME"
echo
echo "==> 3 held-out variants (seeded)"
gameadapt games sample "$GAME" --split test -n 3 --seed 0
mkdir -p runs
VARIANT_FILE="runs/main-$GAME-$STAMP.heldout-variant.json"
gameadapt games sample "$GAME" --split test -n 1 --seed 7 --json | python -c \
  'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' > "$VARIANT_FILE"

echo
echo "==> meta-training maml on $GAME (${PRESET[*]})"
gameadapt train "$GAME" --algo maml "${PRESET[@]}" --run-dir "$RUN"
echo
echo "==> held-out evaluation against the baselines (pretrain is trained with the same data)"
gameadapt evaluate "$RUN" "${EVALUATE[@]}" --baselines pretrain,scratch \
  --plot "$RUN/evaluation.png"
echo
echo "==> adapting to one held-out variant: $(cat "$VARIANT_FILE")"
gameadapt adapt "$RUN" --variant-file "$VARIANT_FILE" --episodes "$ADAPT_EPISODES" -o "$ADAPTED"
echo
echo "==> exporting the adapted policy to ONNX (verified against PyTorch, with the adapter graph)"
gameadapt export "$ADAPTED" -o "$EXPORT" --with-adapter
echo
echo "==> playing the exported file with ONNX Runtime only (no torch), actions sampled as in training"
gameadapt play "$EXPORT" --episodes 5 --seed 100 --sample
echo
echo "==> files"
echo "run (config, metrics, TensorBoard, checkpoint): $RUN"
echo "evaluation plot:                               $RUN/evaluation.png"
echo "adapted policy:                                $ADAPTED"
echo "ONNX policy + manifest (+ adapter):            $EXPORT"
ls -l "$EXPORT"
