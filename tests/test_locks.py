"""Run and output folders are owned by one process at a time (real processes; issue 15, 1).

A lock holder is either a real ``gameadapt`` process or a small Python process that holds a
lock through :mod:`gameadapt.locks` (exactly what the commands do), so a test can hold a
folder for as long as it needs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.locks import FolderInUseError, folder_lock, is_held, lock_beside

TINY = ["--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu"]
HOLD = """
import sys, time
from pathlib import Path
from gameadapt.locks import folder_lock
with folder_lock(Path(sys.argv[1]), Path(sys.argv[2]), "lock holder"):
    print("held", flush=True)
    time.sleep(600)
"""


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def cli_process(*args: Any) -> subprocess.Popen[str]:
    """A real ``gameadapt`` process (one torch thread)."""
    env = dict(os.environ, GAMEADAPT_TORCH_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "gameadapt", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    """Wait for ``process``; its exit code and stderr."""
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def one_error_line(stderr: str) -> str:
    """The single ``Error:`` line of a failed command (no traceback)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def assert_in_use(result_or_stderr: Any, folder: Path, pid: int) -> None:
    text = result_or_stderr if isinstance(result_or_stderr, str) else result_or_stderr.output
    line = one_error_line(text)
    assert f"{folder} is in use by process {pid}" in line, line
    assert "wait for it to finish or stop it" in line


@pytest.fixture
def holder() -> Iterator[Any]:
    """``holder(lock_file, folder)`` starts a process that holds the lock; returns it."""
    started: list[subprocess.Popen[str]] = []

    def hold(lock_file: Path, folder: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file), str(folder)],
                                   stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def iterations(run: Path) -> list[int]:
    return [json.loads(line)["iteration"]
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def wait_for_lock(run: Path, pid: int, timeout: float = 120) -> None:
    """Until ``run/.lock`` names ``pid`` (the process owns the run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (run / ".lock").read_text().split("\n")[0] == str(pid):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never locked {run}")


# -- the lock itself -------------------------------------------------------------------------------
def test_the_lock_is_reentrant_and_removed_when_let_go(tmp_path: Path) -> None:
    lock_file = tmp_path / ".lock"
    with folder_lock(lock_file, tmp_path, "outer"):
        with folder_lock(lock_file, tmp_path, "inner"):
            assert is_held(lock_file)
            assert lock_file.read_text() == f"{os.getpid()}\nouter\n"
        assert is_held(lock_file)
    assert not is_held(lock_file) and not lock_file.exists()
    assert lock_beside(tmp_path / "out") == tmp_path / ".out.lock"


def test_another_process_gets_one_line_with_the_holders_pid_and_a_dead_one_never_blocks(
        tmp_path: Path, holder: Any) -> None:
    lock_file = tmp_path / ".lock"
    process = holder(lock_file, tmp_path)
    with pytest.raises(FolderInUseError) as caught:
        with folder_lock(lock_file, tmp_path, "second"):
            pass
    assert str(caught.value) == (f"{tmp_path} is in use by process {process.pid} (lock holder); "
                                 f"wait for it to finish or stop it")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert lock_file.read_text().startswith(f"{process.pid}\n")  # stale: left by the dead one
    with folder_lock(lock_file, tmp_path, "next"):
        assert lock_file.read_text() == f"{os.getpid()}\nnext\n"


# -- train -----------------------------------------------------------------------------------------
def stop(process: subprocess.Popen[str]) -> None:
    """Ctrl-C a training process (it saves its last iteration and exits 130)."""
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130, stderr


def assert_each_iteration_once(run: Path) -> None:
    import torch

    done = torch.load(run / "checkpoint.pt", weights_only=True)["iteration"]
    assert done >= 1 and iterations(run) == list(range(done))


@pytest.mark.slow
def test_two_train_processes_into_one_run_dir_one_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = cli_process("train", "gridnav", "--iterations", "10000", *TINY, "--run-dir", run)
    wait_for_lock(run, first.pid)
    second = cli_process("train", "gridnav", "--iterations", "4", "--seed", "1", *TINY,
                         "--run-dir", run)
    code, stderr = finish(second)
    assert code != 0
    assert_in_use(stderr, run, first.pid)
    assert "(gameadapt train)" in stderr
    stop(first)
    assert_each_iteration_once(run)
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 0
    assert not (run / ".lock").exists()


@pytest.mark.slow
def test_two_simultaneous_resumes_one_trains(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", run).exit_code == 0
    first = cli_process("train", "--resume", run, "--iterations", "10000")
    wait_for_lock(run, first.pid)
    second = cli_process("train", "--resume", run, "--iterations", "5")
    code, stderr = finish(second)
    assert code != 0
    assert_in_use(stderr, run, first.pid)
    stop(first)
    assert_each_iteration_once(run)
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["iterations"] == 10000  # the refused one changed nothing


@pytest.mark.slow
def test_a_killed_holder_never_blocks_a_resume(tmp_path: Path, holder: Any) -> None:
    run = tmp_path / "run"
    assert invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", run).exit_code == 0
    process = holder(run / ".lock", run)
    config = (run / "config.json").read_bytes()
    result = invoke("train", "--resume", run, "--iterations", "2")
    assert_in_use(result, run, process.pid)
    assert (run / "config.json").read_bytes() == config
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = invoke("train", "--resume", run, "--iterations", "2")
    assert result.exit_code == 0, result.output
    assert iterations(run) == [0, 1]


def test_a_new_run_in_a_locked_folder_is_refused(tmp_path: Path, holder: Any) -> None:
    run = tmp_path / "run"
    run.mkdir()
    process = holder(run / ".lock", run)
    result = invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", run)
    assert_in_use(result, run, process.pid)
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_a_failed_start_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from gameadapt.errors import GameadaptError
    from gameadapt.train import session

    def failing(config: Any) -> Any:
        raise GameadaptError("cannot build this session")

    monkeypatch.setattr(session, "build_session", failing)
    run = tmp_path / "new" / "run"
    result = invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", run)
    assert result.exit_code != 0 and "Error: cannot build this session" in result.output
    assert not (tmp_path / "new").exists()


def test_resume_with_another_run_dir_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    result = invoke("train", "--resume", run, "--run-dir", tmp_path / "other")
    line = one_error_line(result.output)
    assert result.exit_code != 0 and "--run-dir" in line and "--resume" in line
    assert not (tmp_path / "other").exists()


# -- evaluate, adapt, export -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("locks") / "run"
    result = invoke("train", "gridnav", "--iterations", "1", *TINY, "--run-dir", run)
    assert result.exit_code == 0, result.output
    return run


EVALUATE = ["--tasks", "2", "--episodes", "2", "--seeds", "0", "--steps", "0,1",
            "--budgets", "0", "--trials", "1", "--split", "train"]


@pytest.mark.slow
def test_evaluate_is_not_blocked_by_training_and_locks_only_its_baseline(
        trained: Path, holder: Any) -> None:
    training = holder(trained / ".lock", trained)  # as a train --resume would
    result = invoke("evaluate", trained, *EVALUATE, "--baselines", "")
    assert result.exit_code == 0, result.output
    baseline = trained / "baselines" / "pretrain"
    (trained / "baselines").mkdir(exist_ok=True)
    other = holder(lock_beside(baseline), baseline)
    result = invoke("evaluate", trained, *EVALUATE, "--baselines", "pretrain")
    assert_in_use(result, baseline, other.pid)
    assert not baseline.exists()
    assert training.poll() is None


@pytest.mark.slow
def test_adapt_and_export_outputs_are_locked(trained: Path, holder: Any, tmp_path: Path
                                             ) -> None:
    out = tmp_path / "adapted"
    process = holder(lock_beside(out), out)
    result = invoke("adapt", trained, "-v", "level.seed=12345", "--episodes", "2",
                    "--eval-episodes", "2", "-o", out)
    assert_in_use(result, out, process.pid)
    assert not out.exists()
    export = tmp_path / "export"
    export.mkdir()
    (export / "keep.meta").write_text("mine")
    process = holder(lock_beside(export), export)
    result = invoke("export", trained, "-o", export, "--force")
    assert_in_use(result, export, process.pid)
    assert sorted(p.name for p in export.iterdir()) == ["keep.meta"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".adapted.lock", ".export.lock",
                                                           "export"]
