"""Plugins cannot take the host down.

Any ``BaseException`` raised by plugin code at import or registration marks that plugin
broken (unless the host's SIGINT handler saw a real Ctrl-C, which still interrupts), specs
are validated at registration, built-in commands cannot be replaced, and a failing
``make_env`` or ``make`` is one line naming the plugin.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from gameadapt.algorithm import AlgorithmSpec
from gameadapt.cli import cli
from gameadapt.cli.group import OneLineErrorGroup
from gameadapt.game import GameSpec
from gameadapt.host import registry as registry_module
from gameadapt.host.registry import DEFAULT_PLUGINS, Registry



def invoke(*args: str, group: click.Group = cli) -> Result:
    return CliRunner().invoke(group, list(args))


def plugin_status(name: str) -> str:
    """The status ``gameadapt plugins list --all --json`` shows for plugin ``name``."""
    listing = invoke("plugins", "list", "--all", "--json")
    assert listing.exit_code == 0, listing.output
    return next(p["status"] for p in json.loads(listing.output) if p["name"] == name)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], str]:
    """``write(name, source)``: an importable plugin module file; returns its name."""
    folder = tmp_path / "modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def write(name: str, source: str) -> str:
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        monkeypatch.delitem(sys.modules, name, raising=False)
        return name

    return write


@pytest.fixture
def host_with(fresh_registry: None, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[Callable[..., Registry]]:
    """``host_with(module, ...)``: the process registry = the built-ins plus these modules."""
    def install(*modules: str) -> Registry:
        registry = Registry().load(builtins=DEFAULT_PLUGINS + modules)
        monkeypatch.setattr(registry_module, "_registry", registry)
        return registry

    yield install


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(3)", "GeneratorExit",
                                    "BaseException('odd')"])
def test_a_base_exception_at_import_is_isolated(raised: str, module_dir: Any,
                                                host_with: Any) -> None:
    name = module_dir("gameadapt_raises", f"raise {raised}\n")
    registry = host_with(name)
    info = registry.plugins[name]
    assert not info.loaded
    assert info.errors[0].startswith(f"import failed: {raised.split('(')[0]}")
    assert "(at gameadapt_raises.py:1)" in info.errors[0]
    assert plugin_status(name).startswith("import failed")
    assert invoke("games", "list").exit_code == 0


def test_a_base_exception_in_a_hook_is_isolated(fake_plugin: Any, host_with: Any) -> None:
    def register_games(register: Callable[[GameSpec], None]) -> None:
        raise KeyboardInterrupt

    registry = host_with(fake_plugin("hookint", register_games=register_games))
    assert registry.plugins["gameadapt_fake_hookint"].errors[0].startswith(
        "register_games raised KeyboardInterrupt")
    assert "gridnav" in registry.games


def test_a_real_sigint_while_loading_still_interrupts(module_dir: Any,
                                                      fresh_registry: None) -> None:
    name = module_dir("gameadapt_sigint", "import os, signal, time\n"
                                          "os.kill(os.getpid(), signal.SIGINT)\n"
                                          "time.sleep(5)\n")
    with pytest.raises(KeyboardInterrupt):
        Registry().load(builtins=(name,))


def test_a_real_sigint_while_loading_interrupts_a_real_process(tmp_path: Path,
                                                               subprocess_env: Any) -> None:
    module = tmp_path / "gameadapt_sigint_real.py"
    module.write_text("import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\n"
                      "time.sleep(5)\n", encoding="utf-8")
    code = ("from gameadapt.host.registry import Registry; "
            "Registry().load(builtins=('gameadapt_sigint_real',)); print('survived')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False,
                          env=subprocess_env(tmp_path) | {"GAMEADAPT_LOAD_PLUGINS": ""})
    assert done.returncode != 0 and "survived" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "KeyboardInterrupt"


@pytest.mark.parametrize("bad_id, fragment", [
    (5, "game id 5 is invalid"), (None, "game id None is invalid"),
    ("", "game id '' is invalid"), ("has space", "game id 'has space' is invalid"),
    ("-dash", "is invalid: an id is 1 to 100 letters"), ("x" * 101, "is invalid"),
])
def test_a_bad_game_id_marks_only_that_plugin_broken(bad_id: Any, fragment: str,
                                                     fake_plugin: Any, host_with: Any,
                                                     toy_game: Any) -> None:
    def register_games(register: Callable[[GameSpec], None]) -> None:
        register(toy_game(bad_id))

    name = fake_plugin("badid", register_games=register_games)
    good = fake_plugin("goodid", register_games=lambda register: register(
        toy_game("CartPole-like-v1")))
    registry = host_with(name, good)
    assert fragment in registry.plugins[name].status
    assert registry.plugins[good].ok and "CartPole-like-v1" in registry.games
    listed = invoke("games", "list")
    assert listed.exit_code == 0, listed.output
    assert "CartPole-like-v1" in listed.output
    assert fragment in plugin_status(name)


@pytest.mark.parametrize("field, value, fragment", [
    ("make_env", None, "make_env must be callable, not NoneType"),
    ("make_env", 3, "make_env must be callable, not int"),
    ("reference", "x", "reference must be callable, not str"),
    ("description", 7, "description must be a string, not int"),
])
def test_a_game_spec_without_its_callables_is_refused(field: str, value: Any, fragment: str,
                                                      fake_plugin: Any, host_with: Any,
                                                     toy_game: Any) -> None:
    spec = dataclasses.replace(toy_game("toy"), **{field: value})
    name = fake_plugin("nocall", register_games=lambda register: register(spec))
    registry = host_with(name)
    assert fragment in registry.plugins[name].status and "toy" not in registry.games


def test_an_algorithm_spec_with_a_bad_id_or_make_is_refused(fake_plugin: Any,
                                                            host_with: Any) -> None:
    name = fake_plugin("badalgo", register_algorithms=lambda register: register(
        AlgorithmSpec("fine", "x", make=None)))  # type: ignore[arg-type]
    other = fake_plugin("badalgo2", register_algorithms=lambda register: register(
        AlgorithmSpec(None, "x", make=lambda c: None)))  # type: ignore[arg-type]
    registry = host_with(name, other)
    assert "algorithm 'fine': make must be callable" in registry.plugins[name].status
    assert "algorithm id None is invalid" in registry.plugins[other].status


def test_a_plugin_cannot_replace_a_builtin_command(fake_plugin: Any, host_with: Any) -> None:
    def register_commands(cli: click.Group) -> None:
        cli.add_command(click.Command("train", callback=lambda: click.echo("hijacked")))
        cli.add_command(click.Command("extra", callback=lambda: click.echo("extra ran")))

    name = fake_plugin("hijack", register_commands=register_commands)
    registry = host_with(name)
    group = OneLineErrorGroup(commands=dict(cli.commands))
    registry.add_commands(group)
    assert group.commands["train"] is cli.commands["train"]
    assert "extra" in group.commands
    warning = (f"Warning: plugin {name!r}: register_commands tried to replace the command "
               f"'train'; the existing one is kept")
    result = invoke("extra", group=group)
    assert result.exit_code == 0
    assert result.output.splitlines() == [warning, "extra ran"]
    assert "tried to replace the command 'train'" in registry.plugins[name].status


def test_a_plugin_cannot_replace_a_subcommand_of_a_builtin_group(fake_plugin: Any,
                                                                 host_with: Any) -> None:
    original = cli.commands["games"].commands["list"]  # type: ignore[attr-defined]

    def register_commands(cli: click.Group) -> None:
        games = cli.commands["games"]
        games.add_command(click.Command("list", callback=lambda: click.echo("hijacked")))  # type: ignore[attr-defined]
        games.add_command(click.Command("mine", callback=lambda: click.echo("mine ran")))  # type: ignore[attr-defined]

    name = fake_plugin("subhijack", register_commands=register_commands)
    registry = host_with(name)
    group = OneLineErrorGroup(commands=dict(cli.commands))
    try:
        registry.add_commands(group)
        assert group.commands["games"].commands["list"] is original  # type: ignore[attr-defined]
        result = invoke("games", "list", group=group)
        assert result.exit_code == 0 and "hijacked" not in result.output
        assert result.output.splitlines()[0] == (
            f"Warning: plugin {name!r}: register_commands tried to replace the command "
            f"'games list'; the existing one is kept")
        assert "gridnav" in result.output
    finally:
        cli.commands["games"].commands.pop("mine", None)  # type: ignore[attr-defined]


def _raising(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("plugin bug")


def test_a_failing_make_env_is_one_line_naming_the_plugin(fake_plugin: Any, host_with: Any,
                                                          tmp_path: Path, toy_game: Any) -> None:
    spec = dataclasses.replace(toy_game("boomgame"), make_env=_raising)
    name = fake_plugin("boomgame", register_games=lambda register: register(spec))
    host_with(name)
    expected = (f"Error: game 'boomgame' of plugin {name!r} (gameadapt): make_env raised "
                f"RuntimeError: plugin bug (at ")
    for args in (["games", "play", "boomgame"],
                 ["train", "boomgame", "--iterations", "1", "--meta-batch", "2",
                  "--envs-per-task", "2", "--run-dir", str(tmp_path / "run")]):
        result = invoke(*args)
        assert result.exit_code == 1
        assert result.output.startswith(expected) and result.output.count("\n") == 1, \
            result.output
    assert not (tmp_path / "run").exists()
    assert invoke("games", "show", "boomgame").exit_code == 0


def test_a_failing_algorithm_make_is_one_line_naming_the_plugin(fake_plugin: Any,
                                                                host_with: Any,
                                                                tmp_path: Path) -> None:
    name = fake_plugin("boomalgo", register_algorithms=lambda register: register(
        AlgorithmSpec("boomalgo", "raises in make", _raising)))
    host_with(name)
    result = invoke("train", "gridnav", "--algo", "boomalgo", "--iterations", "1",
                    "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: algorithm 'boomalgo' of plugin {name!r} "
                                    f"(gameadapt): make raised RuntimeError: plugin bug (at "), \
        result.output
    assert result.output.count("\n") == 1
    assert not (tmp_path / "run").exists()
