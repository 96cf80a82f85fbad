#!/usr/bin/env bash
# The main job, end to end on the built-in default game: install (if needed), look at the
# game's variants, meta-train the agent that ships best here (rl2, a recurrent policy that
# adapts in its memory), the context agent (it infers where a level sits in a learnt task
# space) and MAML beside them, evaluate all three on held-out variants against the baselines
# and the game's reference, picture the context agent's task space, export the rl2 and
# context agents to ONNX (verified) and play them with ONNX Runtime only, carrying their
# memory; then adapt MAML to one held-out variant and export that with its in-game adapter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
GAME="${GAMEADAPT_GAME:-gridnav}"
STAMP="$(date +%Y%m%d-%H%M%S)"
RUN="runs/main-$GAME-$STAMP"
MAML_RUN="$RUN-maml"
CONTEXT_RUN="$RUN-context"
CONTEXT_EXPORT="exports/$GAME-main-$STAMP-context"
ADAPTED="$MAML_RUN/adapted"
EXPORT="exports/$GAME-main-$STAMP"
MAML_EXPORT="exports/$GAME-main-$STAMP-maml"
# The small presets: a few minutes on 2 CPU cores (see docs/performance.md for full runs).
# GAMEADAPT_QUICK=1 (what CI runs) shrinks every stage to seconds; it proves the pipeline
# works on a fresh machine, not what the agent learns.
ITERATIONS="${GAMEADAPT_ITERATIONS:-80}"
MAML_ITERATIONS="${GAMEADAPT_ITERATIONS:-40}"
EVALUATE=(--tasks 40 --episodes 20 --steps 0,1,3 --seeds 0,1,2 --budgets 0,1,2,5,20 --trials 3)
ADAPT_EPISODES=20
LATENT_TASKS=120
if [ -n "${GAMEADAPT_QUICK:-}" ]; then
  ITERATIONS="${GAMEADAPT_ITERATIONS:-3}"
  MAML_ITERATIONS="$ITERATIONS"
  EVALUATE=(--tasks 4 --episodes 4 --steps 0,1 --seeds 0 --budgets 0,1,2 --trials 2)
  ADAPT_EPISODES=4
  LATENT_TASKS=8
fi
PRESET=(--iterations "$ITERATIONS" --meta-batch 20 --envs-per-task 10)
MAML_PRESET=(--iterations "$MAML_ITERATIONS" --meta-batch 20 --envs-per-task 10 --inner-lr 0.3
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
echo "==> meta-training rl2 on $GAME (${PRESET[*]}): a recurrent policy that adapts in its memory"
gameadapt train "$GAME" --algo rl2 "${PRESET[@]}" --run-dir "$RUN"
echo
echo "==> meta-training context on $GAME (${PRESET[*]}): infers the level's place in a learnt task space from each step"
gameadapt train "$GAME" --algo context "${PRESET[@]}" --run-dir "$CONTEXT_RUN"
echo
echo "==> meta-training maml on $GAME (${MAML_PRESET[*]}): adapts with a gradient step, for comparison"
gameadapt train "$GAME" --algo maml "${MAML_PRESET[@]}" --run-dir "$MAML_RUN"
echo
echo "==> held-out evaluation: rl2, context and maml against the baselines (pretrain is trained with the same data) and the reference"
gameadapt evaluate "$RUN" --compare "$CONTEXT_RUN" --compare "$MAML_RUN" "${EVALUATE[@]}" \
  --baselines pretrain,scratch --plot "$RUN/evaluation.png"
echo
echo "==> the context agent's task space: held-out levels placed by their posterior after one episode"
gameadapt latents "$CONTEXT_RUN" --plot "$CONTEXT_RUN/latents.png" --tasks "$LATENT_TASKS"
echo
echo "==> exporting the rl2 agent to ONNX (verified against PyTorch over whole trials, the memory as an input and an output)"
gameadapt export "$RUN" -o "$EXPORT"
echo
echo "==> playing it with ONNX Runtime only (no torch) on one held-out variant, memory carried across the episodes: $(cat "$VARIANT_FILE")"
gameadapt play "$EXPORT" --variant-file "$VARIANT_FILE" --episodes 5 --seed 100
echo
echo "==> exporting the context agent (encoder.onnx: one step's update of the posterior; policy.onnx on the observation and z) and playing it"
gameadapt export "$CONTEXT_RUN" -o "$CONTEXT_EXPORT"
gameadapt play "$CONTEXT_EXPORT" --variant-file "$VARIANT_FILE" --episodes 5 --seed 100
echo
echo "==> adapting maml to the same held-out variant, exporting it with the adapter graph, playing it"
gameadapt adapt "$MAML_RUN" --variant-file "$VARIANT_FILE" --episodes "$ADAPT_EPISODES" -o "$ADAPTED"
gameadapt export "$ADAPTED" -o "$MAML_EXPORT" --with-adapter
gameadapt play "$MAML_EXPORT" --episodes 5 --seed 100
echo
echo "==> files"
echo "rl2 run (config, metrics, TensorBoard, checkpoint): $RUN"
echo "evaluation plot:                                   $RUN/evaluation.png"
echo "rl2 ONNX policy + manifest:                        $EXPORT"
echo "context run, task-space picture, export:           $CONTEXT_RUN, $CONTEXT_RUN/latents.png, $CONTEXT_EXPORT"
echo "maml run, adapted policy, export (+ adapter):      $MAML_RUN, $ADAPTED, $MAML_EXPORT"
ls -l "$EXPORT"
