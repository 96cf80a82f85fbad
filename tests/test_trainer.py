"""Training runs: files, resume (also after SIGKILL) bit-identical, bad input, evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from gameadapt.algorithm import AlgorithmSpec
from gameadapt.cli import cli
from gameadapt.host.registry import get_registry
from gameadapt.train.checkpoint import save_checkpoint

TINY = ["--meta-batch", "3", "--envs-per-task", "4", "--checkpoint-every", "2"]


def train(*args: str):
    return CliRunner().invoke(cli, ["train", *args])


def policy_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["policy"]


def tensorboard_scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` as TensorBoard's own loader reads the run's ``tb/``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def returns(run: Path) -> list[tuple[float, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(row["pre_return"], row["post_return"]) for row in rows]


def assert_same_policy(a: Path, b: Path) -> None:
    state_a, state_b = policy_state(a), policy_state(b)
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


def test_train_writes_config_metrics_tensorboard_and_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train("pointnav", "--iterations", "3", "--run-dir", str(run), *TINY)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["game"] == "pointnav" and config["algorithm"] == "maml"
    assert config["train"]["meta_batch"] == 3
    assert config["algorithm_config"]["inner_lr"] == 0.1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert all({"pre_return", "post_return", "env_steps", "env_steps_per_s"} <= set(r) for r in rows)
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["iteration"] == 3 and checkpoint["game"] == "pointnav"
    events = list((run / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    scalars = tensorboard_scalars(run)["train/pre_return"]
    assert [step for step, _ in scalars] == [0, 1, 2]
    assert [v for _, v in scalars] == pytest.approx([r["pre_return"] for r in rows], rel=1e-6)
    assert "post-adaptation" in result.output


def test_tensorboard_shows_every_step_once_after_a_resume(tmp_path: Path) -> None:
    """A process that logged iteration 2 but died before checkpointing it: the resumed run
    logs 2 again, and TensorBoard's loader shows each step once, with the new values."""
    run = tmp_path / "run"
    assert train("gridnav", "--iterations", "2", "--run-dir", str(run), *TINY).exit_code == 0
    at_two = (run / "checkpoint.pt").read_bytes()
    assert train("--resume", str(run), "--iterations", "3").exit_code == 0
    (run / "checkpoint.pt").write_bytes(at_two)  # as if killed before the last checkpoint
    assert train("--resume", str(run), "--iterations", "4").exit_code == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scalars = tensorboard_scalars(run)["train/pre_return"]
    assert [step for step, _ in scalars] == [0, 1, 2, 3]
    assert [v for _, v in scalars] == pytest.approx([r["pre_return"] for r in rows], rel=1e-6)
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 3


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train("gridnav", "--iterations", "4", "--run-dir", str(whole), *TINY).exit_code == 0
    assert train("gridnav", "--iterations", "2", "--run-dir", str(split), *TINY).exit_code == 0
    result = train("--resume", str(split), "--iterations", "4")
    assert result.exit_code == 0, result.output
    assert_same_policy(whole, split)
    assert returns(whole) == returns(split)
    assert json.loads((split / "config.json").read_text())["train"]["iterations"] == 4


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_bit_identical(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = ["gridnav", "--iterations", "8", "--meta-batch", "3", "--envs-per-task", "4",
            "--checkpoint-every", "2"]
    assert train(*args, "--run-dir", str(whole)).exit_code == 0
    command = [sys.executable, "-m", "gameadapt", "train", *args, "--run-dir", str(killed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = torch.load(killed / "checkpoint.pt", weights_only=True)["iteration"]
    assert 2 <= interrupted_at < 8
    result = train("--resume", str(killed))
    assert result.exit_code == 0, result.output
    assert_same_policy(whole, killed)
    assert returns(whole) == returns(killed)


def test_train_reads_a_toml_config_and_flags_override_it(tmp_path: Path) -> None:
    config_file = tmp_path / "train.toml"
    config_file.write_text('game = "pointnav"\niterations = 1\nmeta_batch = 2\n'
                           'envs_per_task = 2\n\n[options]\nouter_lr = 0.001\ninner_lr = 0.05\n')
    run = tmp_path / "run"
    result = train("--config", str(config_file), "--inner-lr", "0.2", "--run-dir", str(run))
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["algorithm_config"]["outer_lr"] == 0.001
    assert saved["algorithm_config"]["inner_lr"] == 0.2
    assert saved["train"]["meta_batch"] == 2


@pytest.fixture
def continuous_only_algorithm():
    registry = get_registry()
    maml = registry.algorithm("maml")
    registry.algorithms["cont-only"] = AlgorithmSpec("cont-only", "test", maml.make,
                                                     action_kinds=("continuous",))
    yield
    del registry.algorithms["cont-only"]


@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "unknown game 'nope'"),
    (["gridnav", "--algo", "nope"], "unknown algorithm 'nope'"),
    (["gridnav", "--iterations", "0"], "invalid iterations 0"),
    (["gridnav", "--meta-batch", "-2"], "invalid meta-batch -2"),
    (["gridnav", "--inner-steps", "0"], "invalid algorithm option inner_steps=0"),
    (["gridnav", "--inner-lr", "-0.1"], "invalid algorithm option inner_lr=-0.1"),
    (["gridnav", "-o", "warp=9"], "unknown algorithm option 'warp'"),
    (["gridnav", "-o", "outer_lr=fast"], "invalid algorithm option outer_lr='fast'"),
    (["gridnav", "--device", "tpu"], "device"),
    (["gridnav", "--algo", "cont-only"], "does not support discrete actions"),
    (["--config", "/no/such.toml"], "cannot read config file"),
    ([], "missing GAME"),
])
def test_bad_training_input_is_one_line(args: list[str], message: str, tmp_path: Path,
                                        continuous_only_algorithm: None) -> None:
    result = train(*args, "--run-dir", str(tmp_path / "run"))
    assert result.exit_code != 0
    assert result.output.startswith("Error: ") and message in result.output, result.output
    assert result.output.count("\n") == 1


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("pointnav", "--iterations", "1", "--run-dir", str(run), *TINY).exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = train("pointnav", "--iterations", "1", "--run-dir", str(run), *TINY)
    assert result.exit_code == 1 and "already holds a run" in result.output
    assert before == {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_resume_errors_leave_the_run_untouched(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("pointnav", "--iterations", "2", "--run-dir", str(run), *TINY).exit_code == 0
    result = train("gridnav", "--resume", str(run))
    assert result.exit_code == 1 and "is a run of 'pointnav', not 'gridnav'" in result.output
    result = train("--resume", str(run), "--meta-batch", "9")
    assert result.exit_code == 1
    assert "only --iterations, --device and --max-minutes" in result.output
    result = train("--resume", str(tmp_path / "nothing"))
    assert result.exit_code == 1 and "is not a gameadapt run" in result.output

    (run / "checkpoint.pt").write_bytes(b"\x00garbage")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = train("--resume", str(run), "--iterations", "4")
    assert result.exit_code == 1, result.output
    assert "is corrupt or not a gameadapt checkpoint" in result.output
    assert before == {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_resume_rejects_a_foreign_checkpoint(tmp_path: Path) -> None:
    pointnav, gridnav = tmp_path / "p", tmp_path / "g"
    assert train("pointnav", "--iterations", "2", "--run-dir", str(pointnav), *TINY).exit_code == 0
    assert train("gridnav", "--iterations", "2", "--run-dir", str(gridnav), *TINY).exit_code == 0
    (pointnav / "checkpoint.pt").write_bytes((gridnav / "checkpoint.pt").read_bytes())
    result = train("--resume", str(pointnav), "--iterations", "3")
    assert result.exit_code == 1
    assert "is for game 'gridnav', not 'pointnav'" in result.output


def test_evaluate_reports_every_method_and_reuses_trained_baselines(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("pointnav", "--iterations", "2", "--run-dir", str(run), *TINY).exit_code == 0
    args = ["evaluate", str(run), "--tasks", "3", "--episodes", "2", "--steps", "0,1,2",
            "--seeds", "0,1", "--baselines", "pretrain,scratch"]
    plot = tmp_path / "plot.png"
    result = CliRunner().invoke(cli, [*args, "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert set(data["methods"]) == {"maml", "pretrain", "scratch"}
    for method in data["methods"].values():
        assert len(method["mean"]) == len(method["std"]) == 3
        assert len(method["per_seed"]) == 2
    assert data["methods"]["pretrain"]["trained_iterations"] == 2
    assert data["methods"]["scratch"]["trained_iterations"] == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    baseline_checkpoint = run / "baselines" / "pretrain" / "checkpoint.pt"
    stamp = baseline_checkpoint.stat().st_mtime_ns
    again = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(again.output[again.output.index("{"):])["methods"] == data["methods"]
    assert baseline_checkpoint.stat().st_mtime_ns == stamp
    table = CliRunner().invoke(cli, args)
    assert "after 2 steps" in table.output and "pretrain" in table.output


@pytest.mark.parametrize(("args", "message"), [
    (["--steps", "a,b"], "--steps must be comma-separated integers"),
    (["--steps", "-1"], "--steps must list adaptation step counts >= 0"),
    (["--baselines", "nope"], "unknown algorithm 'nope'"),
    (["--tasks", "0"], "--tasks, --episodes and --trials must be >= 1"),
])
def test_bad_evaluation_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("pointnav", "--iterations", "1", "--run-dir", str(run), *TINY).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(run), *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


# -- stopping early: Ctrl-C, time budgets; baselines trained for the completed iterations ----
@pytest.mark.slow
def test_ctrl_c_saves_the_last_completed_iteration_and_resumes_bit_identical(tmp_path: Path
                                                                             ) -> None:
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    args = ["gridnav", "--iterations", "20", "--meta-batch", "3", "--envs-per-task", "4",
            "--checkpoint-every", "7"]
    assert train(*args, "--run-dir", str(whole)).exit_code == 0
    command = [sys.executable, "-m", "gameadapt", "train", *args, "--run-dir", str(stopped)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = stopped / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"continue with: gameadapt train --resume {stopped}" in stderr.splitlines()[-1]
    saved = torch.load(stopped / "checkpoint.pt", weights_only=True)["iteration"]
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert 3 <= saved < 20  # the checkpoint is the last completed iteration, whatever
    assert [row["iteration"] for row in rows] == list(range(saved))  # --checkpoint-every says
    progress = json.loads((stopped / "config.json").read_text())["progress"]
    assert progress == {"completed_iterations": saved, "stopped": "interrupted"}
    assert train("--resume", str(stopped)).exit_code == 0
    assert_same_policy(whole, stopped)
    assert returns(whole) == returns(stopped)


def test_max_minutes_stops_at_an_iteration_boundary_with_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train("gridnav", "--iterations", "50", "--max-minutes", "0.00001",
                   "--run-dir", str(run), *TINY)
    assert result.exit_code == 0, result.output
    assert "stopped by the time budget (--max-minutes 1e-05) after 1 of 50 iterations" in \
        result.output
    assert f"continue with: gameadapt train --resume {run}" in result.output
    assert torch.load(run / "checkpoint.pt", weights_only=True)["iteration"] == 1
    assert len(returns(run)) == 1
    config = json.loads((run / "config.json").read_text())
    assert config["progress"] == {"completed_iterations": 1, "stopped": "time budget"}
    assert config["train"]["iterations"] == 50
    bad = train("gridnav", "--max-minutes", "0", "--run-dir", str(tmp_path / "other"))
    assert bad.exit_code == 2 and "--max-minutes" in bad.output


def evaluate_json(run: Path, *extra: str):
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--tasks", "2", "--episodes", "2",
                                      "--steps", "0,1", "--seeds", "0", "--baselines", "pretrain",
                                      "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):]), result.output


def test_baselines_train_for_the_iterations_the_run_completed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("gridnav", "--iterations", "50", "--max-minutes", "0.00001",
                 "--run-dir", str(run), *TINY).exit_code == 0
    data, output = evaluate_json(run)
    assert data["methods"]["pretrain"]["trained_iterations"] == 1  # not the configured 50
    assert "the pretrain baseline is trained with the run's settings on the same variants" in \
        output and "meta-training: it 1/1" in output
    baseline = run / "baselines" / "pretrain"
    recorded = json.loads((baseline / "config.json").read_text())
    assert recorded["baseline_of"] == {"run": str(run), "run_iterations": 1}
    assert recorded["train"]["iterations"] == 1

    assert train("--resume", str(run), "--iterations", "3").exit_code == 0
    data, output = evaluate_json(run)
    assert data["methods"]["pretrain"]["trained_iterations"] == 3
    assert "the run has gone on to 3 iterations since it was trained for 1" in output
    assert json.loads((baseline / "config.json").read_text())["baseline_of"]["run_iterations"] == 3
    trained_on = policy_state(baseline)

    payload = torch.load(baseline / "checkpoint.pt", weights_only=True)
    payload["iteration"] = 7  # a baseline ahead of its run (e.g. one made by an older version)
    save_checkpoint(baseline / "checkpoint.pt", payload)
    data, output = evaluate_json(run)
    assert data["methods"]["pretrain"]["trained_iterations"] == 3
    assert "it was trained for 7 iterations, more than the run's 3" in output
    for name, value in policy_state(baseline).items():  # retrained from scratch: the same
        assert torch.equal(value, trained_on[name]), name
    assert not list((run / "baselines").glob(".pretrain.*"))


def test_evaluate_refuses_a_run_without_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train("gridnav", "--iterations", "2", "--run-dir", str(run), *TINY).exit_code == 0
    (run / "checkpoint.pt").unlink()
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--tasks", "2", "--episodes", "2"])
    assert result.exit_code == 1
    assert result.output == (f"Error: run {run} has no checkpoint yet; train it first (or "
                             f"continue it with gameadapt train --resume {run})\n")
    assert not (run / "baselines").exists()


@pytest.mark.slow
def test_training_without_a_terminal_prints_a_plain_progress_line_at_a_steady_rate(
        tmp_path: Path) -> None:
    def progress_lines(seconds: str, run: Path) -> list[str]:
        env = dict(os.environ, GAMEADAPT_PROGRESS_SECONDS=seconds)
        completed = subprocess.run(
            [sys.executable, "-m", "gameadapt", "train", "pointnav", "--iterations", "4",
             "--run-dir", str(run), *TINY], capture_output=True, text=True, env=env,
            timeout=300, check=False)
        assert completed.returncode == 0, completed.stderr
        return [line for line in completed.stderr.splitlines() if line.startswith("meta-")]

    every = progress_lines("0", tmp_path / "a")
    assert [line.split(",")[0] for line in every] == [f"meta-training: it {i}/4"
                                                      for i in range(1, 5)]
    assert all("pre " in line and "steps/s" in line and "left" in line for line in every)
    sparse = progress_lines("3600", tmp_path / "b")  # the first and the last iteration only
    assert [line.split(",")[0] for line in sparse] == ["meta-training: it 1/4",
                                                       "meta-training: it 4/4"]


@pytest.fixture
def huge_metrics_algorithm():
    """``maml`` whose iterations also report values float32 cannot hold."""
    registry = get_registry()
    maml = registry.algorithm("maml")

    def make(config):
        algorithm = maml.make(config)
        step = algorithm.meta_train_step

        def meta_train_step(*args, **kwargs):
            return {**step(*args, **kwargs), "huge": 1e39, "tiny": -1e300,
                    "not_a_number": float("nan"), "infinite": float("inf")}

        algorithm.meta_train_step = meta_train_step
        return algorithm

    registry.algorithms["huge-metrics"] = AlgorithmSpec("huge-metrics", "test", make)
    yield
    del registry.algorithms["huge-metrics"]


def test_no_metric_value_crashes_the_logger(tmp_path: Path, huge_metrics_algorithm) -> None:
    run = tmp_path / "run"
    result = train("pointnav", "--algo", "huge-metrics", "--iterations", "2",
                   "--run-dir", str(run), *TINY)
    assert result.exit_code == 0, result.output
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["huge"] == 1e39 and row["tiny"] == -1e300  # exact in metrics.jsonl
    assert row["not_a_number"] != row["not_a_number"] and row["infinite"] == float("inf")
    logged = {tag: dict(values)[1] for tag, values in tensorboard_scalars(run).items()}
    assert logged["train/huge"] == 3.4028234663852886e38  # clamped to float32's largest
    assert logged["train/tiny"] == -3.4028234663852886e38
    assert logged["train/not_a_number"] != logged["train/not_a_number"]
    assert logged["train/infinite"] == float("inf")


def test_library_training_and_evaluation_leave_the_process_alone(tmp_path: Path) -> None:
    """``train()`` and ``evaluate_run()`` change neither torch's threads nor its random state
    (the CLI and the bench tune the process; the library seeds inside ``fork_rng``)."""
    from gameadapt.train.evaluate import EvalSettings, evaluate_run
    from gameadapt.train.runs import RunDir
    from gameadapt.train.session import make_config, start_run
    from gameadapt.train.trainer import train as train_loop

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(1234)
        state = torch.get_rng_state()
        run = RunDir(tmp_path / "run")
        config = make_config({"game": "pointnav", "iterations": 1, "meta_batch": 2,
                              "envs_per_task": 2, "device": "cpu"})
        train_loop(start_run(config, run), run)
        evaluate_run(run.path, EvalSettings(tasks=2, episodes=2, steps=(0, 1), seeds=(0,)),
                     ["pretrain"])
        assert torch.get_num_threads() == 2
        assert torch.equal(torch.get_rng_state(), state)
    finally:
        torch.set_num_threads(threads)
