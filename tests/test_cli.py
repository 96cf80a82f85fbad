"""The CLI shell: listings, JSON output, variant handling and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from gameadapt import __version__
from gameadapt.cli import cli

BUILTIN_GAMES = {"gridnav": "native", "pointnav": "native", "cartpole": "gymnasium",
                 "duel": "pettingzoo"}


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input)
    return result


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point (python -m gameadapt) in a subprocess."""
    return subprocess.run([sys.executable, "-m", "gameadapt", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


def test_games_list_json_has_every_builtin_game() -> None:
    result = run("games", "list", "--json")
    assert result.exit_code == 0, result.output
    games = {g["id"]: g for g in json.loads(result.output)}
    for game_id, api in BUILTIN_GAMES.items():
        assert games[game_id]["api"] == api
        assert games[game_id]["plugin"] == game_id


def test_games_list_table() -> None:
    result = run("games", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["game", "api", "plugin", "description"]
    assert any(line.startswith("gridnav") for line in lines)


@pytest.mark.parametrize("game_id", sorted(BUILTIN_GAMES))
def test_games_show_json_lists_every_parameter_with_domain_default_and_split(game_id: str) -> None:
    result = run("games", "show", game_id, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["id"] == game_id
    assert data["observation_space"]["type"] == "box"
    params = data["variants"]["params"]
    assert params and all({"name", "part", "domain", "default", "description"} <= set(p)
                          for p in params)
    assert any("train" in p and "test" in p for p in params), "a game must declare a split"


def test_games_show_text_has_spaces_and_split_columns() -> None:
    result = run("games", "show", "gridnav")
    assert result.exit_code == 0
    assert "observation space: Box(shape=(9,)" in result.output
    assert "action space: Discrete(4)" in result.output
    assert "held-out" in result.output and "level.seed" in result.output


def test_games_sample_is_seeded_and_draws_from_the_split() -> None:
    first = json.loads(run("games", "sample", "gridnav", "-n", "6", "--seed", "1", "--json").output)
    again = json.loads(run("games", "sample", "gridnav", "-n", "6", "--seed", "1", "--json").output)
    other = json.loads(run("games", "sample", "gridnav", "-n", "6", "--seed", "2", "--json").output)
    assert first == again and first != other and len(first) == 6
    test = json.loads(run("games", "sample", "gridnav", "--split", "test", "-n", "6", "--json").output)
    assert all(v["level"]["seed"] >= 10_000 for v in test)
    assert all(0.1 <= v["rules"]["slip"] <= 0.2 for v in test)  # held-out: more slip
    assert all(0.0 <= v["rules"]["slip"] <= 0.1 for v in first)
    table = run("games", "sample", "gridnav", "-n", "2")
    assert table.exit_code == 0 and "level.seed" in table.output.splitlines()[0]


def test_games_play_renders_text_frames() -> None:
    result = run("games", "play", "gridnav", "-v", "seed=3", "-v", "controls=mirrored",
                 "--seed", "1", "--steps", "4")
    assert result.exit_code == 0, result.output
    assert result.output.count("A") >= 2 and "G" in result.output
    assert "step 1: action" in result.output
    assert "'controls': 'mirrored'" in result.output


def test_games_play_without_text_render_prints_observations() -> None:
    result = run("games", "play", "cartpole", "-v", "gravity=11.5", "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "observation [" in result.output and "step 3" in result.output


def test_games_play_reads_a_variant_file(tmp_path) -> None:
    variant_file = tmp_path / "variant.toml"
    variant_file.write_text('[level]\nseed = 42\n[rules]\nslip = 0.1\n')
    result = run("games", "play", "gridnav", "--variant-file", str(variant_file), "--steps", "1")
    assert result.exit_code == 0, result.output
    assert "'seed': 42" in result.output and "'slip': 0.1" in result.output


def test_plugins_list_all_shows_builtins() -> None:
    data = json.loads(run("plugins", "list", "--all", "--json").output)
    builtin = {p["name"]: p for p in data if p["builtin"]}
    assert builtin["gridnav"]["games"] == ["gridnav"]
    assert builtin["gridnav"]["hooks"] == ["register_games"]
    assert builtin["gridnav"]["errors"] == []


def test_algorithms_list_json() -> None:
    result = run("algorithms", "list", "--json")
    assert result.exit_code == 0
    assert isinstance(json.loads(result.output), list)


def test_plugins_install_asks_first_and_a_no_runs_nothing(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    result = run("plugins", "install", "some-package", input="n\n")
    assert result.exit_code != 0
    assert calls == []


def test_plugins_install_calls_pip_of_this_interpreter_with_an_argument_list(monkeypatch) -> None:
    calls = []

    def fake_run(command, check):
        calls.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(subprocess, "run", fake_run)
    result = run("plugins", "install", "pkg-a", "pkg-b", "--yes")
    assert len(calls) == 1
    command = calls[0]
    assert command[:5] == [sys.executable, "-m", "pip", "--disable-pip-version-check", "install"]
    assert command[5] == "--report" and command[6].endswith(".json")  # what pip installed
    assert command[7:] == ["pkg-a", "pkg-b"]
    assert result.exit_code == 1
    assert result.output.strip() == "Error: pip install failed with exit code 3"


@pytest.mark.parametrize(("args", "message"), [
    (["games", "show", "nope"], "Error: unknown game 'nope' (installed: "),
    (["games", "sample", "nope"], "Error: unknown game 'nope'"),
    (["games", "play", "gridnav", "-v", "colour=red"], "Error: unknown variant parameter 'colour'"),
    (["games", "play", "gridnav", "-v", "slip=2"], "Error: rules.slip: 2.0 is outside 0.0..0.5"),
    (["games", "play", "gridnav", "-v", "seed"], "Error: expected key=value, got 'seed'"),
    (["games", "play", "gridnav", "--variant-file", "/no/such/file.json"], "Error: "),
    (["games", "sample", "gridnav", "--split", "dev"], "Error: Invalid value for '--split'"),
    (["games", "frobnicate"], "Error: No such command 'frobnicate'"),
])
def test_bad_input_is_one_line_on_stderr_with_nonzero_exit(args: list[str], message: str) -> None:
    completed = run_process(*args)
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith(message), completed.stderr
    assert completed.stdout == ""


@pytest.mark.parametrize("args", [[], ["games"], ["plugins"], ["algorithms"]])
def test_a_group_without_a_subcommand_prints_its_help_and_exits_0(args: list[str]) -> None:
    completed = run_process(*args)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"Usage: gameadapt {' '.join(args)}".rstrip() + " [OPTIONS]")
    assert "Commands:" in completed.stdout and completed.stderr == ""


def progress_row(iteration: int) -> dict[str, float]:
    return {"iteration": iteration, "pre_return": -123.456, "post_return": -98.765,
            "env_steps_per_s": 1_234_567.0}


def test_the_progress_line_fits_80_columns_and_degrades_in_narrower_ones() -> None:
    from gameadapt.cli.progress import TrainProgress, fit_line

    progress = TrainProgress(0, 100_000, interactive=True)
    fields = progress._fields(progress_row(12_344), 12_345, progress._started + 3600.0)
    assert set(fields) == {"iteration", "bar", "returns", "speed", "left"}
    full = fit_line(fields, 79)
    assert full == ("it 12345/100000 [#.........] pre -123.46 post -98.77 1.2M steps/s "
                    "7:06:01 left")  # 3600 s for 12345 iterations: 87655 to go
    assert len(full) <= 79
    assert fit_line(fields, 60) == "it 12345/100000 pre -123.46 post -98.77 1.2M steps/s"
    assert fit_line(fields, 45) == "it 12345/100000 pre -123.46 post -98.77"
    assert fit_line(fields, 20) == "it 12345/100000 pre "
    assert fit_line(fields, 0) == ""


def test_the_time_left_is_capped_by_a_time_budget() -> None:
    from gameadapt.cli.progress import TrainProgress

    progress = TrainProgress(0, 100_000, interactive=True, budget_seconds=900.0)
    fields = progress._fields(progress_row(9), 10, progress._started + 600.0)
    assert fields["left"] == "5:00 left"  # 900 s budget, 600 s spent (not 99,990 iterations)


def test_the_progress_line_is_redrawn_in_place_on_a_terminal(monkeypatch) -> None:
    import io

    from gameadapt.cli.progress import TrainProgress

    monkeypatch.setenv("COLUMNS", "80")
    stream = io.StringIO()
    progress = TrainProgress(0, 3, stream=stream, interactive=True)
    for i in range(3):
        progress(progress_row(i))
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    drawn = [part.replace("\x1b[K", "") for part in text.strip().split("\r") if part]
    assert [line.split()[1] for line in drawn] == ["1/3", "2/3", "3/3"]
    assert all(len(line) < 80 for line in drawn)


def test_without_a_terminal_progress_is_printed_every_n_seconds(monkeypatch) -> None:
    import io

    from gameadapt.cli import progress as progress_module

    clock = iter([0.0, 1.0, 5.0, 11.0, 12.0, 30.0, 31.0])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = progress_module.TrainProgress(0, 6, stream=stream, interactive=False,
                                             every_seconds=10.0)
    for i in range(6):  # at t = 1, 5, 11, 12, 30, 31 s
        progress(progress_row(i))
    printed = [line.split(",")[0] for line in stream.getvalue().splitlines()]
    assert printed == ["meta-training: it 1/6", "meta-training: it 3/6", "meta-training: it 5/6",
                       "meta-training: it 6/6"]
