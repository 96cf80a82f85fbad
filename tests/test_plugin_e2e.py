"""End to end with third-party plugins: install them with the CLI, use them, uninstall them.

Runs the real console entry point in fresh processes of a throwaway virtual environment (see
``conftest.throwaway_venv``), as a user would: the plugins are found through the entry-point
metadata pip writes there, and the test environment itself is never changed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gameadapt-example"
PACKAGES = ROOT / "tests" / "plugin_packages"


class Gameadapt:
    """``python -m gameadapt ...`` with a given interpreter."""

    def __init__(self, python: Path) -> None:
        self.python = python

    def __call__(self, *args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), "-m", "gameadapt", *map(str, args)],
                              capture_output=True, text=True, timeout=600, check=False)

    def ok(self, *args: object) -> str:
        completed = self(*args)
        assert completed.returncode == 0, (args, completed.stdout[-2000:],
                                           completed.stderr[-2000:])
        return completed.stdout

    def plugins(self) -> dict[str, dict]:
        return {p["name"]: p for p in json.loads(self.ok("plugins", "list", "--json"))}


def one_error(completed: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error:`` line of a failed command (anything else on stderr is pip's)."""
    assert completed.returncode != 0
    errors = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in completed.stderr, completed.stderr
    return errors[0]


@pytest.fixture
def gameadapt(throwaway_venv: Path) -> Gameadapt:
    return Gameadapt(throwaway_venv)


@pytest.mark.slow
def test_install_list_show_train_evaluate_export_play_uninstall(gameadapt: Gameadapt,
                                                                tmp_path: Path) -> None:
    assert "example" not in gameadapt.plugins()
    installed = gameadapt.ok("plugins", "install", EXAMPLE, "--yes")
    assert "plugin example (gameadapt-example 0.1.0): ok" in installed
    listed = gameadapt.plugins()
    assert listed["example"]["games"] == ["corridor", "mountaincar", "arena"]
    assert listed["example"]["distribution"] == "gameadapt-example"
    assert listed["example"]["status"] == "ok" and listed["example"]["errors"] == []
    shown = json.loads(gameadapt.ok("games", "show", "corridor", "--json"))
    assert shown["api"] == "native" and shown["action_space"] == {"type": "discrete",
                                                                  "n": 2, "start": 0}
    run, export = tmp_path / "run", tmp_path / "export"
    gameadapt.ok("train", "corridor", "--iterations", 2, "--meta-batch", 3, "--envs-per-task", 4,
                 "--run-dir", run)
    assert (run / "checkpoint.pt").is_file()
    recorded = json.loads((run / "config.json").read_text())["providers"]["game"]
    assert recorded == {"plugin": "example", "distribution": "gameadapt-example",
                        "version": "0.1.0"}
    result = json.loads(gameadapt.ok("evaluate", run, "--tasks", 3, "--episodes", 4, "--steps",
                                     "0,1", "--seeds", "0", "--baselines", "scratch", "--json"))
    assert set(result["methods"]) == {"maml", "scratch"}
    gameadapt.ok("export", run, "-o", export)
    manifest = json.loads((export / "policy.json").read_text())
    assert manifest["game"] == "corridor" and manifest["verification"]["passed"]
    assert manifest["providers"]["game"]["distribution"] == "gameadapt-example"
    played = gameadapt.ok("play", export, "--episodes", 2)
    assert "mean return over 2 episodes" in played

    # uninstall by the plugin name that `plugins list` shows
    assert gameadapt.ok("plugins", "uninstall", "example", "--yes").splitlines()[-1] == \
        "uninstalled gameadapt-example"
    assert "example" not in gameadapt.plugins()
    missing = gameadapt("games", "show", "corridor")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: unknown game 'corridor'")
    for args in (["evaluate", run, "--tasks", 2, "--episodes", 2], ["export", run, "-o",
                                                                    tmp_path / "again"]):
        assert one_error(gameadapt(*args)) == (
            f"Error: run {run} needs game 'corridor' from gameadapt-example 0.1.0, which is not "
            f"installed (gameadapt plugins install gameadapt-example)")
    assert one_error(gameadapt("play", export)) == (
        f"Error: export {export} needs game 'corridor' from gameadapt-example 0.1.0, which is "
        f"not installed (gameadapt plugins install gameadapt-example)")
    # nothing left to uninstall: one line and a non-zero exit, for either name
    for name in ("example", "gameadapt-example"):
        assert one_error(gameadapt("plugins", "uninstall", name, "--yes")) == (
            f"Error: nothing to uninstall: {name!r} is neither an installed plugin nor its "
            f"distribution (see gameadapt plugins list)")


@pytest.mark.slow
def test_uninstall_refuses_builtins_and_packages_that_are_not_plugins(gameadapt: Gameadapt
                                                                      ) -> None:
    assert one_error(gameadapt("plugins", "uninstall", "gridnav", "--yes")) == \
        "Error: 'gridnav' is built into gameadapt and cannot be uninstalled on its own"
    assert one_error(gameadapt("plugins", "uninstall", "numpy", "--yes")) == \
        "Error: 'numpy' is installed but is not a gameadapt plugin; nothing was uninstalled"


@pytest.mark.slow
@pytest.mark.parametrize(("package", "message"), [
    ("gameadapt-broken", "Error: plugin broken was installed but does not load: import failed: "
                         "ImportError: example failure (at gameadapt_broken.py:3)"),
    ("gameadapt-typos", "Error: plugin typos was installed but loads with problems: hook "
                        "implementation 'register_game' matches no gameadapt hook"),
])
def test_install_fails_when_the_installed_plugin_does_not_load_cleanly(
        gameadapt: Gameadapt, package: str, message: str) -> None:
    completed = gameadapt("plugins", "install", PACKAGES / package, "--yes")
    assert completed.returncode == 1
    assert one_error(completed).startswith(message)
    gameadapt.ok("plugins", "uninstall", package, "--yes")


@pytest.mark.slow
def test_install_of_a_package_without_a_plugin_fails(gameadapt: Gameadapt, tmp_path: Path
                                                     ) -> None:
    package = tmp_path / "not-a-plugin"
    package.mkdir()
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "not-a-plugin"\nversion = "1.0"\n'
        '[tool.setuptools]\npy-modules = ["not_a_plugin"]\n')
    (package / "not_a_plugin.py").write_text("")
    assert one_error(gameadapt("plugins", "install", package, "--yes")) == (
        "Error: pip installed not-a-plugin, but none of it declares a gameadapt plugin "
        "(entry-point group 'gameadapt')")
