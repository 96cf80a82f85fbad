"""Every number has a domain, every output path is checked before the work starts.

Seeds in one range for every command, counts with upper bounds (static ones and the memory
estimate of a training iteration or an evaluation), non-finite or overflowing algorithm
options, impossible output paths and empty strings: each is one ``Error:`` line, a non-zero
exit, and nothing made or changed on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from gameadapt.cli import cli
from gameadapt.host.registry import get_registry
from gameadapt.limits import MAX_SAMPLE_VARIANTS, SEED_MAX, ignore_memory_limit
from gameadapt.train import memory
from gameadapt.train.session import make_config

TINY = ["--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error_line(result: Result, fragment: str, code: int | None = None) -> None:
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert fragment in result.output, result.output


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so that "nothing was made" is an empty listing."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-iteration maml run on gridnav (read only by the tests)."""
    run = tmp_path_factory.mktemp("domains") / "run"
    result = invoke("train", "gridnav", *TINY, "--run-dir", run)
    assert result.exit_code == 0, result.output
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# -- seeds ---------------------------------------------------------------------------------
SEED_COMMANDS = {
    "games sample": ["games", "sample", "gridnav", "--seed"],
    "games play": ["games", "play", "gridnav", "--seed"],
    "train": ["train", "gridnav", *TINY, "--seed"],
    "play": ["play", "nowhere", "--seed"],
    "adapt": ["adapt", "nowhere", "-v", "rules.slip=0.1", "-o", "out", "--seed"],
    "latents": ["latents", "nowhere", "--plot", "p.png", "--seed"],
}


@pytest.mark.parametrize("command", sorted(SEED_COMMANDS))
@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**63), str(2**64 + 5), "1.5", "abc"])
def test_every_seed_outside_the_one_range_is_refused_before_any_work(
        command: str, seed: str, empty_cwd: Path) -> None:
    result = invoke(*SEED_COMMANDS[command], seed)
    assert_one_error_line(result, "Invalid value for '--seed'", code=2)
    assert f"from 0 to {SEED_MAX}" in result.output or "not an integer seed" in result.output
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize("seeds", ["0,-1", f"0,{2**32}", ",".join(["1"] * 101)])
def test_evaluate_seeds_share_the_range(seeds: str, empty_cwd: Path) -> None:
    result = invoke("evaluate", "nowhere", "--seeds", seeds)
    assert_one_error_line(result, "--seeds", code=1)


@pytest.mark.parametrize("command", ["games sample", "games play"])
def test_the_largest_seed_works_where_gymnasium_seeds(command: str) -> None:
    result = invoke(*SEED_COMMANDS[command], str(SEED_MAX))
    assert result.exit_code == 0, result.output


# -- static upper bounds -------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (["games", "sample", "gridnav", "-n", str(10**23)], "'-n'"),
    (["games", "sample", "gridnav", "-n", "1e23"], "'-n'"),
    (["games", "play", "gridnav", "--steps", str(10**9)], "'--steps'"),
    (["play", "nowhere", "--episodes", str(10**9)], "'--episodes'"),
    (["evaluate", "nowhere", "--tasks", str(10**9)], "'--tasks'"),
    (["evaluate", "nowhere", "--episodes", str(10**9)], "'--episodes'"),
    (["evaluate", "nowhere", "--trials", str(10**9)], "'--trials'"),
    (["evaluate", "nowhere", "--budgets", "0,5000"], "--budgets: 5000 is not from 0 to 1000"),
    (["evaluate", "nowhere", "--steps", "0,101"], "--steps: 101 is not from 0 to 100"),
    (["adapt", "nowhere", "-v", "rules.slip=0.1", "-o", "out", "--episodes", str(10**9)],
     "'--episodes'"),
    (["adapt", "nowhere", "-v", "rules.slip=0.1", "-o", "out", "--steps", "101"], "'--steps'"),
    (["latents", "nowhere", "--plot", "p.png", "--tasks", str(10**9)], "'--tasks'"),
    (["train", "gridnav", "--iterations", str(10**8)], "'--iterations'"),
    (["train", "gridnav", "--checkpoint-every", str(10**8)], "'--checkpoint-every'"),
    (["train", "gridnav", "--inner-steps", "101"], "'--inner-steps'"),
])
def test_counts_have_upper_bounds(args: list[str], fragment: str, empty_cwd: Path) -> None:
    assert_one_error_line(invoke(*args), fragment)
    assert list(empty_cwd.iterdir()) == []


def test_games_sample_takes_its_largest_count_quickly() -> None:
    result = invoke("games", "sample", "gridnav", "-n", str(MAX_SAMPLE_VARIANTS), "--json")
    assert result.exit_code == 0


# -- algorithm options ---------------------------------------------------------------------
@pytest.mark.parametrize("option, fragment", [
    ("init_log_std=nan", "init_log_std='nan': must be a finite number"),
    ("outer_lr=inf", "outer_lr='inf': must be a finite number"),
    ("inner_lr=1e400", "inner_lr='1e400': must be a finite number"),
    ("outer_lr=1e308", "outer_lr=1e+308: must be in (0, 10]"),
    ("init_log_std=50", "init_log_std=50.0: must be from -20 to 2"),
    ("clip=-1", "clip=-1.0: must be in (0, 1)"),
    ("max_grad_norm=1e300", "max_grad_norm=1e+300: must be from 0 to 1e+06"),
    ("outer_epochs=100000", "outer_epochs=100000: must be from 1 to 1000"),
    ("hidden_sizes=5000", "hidden_sizes=(5000,): must list 1 to 16 layer widths"),
    ("hidden_sizes=" + ",".join(["8"] * 17), "must list 1 to 16 layer widths, each from 1 to 4096"),
    ("hidden_sizes=" + "9" * 5000, "hidden_sizes="),
])
def test_maml_options_have_finite_bounded_domains(option: str, fragment: str,
                                                   empty_cwd: Path) -> None:
    result = invoke("train", "gridnav", *TINY, "--run-dir", "r", "-o", option)
    assert_one_error_line(result, "invalid algorithm option", code=1)
    assert fragment in result.output
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize("algo, option, fragment", [
    ("rl2", "lr=100", "lr=100.0: must be in (0, 10]"),
    ("rl2", "hidden_size=100000", "hidden_size=100000: must be from 1 to 4096"),
    ("rl2", "entropy_coef=1e9", "entropy_coef=1000000000.0: must be from 0 to 1000"),
    ("rl2", "init_log_std=-inf", "must be a finite number"),
    ("context", "kl_weight=nan", "must be a finite number"),
    ("context", "encoder_sizes=0", "encoder_sizes=(0,): must list 1 to 16 layer widths"),
    ("context", "gae_lambda=2", "gae_lambda=2.0: must be from 0 to 1"),
])
def test_trial_family_options_have_bounded_domains(algo: str, option: str, fragment: str,
                                                    empty_cwd: Path) -> None:
    result = invoke("train", "gridnav", *TINY, "--algo", algo, "--run-dir", "r", "-o", option)
    assert_one_error_line(result, fragment, code=1)
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize("value", ["abc", "0", "-3", "100000", "1.5"])
def test_torch_threads_setting_is_checked_before_a_run_is_made(
        value: str, empty_cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEADAPT_TORCH_THREADS", value)
    result = invoke("train", "gridnav", *TINY, "--run-dir", "r")
    assert_one_error_line(result, f"invalid GAMEADAPT_TORCH_THREADS {value!r}: must be an "
                                  f"integer from 1 to 1024", code=1)
    assert list(empty_cwd.iterdir()) == []


# -- memory --------------------------------------------------------------------------------
def test_a_training_iteration_that_cannot_fit_is_refused_before_anything_is_made(
        empty_cwd: Path) -> None:
    result = invoke("train", "gridnav", "--meta-batch", "100000", "--envs-per-task", "1000",
                    "--run-dir", "r")
    assert_one_error_line(result, "one iteration of maml on gridnav (100000 tasks x 1000 "
                                  "episodes, horizon 40) would need about", code=1)
    assert "of the" in result.output and "use smaller settings, or --ignore-memory-limit" \
        in result.output
    assert list(empty_cwd.iterdir()) == []


@pytest.fixture
def tiny_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with 1 MiB available: every job is above the limit."""
    monkeypatch.setattr(memory, "available_memory", lambda: 2**20)


def test_ignore_memory_limit_lets_a_run_go_bigger_and_resets(empty_cwd: Path,
                                                              tiny_memory: None) -> None:
    refused = invoke("train", "gridnav", *TINY, "--run-dir", "r")
    assert_one_error_line(refused, "the limit is 0.00 GiB (50% of the 0.00 GiB available)")
    assert list(empty_cwd.iterdir()) == []
    result = invoke("train", "gridnav", *TINY, "--run-dir", "r", "--ignore-memory-limit")
    assert result.exit_code == 0, result.output
    assert ignore_memory_limit.get() is False  # set for that command only
    resumed = invoke("train", "--resume", "r", "--iterations", "2")
    assert_one_error_line(resumed, "would need about")
    resumed = invoke("train", "--resume", "r", "--iterations", "2", "--ignore-memory-limit")
    assert resumed.exit_code == 0, resumed.output


def test_an_evaluation_that_cannot_fit_is_refused(tiny_run: Path, tiny_memory: None) -> None:
    before = snapshot(tiny_run.parent)
    result = invoke("evaluate", tiny_run, "--baselines", "")
    assert_one_error_line(result, "evaluating with --tasks 40 --episodes 20 --trials 5 "
                                  "(largest budget 20, horizon 40) would need about", code=1)
    assert snapshot(tiny_run.parent) == before


@pytest.mark.parametrize("algo, low, high", [("maml", 60, 250), ("rl2", 65, 270),
                                             ("context", 50, 210)])
def test_the_estimate_is_near_the_measured_peak(algo: str, low: int, high: int) -> None:
    """Measured peak RSS above the session's (resource.getrusage), 20 x 20 on gridnav: maml
    121 MiB, rl2 132 MiB, context 97 MiB; the estimate stays within 0.5x-2x of them."""
    config = make_config({"game": "gridnav", "algorithm": algo})
    spec = get_registry().game("gridnav")
    algorithm = get_registry().algorithm(algo).make({})
    estimate = memory.estimate("x", memory.training_workload(config, spec, algorithm), 40, spec,
                               algorithm)
    measured = {"maml": 121, "rl2": 132, "context": 97}[algo]
    assert low <= estimate.total / 2**20 <= high
    assert 0.5 <= estimate.total / 2**20 / measured <= 2


def test_parameters_are_counted_without_allocating() -> None:
    algorithm = get_registry().algorithm("maml").make({"hidden_sizes": "4096,4096,4096"})
    spec = get_registry().game("gridnav")
    count, width = memory.policy_size(algorithm, spec.observation_space, spec.action_space)
    assert count > 2 * 4096 * 4096 and width >= 3 * 4096


# -- output paths and empty strings --------------------------------------------------------
@pytest.fixture
def a_file(empty_cwd: Path) -> Path:
    path = empty_cwd / "a_file"
    path.write_bytes(b"keep me")
    return path


@pytest.mark.parametrize("args, fragment", [
    (["train", "gridnav", *TINY, "--run-dir", ""], "the empty string is not a path"),
    (["train", "gridnav", *TINY, "--run-dir", "a_file/run"],
     "cannot write a_file/run: a_file is a file, not a folder"),
    (["train", "gridnav", *TINY, "--run-dir", "a_file"], "is a file"),
    (["train", "--resume", ""], "the empty string is not a path"),
    (["train", "gridnav", *TINY, "--config", ""], "the empty string is not a path"),
    (["evaluate", "nowhere", "--plot", "x.txt"], "x.txt must end in .png"),
    (["evaluate", "nowhere", "--plot", "a_file/x.png"], "a_file is a file, not a folder"),
    (["evaluate", ""], "the empty string is not a path"),
    (["latents", "nowhere", "--plot", "a_file/deeper/x.png"], "a_file is a file"),
    (["latents", "nowhere", "--plot", "x.svg"], "x.svg must end in .png"),
    (["adapt", "nowhere", "-v", "rules.slip=0.1", "-o", "a_file/out"], "a_file is a file"),
    (["adapt", "nowhere", "-v", "rules.slip=0.1", "-o", ""], "the empty string"),
    (["export", "nowhere", "-o", "a_file/out"], "a_file is a file"),
    (["export", ""], "the empty string is not a path"),
    (["play", ""], "the empty string is not a path"),
    (["games", "play", "gridnav", "--variant-file", ""], "the empty string is not a path"),
])
def test_impossible_output_paths_and_empty_strings_are_refused_first(
        args: list[str], fragment: str, a_file: Path, empty_cwd: Path) -> None:
    result = invoke(*args)
    assert_one_error_line(result, fragment, code=2)
    assert [p.name for p in empty_cwd.iterdir()] == ["a_file"]
    assert a_file.read_bytes() == b"keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_parent_is_refused(empty_cwd: Path) -> None:
    locked = empty_cwd / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("train", "gridnav", *TINY, "--run-dir", locked / "run")
        assert_one_error_line(result, "no permission to write in", code=2)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_version_with_extra_arguments_is_a_usage_error() -> None:
    result = invoke("--version", "extra")
    assert_one_error_line(result, "--version takes no other arguments, got 'extra'", code=2)
    assert invoke("--version").exit_code == 0
