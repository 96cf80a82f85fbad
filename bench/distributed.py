"""Distributed meta-training benchmark: seconds per meta-iteration on 1 and 2 processes.

Each configuration is a real ``gameadapt train`` (maml, gridnav, 10 envs per task, default
options) run for ``--iterations`` iterations in a fresh run folder; the figure is the median
of the per-iteration ``seconds`` it wrote to ``metrics.jsonl``, the first iteration (warm-up)
left out. Measured in this one run, at 20, 40 and 80 tasks:

- ``1 process, 1 thread``: the reference (``GAMEADAPT_TORCH_THREADS=1``);
- ``1 process, 2 threads``: the same process using both cores through torch's intra-op
  threads;
- ``2 processes``: ``gameadapt train --nproc 2``, one thread each, the meta-batch split.

It prints the seconds and the speed-up of each against the reference (ideal for 2
processes: 2x) and against 2 threads. ``--nnodes`` adds a run with two torchrun agents on
127.0.0.1 (``--nnodes 2 --nproc-per-node 1``, c10d rendezvous), the several-machines path.
``--device cuda`` measures one process on the GPU at world size 1 instead.

Usage::

    python bench/distributed.py                      # about 6 minutes on 2 CPU cores
    python bench/distributed.py --tasks 20 --iterations 3
    python bench/distributed.py --nnodes             # also the two-agent torchrun run
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ALGORITHM, GAME, ENVS = "maml", "gridnav", 10


def train_args(tasks: int, iterations: int, run: Path, device: str) -> list[str]:
    return ["train", GAME, "--algo", ALGORITHM, "--meta-batch", str(tasks), "--envs-per-task",
            str(ENVS), "--iterations", str(iterations), "--device", device, "--run-dir",
            str(run)]


def seconds_per_iteration(run: Path) -> float:
    """The median ``seconds`` of a run's iterations after the first."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(row["seconds"] for row in rows[1:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(name: str, command: list[str] | list[list[str]], threads: int, run: Path) -> float:
    """Run ``command`` (or several at once: torchrun agents) and return its s/iteration."""
    env = {**os.environ, "GAMEADAPT_TORCH_THREADS": str(threads)}
    commands = command if isinstance(command[0], list) else [command]
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for c in commands]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{name} failed: {err.strip().splitlines()[-1:]}")
    return seconds_per_iteration(run)


def torchrun_agents(args: list[str]) -> list[list[str]]:
    """Two torchrun agents of one node each, meeting on 127.0.0.1 (c10d rendezvous)."""
    endpoint = f"127.0.0.1:{free_port()}"
    return [[sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
             "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
             "--rdzv-id", "bench", "-m", "gameadapt", *args] for _ in range(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[20, 40, 80])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--nnodes", action="store_true")
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()
    gameadapt = [sys.executable, "-m", "gameadapt"]
    print(f"{ALGORITHM} on {GAME}, {ENVS} envs per task, median s/iteration over "
          f"{options.iterations - 1} iterations (first left out)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for tasks in options.tasks:
            def run(name: str, threads: int, extra: list[str] | None = None,
                    agents: bool = False) -> float:
                folder = root / f"{tasks}-{name}"
                args = train_args(tasks, options.iterations, folder, options.device)
                command = torchrun_agents(args) if agents else [*gameadapt, *args,
                                                                *(extra or [])]
                return measure(name, command, threads, folder)

            if options.device != "cpu":
                print(f"{tasks:4d} tasks  {options.device}, 1 process: {run('gpu', 1):.3f} s")
                continue
            one = run("one", 1)
            two_threads = run("threads", 2)
            two = run("two", 1, ["--nproc", "2"])
            line = (f"{tasks:4d} tasks  1 process 1 thread {one:.3f} s | 1 process 2 threads "
                    f"{two_threads:.3f} s ({one / two_threads:.2f}x) | 2 processes {two:.3f} s "
                    f"({one / two:.2f}x vs 1 thread, {two_threads / two:.2f}x vs 2 threads)")
            if options.nnodes:
                agents = run("nnodes", 1, agents=True)
                line += f" | 2 torchrun agents {agents:.3f} s ({one / agents:.2f}x)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
