"""rl2 runs through the CLI, and the evaluation's experience axis for every family."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from test_trainer import TINY, assert_same_policy, returns, train

RL2_TINY = [*TINY, "--algo", "rl2", "-o", "hidden_size=16"]
QUICK_EVAL = ["--tasks", "3", "--episodes", "2", "--steps", "0,1", "--seeds", "0,1",
              "--budgets", "0,1,3", "--trials", "2"]


def evaluate_json(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


@pytest.mark.parametrize("game", ["gridnav", "duel"])
def test_resumed_rl2_run_is_bit_identical(tmp_path: Path, game: str) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train(game, "--iterations", "3", "--run-dir", str(whole), *RL2_TINY).exit_code == 0
    assert train(game, "--iterations", "1", "--run-dir", str(split), *RL2_TINY).exit_code == 0
    result = train("--resume", str(split), "--iterations", "3")
    assert result.exit_code == 0, result.output
    assert_same_policy(whole, split)
    assert returns(whole) == returns(split)


@pytest.mark.parametrize("args", [("pointnav",), ("cartpole",), ("duel", "--share-policy")])
def test_rl2_trains_on_every_kind_of_game(tmp_path: Path, args: tuple[str, ...]) -> None:
    run = tmp_path / "run"
    result = train(*args, "--iterations", "1", "--run-dir", str(run), *RL2_TINY)
    assert result.exit_code == 0, result.output
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert row["env_steps"] > 0 and "value_loss" in row


def test_evaluation_has_the_experience_axis_for_every_method(tmp_path: Path) -> None:
    rl2, maml = tmp_path / "rl2", tmp_path / "maml"
    assert train("gridnav", "--iterations", "2", "--run-dir", str(rl2), *RL2_TINY).exit_code == 0
    assert train("gridnav", "--iterations", "2", "--run-dir", str(maml), *TINY).exit_code == 0
    plot = tmp_path / "plot.png"
    data = evaluate_json(str(rl2), *QUICK_EVAL, "--compare", str(maml),
                         "--baselines", "pretrain,scratch", "--plot", str(plot))
    assert set(data["methods"]) == {"rl2", "maml", "pretrain", "scratch"}
    assert data["budgets"] == [0, 1, 3, 4]  # the run's 4 episodes per task is added
    assert data["success_means"] == "reached the goal"
    for name, method in data["methods"].items():
        for mode in ("greedy", "sampled"):
            curve = method["experience"][mode]
            for quantity in ("return", "success"):
                assert len(curve[quantity]["mean"]) == 4, (name, mode, quantity)
                assert len(curve[quantity]["per_seed"]) == 2
            assert all(0 <= rate <= 1 for rate in curve["success"]["mean"])
    assert data["methods"]["rl2"]["family"] == "recurrent"
    assert data["methods"]["rl2"]["trial_episodes"] == 2
    assert "mean" not in data["methods"]["rl2"]  # no per-step columns for the recurrent family
    assert len(data["methods"]["maml"]["mean"]) == 2
    for baseline in ("pretrain", "scratch"):
        tuned = data["methods"][baseline]["finetune_lr"]
        assert tuned["grid"] == [0.01, 0.03, 0.1, 0.3, 1.0]
        best = max(range(5), key=lambda i: tuned["train_returns"][i])
        assert tuned["chosen"] == tuned["grid"][best]
    assert "finetune_lr" not in data["methods"]["maml"]  # a meta-learner adapts at its own
    reference = data["reference"]
    assert reference["return"]["mean"][0] > max(
        max(m["experience"]["greedy"]["return"]["mean"]) for m in data["methods"].values())
    assert reference["success"]["mean"][0] == 1.0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = CliRunner().invoke(cli, ["evaluate", str(rl2), *QUICK_EVAL, "--baselines", ""])
    assert table.exit_code == 0, table.output
    assert "n=3*" not in table.output and "*" in table.output  # rl2 beyond its 2 episodes
    assert "reference" in table.output and "success rate (reached the goal)" in table.output


def test_same_seed_same_experience_curve(tmp_path: Path) -> None:
    run = tmp_path / "rl2"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *RL2_TINY).exit_code == 0
    first = evaluate_json(str(run), *QUICK_EVAL, "--baselines", "")
    again = evaluate_json(str(run), *QUICK_EVAL, "--baselines", "")
    assert first["methods"] == again["methods"]


@pytest.mark.parametrize(("args", "message"), [
    (["--budgets", "0,-1"], "--budgets must list episode counts from 0 to 1000, e.g. 0,1,2,5,20"),
    (["--trials", "0"], "--tasks, --episodes and --trials must be >= 1"),
])
def test_bad_experience_settings_are_one_line_errors(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    run = tmp_path / "run"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *RL2_TINY).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(run), *args])
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"


def test_compare_refuses_a_run_of_another_game(tmp_path: Path) -> None:
    grid, point = tmp_path / "grid", tmp_path / "point"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(grid), *RL2_TINY).exit_code == 0
    assert train("pointnav", "--iterations", "1", "--run-dir", str(point), *TINY).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", str(grid), "--compare", str(point)])
    assert result.exit_code == 1
    assert result.output == (f"Error: --compare {point} is a run of 'pointnav', not "
                             f"'gridnav'\n")
