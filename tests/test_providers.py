"""Runs, adapted policies and exports record which distribution provided their game and algorithm.

Loading one again checks the record against the installed plugins: another distribution (or
none) is one ``Error:`` line, another version of the same one a ``Warning:`` line, a file made
before the record existed a ``Note:`` line. (A provider that was uninstalled is covered by
``tests/test_plugin_e2e.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gameadapt import __version__
from gameadapt.cli import cli

TINY = ["--meta-batch", "2", "--envs-per-task", "2"]


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1-iteration gridnav run, an adapted policy of it and an export of that."""
    root = tmp_path_factory.mktemp("providers")
    run, adapted, export = root / "run", root / "adapted", root / "export"
    assert invoke("train", "gridnav", "--iterations", 1, *TINY, "--run-dir", run).exit_code == 0
    result = invoke("adapt", run, "-v", "seed=3", "--episodes", 2, "--eval-episodes", 2,
                    "-o", adapted)
    assert result.exit_code == 0, result.output
    assert invoke("export", adapted, "-o", export).exit_code == 0
    return {"run": run, "adapted": adapted, "export": export}


BUILTIN = {"game": {"plugin": "gridnav", "distribution": "gameadapt", "version": __version__},
           "algorithm": {"plugin": "maml", "distribution": "gameadapt", "version": __version__}}


def test_runs_adapted_policies_and_exports_record_their_providers(made: dict[str, Path]) -> None:
    assert json.loads((made["run"] / "config.json").read_text())["providers"] == BUILTIN
    assert json.loads((made["adapted"] / "adapted.json").read_text())["providers"] == BUILTIN
    assert json.loads((made["export"] / "policy.json").read_text())["providers"] == BUILTIN


def rewrite(path: Path, key: str, change) -> None:
    data = json.loads(path.read_text())
    data[key] = change(data[key])
    path.write_text(json.dumps(data))


def with_game_provider(**fields):
    return lambda providers: {**providers, "game": {**providers["game"], **fields}}


def copy_of(tmp_path: Path, folder: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


def lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_a_run_whose_game_comes_from_another_distribution_is_refused(made, tmp_path) -> None:
    run = copy_of(tmp_path, made["run"])
    rewrite(run / "config.json", "providers", with_game_provider(distribution="gameadapt-grid"))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for args in (["train", "--resume", run, "--iterations", 2],
                 ["evaluate", run, "--tasks", 2, "--episodes", 2, "--seeds", 0, "--baselines", ""],
                 ["export", run, "-o", tmp_path / "out"]):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert lines(result.output, "Error:") == [
            f"Error: run {run} was made with game 'gridnav' from gameadapt-grid {__version__}, "
            f"but plugin 'gridnav' of gameadapt {__version__} provides it now; reinstall "
            f"gameadapt-grid or uninstall gameadapt"]
    assert before == {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert not (tmp_path / "out").exists()


def test_another_version_of_the_same_distribution_warns_once_and_goes_on(made, tmp_path) -> None:
    run = copy_of(tmp_path, made["run"])
    rewrite(run / "config.json", "providers", with_game_provider(version="0.0.1"))
    result = invoke("train", "--resume", run, "--iterations", 2)
    assert result.exit_code == 0, result.output
    assert lines(result.output, "Warning:") == [
        f"Warning: run {run} was made with game 'gridnav' from gameadapt 0.0.1; version "
        f"{__version__} is installed"]


def test_a_run_made_before_the_record_existed_loads_with_one_note(made, tmp_path) -> None:
    run = copy_of(tmp_path, made["run"])
    config = json.loads((run / "config.json").read_text())
    del config["providers"]
    (run / "config.json").write_text(json.dumps(config))
    result = invoke("evaluate", run, "--tasks", 2, "--episodes", 2, "--seeds", 0,
                    "--baselines", "")
    assert result.exit_code == 0, result.output
    assert lines(result.output, "Note:") == [
        f"Note: run {run} was made before gameadapt recorded which distributions provide its "
        f"plugins; using the installed ones"]


def test_an_adapted_policy_from_another_distribution_is_refused(made, tmp_path) -> None:
    from gameadapt.train.checkpoint import load_checkpoint, save_checkpoint

    adapted = copy_of(tmp_path, made["adapted"])
    payload = load_checkpoint(adapted / "adapted.pt")
    payload["providers"]["algorithm"]["distribution"] = "gameadapt-maml"
    save_checkpoint(adapted / "adapted.pt", payload)  # re-checksummed: a genuine record
    result = invoke("export", adapted, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert lines(result.output, "Error:")[0].startswith(
        f"Error: adapted policy {adapted} was made with algorithm 'maml' from gameadapt-maml")


def test_play_checks_the_exports_game_provider(made, tmp_path) -> None:
    export = copy_of(tmp_path, made["export"])
    rewrite(export / "policy.json", "providers", with_game_provider(distribution="other-games"))
    result = invoke("play", export, "--episodes", 1)
    assert result.exit_code == 1
    assert lines(result.output, "Error:") == [
        f"Error: export {export} was made with game 'gridnav' from other-games {__version__}, "
        f"but plugin 'gridnav' of gameadapt {__version__} provides it now; reinstall "
        f"other-games or uninstall gameadapt"]
    good = invoke("play", made["export"], "--episodes", 1)
    assert good.exit_code == 0 and not lines(good.output, "Warning:")
