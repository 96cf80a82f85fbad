"""Meta-training on several processes (issue 17): real ``torch.distributed`` processes (gloo)
started by ``gameadapt train --nproc`` and by torchrun, against the one-process run.

Tolerance: the ranks' sums (gradients, statistics) are added in another order than one
process adds them, so bits differ by float32 rounding; Adam's first steps divide by the
gradient's own size, which turns a rounding difference of a near-zero gradient entry into a
step difference of up to ``lr``. Measured after 2 iterations: at most 9e-6 on any parameter
(reptile; 1e-7 to 2e-6 for the others), and one float32 rounding step of the running
statistics (``return_var`` of a pointnav rl2 run, about 2500: 2.4e-4 absolute). Hence
``rtol = atol = 1e-4``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from gameadapt.cli.launch import without_nproc
from gameadapt.errors import GameadaptError
from gameadapt.learn import shard
from gameadapt.train.distributed import split_tasks

TINY = ["--meta-batch", "5", "--envs-per-task", "3", "--device", "cpu"]
TOLERANCE = 1e-4
ALGORITHMS = ["maml", "fomaml", "reptile", "pretrain", "rl2", "context"]


def gameadapt(*args: Any, timeout: int = 600, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GAMEADAPT_TORCH_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gameadapt", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def train(run: Path, algo: str, iterations: int, *extra: Any) -> subprocess.CompletedProcess[str]:
    done = gameadapt("train", "gridnav", "--algo", algo, "--iterations", iterations, *TINY,
                     "--run-dir", run, *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def state(run: Path) -> dict[str, torch.Tensor]:
    payload = torch.load(run / "checkpoint.pt", weights_only=False)
    return (payload.get("contents") or payload)["policy"]


def rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(one: Path, other: Path) -> None:
    """Equal parameters and buffers, and equal metrics, to the tolerance above."""
    mine, theirs = state(one), state(other)
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        torch.testing.assert_close(theirs[name], value, rtol=TOLERANCE, atol=TOLERANCE,
                                   msg=lambda m, name=name: f"{name}: {m}")
    for row, other_row in zip(rows(one), rows(other), strict=True):
        for key in ("iteration", "pre_return", "post_return", "env_steps"):
            assert other_row[key] == pytest.approx(row[key], rel=1e-5, abs=1e-5), key


# -- the split, fast ------------------------------------------------------------------------
def test_the_meta_batch_is_split_contiguously_the_first_ranks_taking_the_remainder() -> None:
    assert split_tasks(5, 2) == [(0, 3), (3, 5)]
    assert split_tasks(20, 3) == [(0, 7), (7, 14), (14, 20)]
    assert split_tasks(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(GameadaptError, match="--meta-batch 1 is smaller than the 2 processes"):
        split_tasks(1, 2)


def test_a_shard_sees_its_part_of_every_slice_and_minibatch() -> None:
    from gameadapt.learn.learner import local_tasks

    with shard.sharded(shard.TaskShard(3, 5, 5, 1, 2)):
        assert local_tasks(slice(0, 2)) == slice(0, 0)  # none of these tasks here
        assert local_tasks(slice(2, 5)) == slice(0, 2)
        rows_ = shard.local_rows(torch.tensor([14, 0, 9, 10, 3]), 3)  # 3 trials per task
        assert rows_.tolist() == [5, 0, 1]  # global rows 14, 9, 10 -> local 5, 0, 1
    assert local_tasks(slice(2, 5)) == slice(2, 5)  # no shard: as given


def test_nproc_is_taken_out_of_the_command_the_workers_run() -> None:
    assert without_nproc(["train", "gridnav", "--nproc", "2", "--iterations", "3"]) == \
        ["train", "gridnav", "--iterations", "3"]
    assert without_nproc(["train", "--nproc=4", "x"]) == ["train", "x"]


# -- two processes against one ----------------------------------------------------------------
@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("single")
    for algo in ALGORITHMS:
        train(root / algo, algo, 2)
    return {algo: root / algo for algo in ALGORITHMS}


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGORITHMS)
def test_two_processes_end_with_the_one_process_parameters(single, algo, tmp_path) -> None:
    done = train(tmp_path / "two", algo, 2, "--nproc", "2")
    assert "2 processes (gloo)" in done.stderr
    assert_same_run(single[algo], tmp_path / "two")
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["distributed"]["world_size"] == 2
    assert config["distributed"]["split"] == [[0, 3], [3, 5]]  # 5 tasks: the first rank 3
    assert json.loads((single[algo] / "config.json").read_text())["distributed"][
        "world_size"] == 1


@pytest.mark.slow
def test_torchrun_and_two_agents_on_localhost_train_the_same_run(single, tmp_path) -> None:
    args = ["-m", "gameadapt", "train", "gridnav", "--algo", "maml", "--iterations", "2", *TINY]
    env = {**os.environ, "GAMEADAPT_TORCH_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run"]
    done = subprocess.run([*launcher, "--standalone", "--nproc-per-node", "2", *args,
                           "--run-dir", str(tmp_path / "torchrun")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(single["maml"], tmp_path / "torchrun")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        endpoint = f"127.0.0.1:{probe.getsockname()[1]}"
    agents = [subprocess.Popen([*launcher, "--nnodes", "2", "--nproc-per-node", "1",
                                "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                                "--rdzv-id", "test", *args, "--run-dir",
                                str(tmp_path / "nodes")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for agent in agents:
        _, err = agent.communicate(timeout=600)
        assert agent.returncode == 0, err[-2000:]
    assert_same_run(single["maml"], tmp_path / "nodes")


@pytest.mark.slow
def test_resume_with_another_number_of_processes_matches_the_uninterrupted_run(
        tmp_path) -> None:
    train(tmp_path / "whole", "maml", 3)
    train(tmp_path / "run", "maml", 1)
    done = gameadapt("train", "--resume", tmp_path / "run", "--iterations", 3, "--nproc", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(tmp_path / "whole", tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["distributed"][
        "world_size"] == 2


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _wait_for_rows(run: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "metrics.jsonl").exists() and len(rows(run)) >= count:
            return
        time.sleep(0.1)
    raise AssertionError("the run did not reach its iterations")


def _start(run: Path, iterations: int, launcher: str = "nproc") -> subprocess.Popen[str]:
    env = {**os.environ, "GAMEADAPT_TORCH_THREADS": "1"}
    train_args = ["train", "gridnav", "--algo", "maml", "--iterations", str(iterations), *TINY,
                  "--run-dir", str(run), "--checkpoint-every", "1"]
    command = ([sys.executable, "-m", "gameadapt", *train_args, "--nproc", "2"]
               if launcher == "nproc" else
               [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2", "-m", "gameadapt", *train_args])
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["nproc", "torchrun"])
def test_a_killed_rank_fails_the_job_in_a_line_per_rank_and_resume_finishes_it(
        tmp_path, launcher) -> None:
    train(tmp_path / "whole", "maml", 6)
    job = _start(tmp_path / "run", 6, launcher)
    _wait_for_rows(tmp_path / "run", 2, job)
    ranks = _children(job.pid)
    assert len(ranks) == 2
    os.kill(ranks[1], signal.SIGKILL)
    out, err = job.communicate(timeout=120)
    assert job.returncode != 0
    if launcher == "torchrun":  # torchrun's own log lines (W1201 ...) and its summary go
        err = "\n".join(line for line in err.split("Traceback (most recent", 1)[0].splitlines()
                        if not re.match(r"[IWE]\d{4} ", line))
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(
        ("training maml", "meta-training", "\r", "*", "Setting OMP_NUM_THREADS"))]
    assert len(lines) <= 2, err  # at most one line per rank
    assert all(line.startswith("Error: rank ") for line in lines), lines
    assert "Traceback" not in err
    done = gameadapt("train", "--resume", tmp_path / "run", "--nproc", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(tmp_path / "whole", tmp_path / "run")


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["nproc", "torchrun"])
def test_ctrl_c_stops_every_rank_at_the_same_iteration(tmp_path, launcher) -> None:
    job = _start(tmp_path / "run", 50, launcher)
    _wait_for_rows(tmp_path / "run", 1, job)
    os.killpg(job.pid, signal.SIGINT)  # the terminal's Ctrl-C: every process of the job
    _, err = job.communicate(timeout=120)
    stopped = len(rows(tmp_path / "run"))
    payload = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert (payload.get("contents") or payload)["iteration"] == stopped < 50
    assert not re.search(r'File ".*(gameadapt|engine)/', err), err  # no traceback of ours
    if launcher == "nproc":  # torchrun signals its workers a second time, and prints its own
        assert job.returncode == 130, err  # traceback of the SignalException
        assert "interrupted: saved the state after iteration" in err
        assert "Traceback" not in err
    else:
        assert job.returncode != 0
