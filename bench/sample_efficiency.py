"""Sample efficiency: environment steps of training until the held-out return after one
episode on a variant (budget n = 1 of the experience axis) first reaches a stated value.

Trains with the real CLI in chunks of ``--every`` iterations (``gameadapt train``, then
``--resume``: resumes are bit-identical, so the chunks are one run), and after each chunk
measures episode 2's mean return on ``--tasks`` held-out variants x ``--trials`` trials
(evaluation seed 0; greedy and sampled actions; a context run with ``z`` at the posterior
mean) with :func:`gameadapt.train.experience.experience_curve`. Stops when the training's
own seconds (the sum of ``metrics.jsonl``'s ``seconds``, evaluations not counted) pass
``--max-minutes``, or with ``--stop`` as soon as the threshold is reached. Writes
``RUN/efficiency.jsonl`` and prints the first crossing::

    python bench/sample_efficiency.py runs/ctx-grid --threshold 1.3 --every 20 \\
        --max-minutes 15 -- gridnav --algo context --meta-batch 20 --envs-per-task 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from gameadapt.train.experience import experience_curve
from gameadapt.train.runs import RunDir
from gameadapt.train.session import load_session


def totals(run: Path) -> tuple[int, float, float]:
    """(iterations done, env steps, training seconds) from the run's metrics."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return (len(rows), sum(row["env_steps"] for row in rows),
            sum(row["seconds"] for row in rows))


def measure(run: Path, tasks: int, trials: int) -> dict[str, float]:
    """Episode 2's mean return (and success) after one episode, greedy and sampled."""
    session = load_session(RunDir(run))
    variants = session.spec.variant_space.sample("test", tasks, 0)
    latent = "mean" if session.algorithm.family == "context" else "sample"
    point: dict[str, float] = {}
    for mode in ("greedy", "sampled"):
        curve = experience_curve(session, variants, [1], trials, 0, mode, latent=latent)
        point[f"{mode}_return"] = curve.returns[0]
        if curve.success is not None:
            point[f"{mode}_success"] = curve.success[0]
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--stop", action="store_true", help="stop at the first crossing")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    train_args = argv[split + 1:]  # what `gameadapt train` is given
    log = args.run / "efficiency.jsonl"
    target = args.every
    command = ["gameadapt", "train", *train_args, "--run-dir", str(args.run)]
    crossing: dict[str, float] = {}
    while True:
        subprocess.run([*command, "--iterations", str(target)], check=True,
                       stdout=subprocess.DEVNULL)
        command = ["gameadapt", "train", "--resume", str(args.run)]
        iterations, steps, seconds = totals(args.run)
        row = {"iteration": iterations, "env_steps": steps, "train_seconds": seconds,
               **measure(args.run, args.tasks, args.trials)}
        with log.open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        for mode in ("greedy", "sampled"):
            if row[f"{mode}_return"] >= args.threshold and mode not in crossing:
                crossing[mode] = steps
        if seconds >= args.max_minutes * 60 or (args.stop and crossing):
            break
        target = iterations + args.every
    for mode in ("greedy", "sampled"):
        found = (f"{crossing[mode]:,.0f} env steps" if mode in crossing
                 else f"not reached in {steps:,.0f} env steps")
        print(f"{args.run}: {mode} return after one episode >= {args.threshold:g}: {found}")


if __name__ == "__main__":
    sys.exit(main())
