"""End to end with a third-party plugin: install it with the CLI, use it, uninstall it.

Runs the real console entry point in fresh processes (as a user would), so the plugin is
found through the entry-point metadata pip writes into this test environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gameadapt-example"


def gameadapt(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameadapt", *map(str, args)],
                          capture_output=True, text=True, timeout=600, check=False)


def ok(*args: object) -> str:
    completed = gameadapt(*args)
    assert completed.returncode == 0, (args, completed.stdout[-2000:], completed.stderr[-2000:])
    return completed.stdout


def plugin_names() -> set[str]:
    return {p["name"] for p in json.loads(ok("plugins", "list", "--json"))}


@pytest.mark.slow
def test_install_list_show_train_evaluate_export_play_uninstall(tmp_path: Path) -> None:
    assert "example" not in plugin_names()
    try:
        installed = ok("plugins", "install", EXAMPLE, "--yes")
        assert "plugin example 0.1.0: ok" in installed
        listed = {p["name"]: p for p in json.loads(ok("plugins", "list", "--json"))}
        assert listed["example"]["games"] == ["corridor", "mountaincar", "arena"]
        assert listed["example"]["errors"] == []
        shown = json.loads(ok("games", "show", "corridor", "--json"))
        assert shown["api"] == "native" and shown["action_space"] == {"type": "discrete",
                                                                      "n": 2, "start": 0}
        run, export = tmp_path / "run", tmp_path / "export"
        ok("train", "corridor", "--iterations", 2, "--meta-batch", 3, "--envs-per-task", 4,
           "--run-dir", run)
        assert (run / "checkpoint.pt").is_file()
        result = json.loads(ok("evaluate", run, "--tasks", 3, "--episodes", 4, "--steps", "0,1",
                               "--seeds", "0", "--baselines", "scratch", "--json"))
        assert set(result["methods"]) == {"maml", "scratch"}
        ok("export", run, "-o", export)
        manifest = json.loads((export / "policy.json").read_text())
        assert manifest["game"] == "corridor" and manifest["verification"]["passed"]
        played = ok("play", export, "--episodes", 2)
        assert "mean return over 2 episodes" in played
    finally:
        uninstalled = gameadapt("plugins", "uninstall", "gameadapt-example", "--yes")
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert "example" not in plugin_names()
    missing = gameadapt("games", "show", "corridor")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: unknown game 'corridor'")
