"""``gameadapt adapt``: adapt a tiny run to one variant, save, load back; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.hashrandom import derive_seed as derived_seed
from gameadapt.ship.adapt import adapt_params, measure
from gameadapt.ship.sources import load_policy_source

TINY = ["--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2"]
TARGETS = {  # a held-out-ish variant per built-in game
    "gridnav": ["-v", "level.seed=12345", "-v", "controls=rotated_270"],
    "pointnav": ["-v", "goal_x=-0.4", "-v", "goal_y=0.2"],
    "cartpole": ["-v", "gravity=12.5", "-v", "level.max_steps=60"],
}


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapt-runs")
    made = {}
    for game in TARGETS:
        result = invoke("train", game, *TINY, "--run-dir", root / game)
        assert result.exit_code == 0, result.output
        made[game] = root / game
    return made


@pytest.mark.parametrize("game", sorted(TARGETS))
def test_adapt_saves_the_adapted_policy_with_provenance(game: str, runs: dict[str, Path],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "adapted"
    result = invoke("adapt", runs[game], *TARGETS[game], "--episodes", "3", "--steps", "2",
                    "--eval-episodes", "3", "--seed", "7", "-o", out)
    assert result.exit_code == 0, result.output
    assert "before" in result.output and "after 2 step(s)" in result.output

    adapted = load_policy_source(out)
    assert adapted.kind == "adapted" and adapted.spec.id == game
    record = adapted.provenance["adapted"]
    assert adapted.provenance["run"] == str(runs[game])
    assert record["variant"] == adapted.variant
    assert (record["episodes"], record["steps"], record["seed"]) == (3, 2, 7)
    assert record["data_seed"] != record["eval_seed"]  # fresh evaluation episodes
    assert {"return_before", "return_after", "greedy", "sampled", "success"} <= set(record)
    assert (record["sampled"]["return_before"], record["sampled"]["return_after"]) == (
        record["return_before"], record["return_after"])  # the compatible fields are sampled
    for mode in ("sampled", "greedy"):
        assert f"{mode}:" in result.output
    assert json.loads((out / "adapted.json").read_text())["provenance"] == adapted.provenance

    # the saved policy is exactly the run's policy after the same inner steps on the same data
    source = load_policy_source(runs[game])
    expected = adapt_params(source, adapted.variant, 3, 2, derived_seed(7, 0))
    saved = adapted.policy.state_dict()
    for name, value in expected.items():
        assert torch.equal(saved[name], value), name
    assert any(not torch.equal(value, source.session.params[name])
               for name, value in expected.items())
    for name in ("obs_mean", "obs_var", "obs_count"):  # normalisation is kept
        assert torch.equal(saved[name], source.policy.state_dict()[name])

    # the evaluation: greedy and sampled returns on the same fresh episodes, and success
    for mode, params in (("greedy", source.session.params), ("sampled", expected)):
        measured = measure(source, {k: v.detach() for k, v in params.items()}, adapted.variant,
                           3, record["eval_seed"], greedy=mode == "greedy")
        when = "return_before" if mode == "greedy" else "return_after"
        assert record[mode][when] == measured.mean_return
    success = record["success"]
    if source.spec.success is None:
        assert success is None and "success rate" not in result.output
    else:
        assert success["means"] == source.spec.success and "success rate" in result.output
        for mode in ("sampled", "greedy"):
            assert all(0 <= success[mode][when] <= 1 for when in ("before", "after"))


def test_the_target_variant_is_applied(runs: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("adapt", runs["gridnav"], *TARGETS["gridnav"], "--episodes", "2",
                    "--eval-episodes", "2", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    variant = load_policy_source(tmp_path / "a").variant
    assert variant["level"]["seed"] == 12345 and variant["rules"]["controls"] == "rotated_270"


def test_an_existing_output_is_never_overwritten(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("adapt", runs["pointnav"], *TARGETS["pointnav"], "-o", out)
    assert result.exit_code != 0
    assert result.output.startswith("Error:") and result.output.count("\n") == 1
    assert "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("args, message", [
    ([], "--variant"),
    (["-v", "rules.speed=7"], "outside"),
    (["-v", "no_such_param=1"], "unknown variant parameter"),
    (["-v", "speed=0.5", "--episodes", "0"], "--episodes"),
])
def test_bad_input_is_one_line(args: list[str], message: str, runs: dict[str, Path],
                               tmp_path: Path) -> None:
    result = invoke("adapt", runs["pointnav"], *args, "-o", tmp_path / "out")
    assert result.exit_code != 0
    assert result.output.startswith("Error:") and result.output.count("\n") == 1, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_run_is_one_line(tmp_path: Path) -> None:
    result = invoke("adapt", tmp_path / "nope", "-v", "speed=0.5", "-o", tmp_path / "out")
    assert result.exit_code != 0 and result.output.count("\n") == 1


def test_an_rl2_run_is_refused_in_one_line(tmp_path: Path) -> None:
    run = tmp_path / "rl2"
    result = invoke("train", "gridnav", "--algo", "rl2", *TINY, "-o", "hidden_size=8",
                    "--run-dir", run)
    assert result.exit_code == 0, result.output
    result = invoke("adapt", run, *TARGETS["gridnav"], "-o", tmp_path / "out")
    assert result.exit_code != 0
    assert result.output.startswith("Error:") and result.output.count("\n") == 1, result.output
    assert "hidden state" in result.output and "nothing to adapt" in result.output
    assert "export" in result.output and not (tmp_path / "out").exists()
