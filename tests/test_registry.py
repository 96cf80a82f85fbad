"""The plugin contract end to end: discovery, failures, duplicates, restriction, the example.

Tests marked ``slow`` use the plugin packages pip-installed once per session (see
``conftest.plugin_site``); the others build their plugins in-process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import gymnasium
import numpy as np
import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.errors import UnknownIdError
from gameadapt.game import GameSpec
from gameadapt.host.registry import DEFAULT_PLUGINS, LOAD_PLUGINS_ENV, Registry, get_registry
from gameadapt.variants import FloatRange, Param, VariantSpace
from gymnasium.utils.env_checker import check_env

THIRD_PARTY = {"example", "broken", "duplicate", "chase", "aaa_hijack", "typos", "typogroup",
               "badspaces"}
ToyGame = Callable[[str], GameSpec]


def third_party_names(registry: Registry) -> set[str]:
    return {name for name, info in registry.plugins.items() if not info.builtin}


# -- pip-installed plugins, found through the "gameadapt" entry-point group -----------------
@pytest.mark.slow
def test_example_plugin_is_discovered_through_its_entry_point(installed_plugins) -> None:
    registry = get_registry()
    info = registry.plugins["example"]
    assert info.ok, info.errors
    assert (info.version, info.builtin, info.module) == ("0.1.0", False, "gameadapt_example.plugin")
    assert info.games == ["corridor", "mountaincar", "arena"]
    assert info.hooks == ["register_commands", "register_games"]
    assert registry.owner("game", "corridor") == "example"
    assert registry.game("corridor").api == "native"
    assert registry.game("mountaincar").api == "gymnasium"


@pytest.mark.slow
def test_broken_plugin_is_reported_and_everything_else_works(installed_plugins) -> None:
    registry = get_registry()
    broken = registry.plugins["broken"]
    assert (broken.name, broken.version) == ("broken", "0.0.1")
    assert len(broken.errors) == 1 and "example failure" in broken.errors[0]
    assert broken.games == [] and registry.pm.get_plugin("broken") is None
    assert registry.plugins["example"].ok
    assert {"corridor", "mountaincar"} <= set(registry.games)
    assert registry.plugins["gridnav"].ok, registry.plugins["gridnav"].errors
    assert registry.owner("game", "gridnav") == "gridnav"


@pytest.mark.slow
def test_broken_plugin_error_names_the_file_and_line_it_raised_at(installed_plugins) -> None:
    error = get_registry().plugins["broken"].errors[0]
    assert error == "import failed: ImportError: example failure (at gameadapt_broken.py:3)"


@pytest.mark.slow
def test_third_party_claim_on_a_builtin_id_is_refused_and_its_other_ids_work(
        installed_plugins) -> None:
    registry = get_registry()
    duplicate = registry.plugins["duplicate"]
    assert duplicate.loaded and not duplicate.ok and duplicate.errors == []
    assert duplicate.problems == ["game id 'gridnav' is built in (plugin 'gridnav'); this "
                                  "plugin's claim to it is refused"]
    assert duplicate.games == ["duplicate-extra"]  # its other id keeps working
    assert registry.owner("game", "duplicate-extra") == "duplicate"
    assert registry.owner("game", "gridnav") == "gridnav"
    assert registry.game("gridnav").api == "native"
    assert registry.plugins["gridnav"].ok


@pytest.mark.slow
def test_id_claimed_by_two_third_parties_is_contested_whatever_the_load_order(
        installed_plugins) -> None:
    registry = get_registry()
    chase, hijack = registry.plugins["chase"], registry.plugins["aaa_hijack"]
    assert chase.loaded and hijack.loaded
    assert chase.problems == [
        "game id 'chase' is also claimed by plugin 'aaa_hijack' (gameadapt-hijack): it is "
        "unavailable until one is uninstalled or left out with GAMEADAPT_LOAD_PLUGINS"]
    assert hijack.problems == [
        "game id 'chase' is also claimed by plugin 'chase' (gameadapt-chase): it is "
        "unavailable until one is uninstalled or left out with GAMEADAPT_LOAD_PLUGINS"]
    assert "chase" not in registry.games
    with pytest.raises(UnknownIdError) as raised:
        registry.game("chase")
    assert str(raised.value).startswith(
        "game id 'chase' is claimed by plugins 'aaa_hijack' (gameadapt-hijack 0.3.0) and "
        "'chase' (gameadapt-chase 1.0.0); uninstall one")
    # every claimant's other ids keep working
    assert chase.games == ["chase-easy"] and hijack.games == ["hijack-only"]
    assert registry.game("chase-easy").description == "the real chase"
    assert registry.game("hijack-only").description == "a clashing chase"


@pytest.mark.slow
@pytest.mark.parametrize(("allowed", "description"), [("chase", "the real chase"),
                                                       ("gameadapt-hijack", "a clashing chase")])
def test_a_contested_id_is_resolved_by_loading_one_claimant(
        installed_plugins, monkeypatch: pytest.MonkeyPatch, allowed: str, description: str
        ) -> None:
    monkeypatch.setenv(LOAD_PLUGINS_ENV, allowed)
    registry = get_registry()
    assert registry.game("chase").description == description
    assert all(info.ok for info in registry.plugins.values())


@pytest.mark.slow
def test_silent_no_ops_are_reported(installed_plugins) -> None:
    registry = get_registry()
    typos = registry.plugins["typos"]
    assert typos.loaded and not typos.ok
    assert typos.problems == [
        "hook implementation 'register_game' matches no gameadapt hook (did you mean "
        "'register_games'?), so it is never called",
        "function 'register_algorithms' looks like the hook 'register_algorithms' but is not "
        "marked with @gameadapt.hookimpl, so it is never called",
    ]
    group = registry.plugins["typogroup"]
    assert group.errors == [
        "entry point 'typogroup' is declared in the group 'gameadpt', not 'gameadapt', so it "
        "is never loaded (fix [project.entry-points.gameadapt] in its pyproject.toml)"]
    assert group.distribution == "gameadapt-typos"
    assert registry.pm.get_plugin("typogroup") is None


@pytest.mark.slow
def test_plugins_list_shows_distribution_and_status(installed_plugins) -> None:
    result = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    listed = {p["name"]: p for p in json.loads(result.output)}
    assert listed["example"]["distribution"] == "gameadapt-example"
    assert listed["example"]["status"] == "ok"
    assert listed["typos"]["status"].startswith("hook implementation 'register_game'")
    table = CliRunner().invoke(cli, ["plugins", "list"]).output.splitlines()
    assert table[0].split()[:3] == ["name", "distribution", "version"]
    example = next(line for line in table if line.startswith("example "))
    assert example.split()[1:3] == ["gameadapt-example", "0.1.0"]


@pytest.mark.slow
def test_unset_load_plugins_loads_every_installed_plugin(installed_plugins) -> None:
    assert THIRD_PARTY <= third_party_names(get_registry())


@pytest.mark.slow
def test_empty_load_plugins_loads_no_third_party_plugin_but_every_builtin(
        installed_plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOAD_PLUGINS_ENV, "")
    registry = get_registry()
    assert third_party_names(registry) == set()
    builtins = {info.module for info in registry.plugins.values() if info.builtin}
    assert builtins == set(DEFAULT_PLUGINS)
    assert "gridnav" in registry.games
    with pytest.raises(UnknownIdError):
        registry.game("corridor")


@pytest.mark.slow
@pytest.mark.parametrize("allowed", ["example", "gameadapt-example", " example , unknown "])
def test_load_plugins_by_entry_point_or_distribution_name(
        installed_plugins, monkeypatch: pytest.MonkeyPatch, allowed: str) -> None:
    monkeypatch.setenv(LOAD_PLUGINS_ENV, allowed)
    registry = get_registry()
    assert third_party_names(registry) == {"example"}
    assert registry.plugins["example"].ok
    assert "gridnav" in registry.games


@pytest.mark.slow
def test_installed_command_reaches_the_real_cli(installed_plugins, subprocess_env) -> None:
    """``gameadapt corridor-info`` exists in a fresh process once the example is installed."""
    env = subprocess_env(installed_plugins)
    env.pop(LOAD_PLUGINS_ENV, None)
    completed = subprocess.run(
        [sys.executable, "-c", "from gameadapt.cli import cli; cli()", "corridor-info",
         "--seed", "3", "--length", "10"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "corridor seed=3 length=10: goal at cell" in completed.stdout


# -- in-process plugins --------------------------------------------------------------------
def test_plugin_raising_in_register_games_is_skipped_with_its_partial_games(
        fresh_registry, fake_plugin: Callable[..., str], toy_game: ToyGame) -> None:
    def raising(register: Callable[[GameSpec], None]) -> None:
        register(toy_game("partial-game"))
        raise RuntimeError("boom while registering")

    bad = fake_plugin("bad", register_games=raising)
    good = fake_plugin("good", register_games=lambda register: register(toy_game("good-game")))
    registry = Registry().load(builtins=(bad, good))
    info = registry.plugins[bad]
    line = raising.__code__.co_firstlineno + 2
    assert info.errors == [f"register_games raised RuntimeError: boom while registering "
                           f"(at test_registry.py:{line})"]
    assert info.games == [] and "partial-game" not in registry.games
    assert registry.pm.get_plugin(bad) is None  # none of its hooks stays registered
    assert registry.plugins[good].ok and registry.owner("game", "good-game") == good


@pytest.mark.parametrize("not_a_spec", ["corridor", {"id": "corridor"}, None])
def test_registering_something_that_is_not_a_game_spec_is_an_error(
        fresh_registry, fake_plugin: Callable[..., str], not_a_spec: Any) -> None:
    name = fake_plugin("wrong", register_games=lambda register: register(not_a_spec))
    registry = Registry().load(builtins=(name,))
    errors = registry.plugins[name].errors
    assert len(errors) == 1 and "TypeError" in errors[0] and "GameSpec" in errors[0]
    assert registry.games == {}


def test_same_plugin_registering_one_id_twice_is_an_error(
        fresh_registry, fake_plugin: Callable[..., str], toy_game: ToyGame) -> None:
    def twice(register: Callable[[GameSpec], None]) -> None:
        register(toy_game("twin"))
        register(toy_game("twin"))

    name = fake_plugin("twice", register_games=twice)
    registry = Registry().load(builtins=(name,))
    assert "registered twice" in registry.plugins[name].errors[0]
    assert "twin" not in registry.games


def test_failing_register_commands_is_reported_and_leaves_the_cli_intact(
        fresh_registry, fake_plugin: Callable[..., str]) -> None:
    def add_then_fail(cli: click.Group) -> None:
        cli.add_command(click.Command("half-added"))
        raise ValueError("no commands today")

    name = fake_plugin("cmds", register_commands=add_then_fail)
    registry = Registry().load(builtins=(name,))
    group = click.Group("gameadapt", commands=[click.Command("games")])
    registry.add_commands(group)
    assert set(group.commands) == {"games"}
    line = add_then_fail.__code__.co_firstlineno + 2
    assert registry.plugins[name].errors == [f"register_commands raised ValueError: no commands "
                                             f"today (at test_registry.py:{line})"]


def test_hook_failure_names_the_plugin_file_line_not_the_host(
        fresh_registry, fake_plugin: Callable[..., str]) -> None:
    """An error raised inside the host (e.g. a spec's validation) points at the plugin's call."""
    def bad_default(register: Callable[[GameSpec], None]) -> None:
        Param("mass1", "rules", FloatRange(0.5, 2.0), 2.5, "pole mass")

    name = fake_plugin("default", register_games=bad_default)
    errors = Registry().load(builtins=(name,)).plugins[name].errors
    line = bad_default.__code__.co_firstlineno + 1
    assert errors == [f"register_games raised VariantError: rules.mass1: the declared default "
                      f"2.5 is outside its domain (float 0.5..2) (at test_registry.py:{line})"]


def test_unmarked_and_misspelt_hooks_of_an_in_process_plugin(fresh_registry) -> None:
    module = types.ModuleType("gameadapt_fake_unmarked")

    def register_games(register: Callable[[GameSpec], None]) -> None:
        raise AssertionError("never called")

    def register_comands(cli: click.Group) -> None:
        raise AssertionError("never called")

    def register_everything() -> None:  # not close enough to a hook name to be reported
        pass

    module.register_games = register_games  # type: ignore[attr-defined]
    module.register_comands = register_comands  # type: ignore[attr-defined]
    module.register_everything = register_everything  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        info = Registry().load(builtins=(module.__name__,)).plugins["gameadapt_fake_unmarked"]
    finally:
        del sys.modules[module.__name__]
    assert info.loaded and info.hooks == []
    assert info.problems == [
        "function 'register_comands' looks like the hook name 'register_commands' but is not "
        "marked with @gameadapt.hookimpl, so it is never called",
        "function 'register_games' looks like the hook 'register_games' but is not marked with "
        "@gameadapt.hookimpl, so it is never called",
    ]


def test_debug_switch_prints_tracebacks(tmp_path) -> None:
    env = dict(os.environ, GAMEADAPT_DEBUG="1")
    completed = subprocess.run([sys.executable, "-m", "gameadapt", "games", "show", "nope"],
                               capture_output=True, text=True, env=env, timeout=120, check=False)
    assert completed.returncode == 1
    assert "Traceback (most recent call last)" in completed.stderr
    assert completed.stderr.splitlines()[-1].startswith("Error: unknown game 'nope'")
    quiet = subprocess.run([sys.executable, "-m", "gameadapt", "games", "show", "nope"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in quiet.stderr and quiet.stderr.count("\n") == 1


@pytest.mark.slow
def test_debug_switch_prints_a_failing_plugins_traceback(installed_plugins, subprocess_env
                                                         ) -> None:
    env = dict(subprocess_env(installed_plugins), GAMEADAPT_DEBUG="1")
    env.pop(LOAD_PLUGINS_ENV, None)
    completed = subprocess.run([sys.executable, "-m", "gameadapt", "games", "list"],
                               capture_output=True, text=True, env=env, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "plugin broken: import failed: ImportError: example failure" in completed.stderr
    assert 'gameadapt_broken.py", line 3' in completed.stderr


# -- the example plugin, imported from its source folder -----------------------------------
@pytest.fixture
def example_registry(fresh_registry, example_on_path) -> Registry:
    """A registry holding only the example plugin (loaded the way built-ins are)."""
    registry = Registry().load(builtins=("gameadapt_example.plugin",))
    assert registry.plugins["plugin"].ok, registry.plugins["plugin"].errors
    return registry


def test_commands_hook_adds_corridor_info(example_registry: Registry) -> None:
    group = click.Group("gameadapt")
    example_registry.add_commands(group)
    assert "corridor-info" in group.commands
    result = CliRunner().invoke(group, ["corridor-info", "--seed", "3", "--length", "10"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("corridor seed=3 length=10: goal at cell ")
    assert len(lines[1]) == 10 and lines[1].count("G") == 1
    bad = CliRunner().invoke(group, ["corridor-info", "--length", "99"])
    assert bad.exit_code != 0 and "outside 3..16" in bad.output


def corridor_variants(registry: Registry) -> list[dict]:
    space = registry.game("corridor").variant_space
    reversed_long = {"level": {"seed": 5, "length": 16}, "rules": {"controls": "reversed"}}
    return ([space.default(), space.validate(reversed_long)]
            + space.sample("train", 3, seed=1) + space.sample("test", 3, seed=1))


def test_example_native_game_passes_check_env(example_registry: Registry) -> None:
    spec = example_registry.game("corridor")
    for variant in corridor_variants(example_registry):
        env = spec.make_env(variant)
        check_env(env, skip_render_check=True)
        assert spec.observation_space == env.observation_space
        assert spec.action_space == env.action_space
    # made through its gymnasium id, the env has a spec, so check_env also tries every render mode
    check_env(gymnasium.make(spec.gym_id, render_mode="ansi").unwrapped)


def test_example_batched_view_agrees_with_the_single_view_step_for_step(
        example_registry: Registry) -> None:
    torch = pytest.importorskip("torch")
    spec = example_registry.game("corridor")
    variants = corridor_variants(example_registry)
    num_tasks, envs_per_task, seed = len(variants), 4, 11
    batch = spec.make_batched(variants, envs_per_task, "cpu")
    assert (batch.num_tasks, batch.envs_per_task) == (num_tasks, envs_per_task)
    assert batch.horizon == 2 * max(v["level"]["length"] for v in variants)
    actions = np.random.default_rng(0).integers(0, 2, (batch.horizon, num_tasks, envs_per_task))

    observation = batch.reset(seed)
    assert observation.shape == (num_tasks, envs_per_task, 3)
    assert observation.dtype == torch.float32
    singles = [[spec.make_env(v) for _ in range(envs_per_task)] for v in variants]
    for m, row in enumerate(singles):
        for e, env in enumerate(row):
            single_obs, _ = env.reset(seed=seed, options={"stream": m * envs_per_task + e})
            np.testing.assert_array_equal(observation[m, e].numpy(), single_obs)

    ended = np.zeros((num_tasks, envs_per_task), dtype=bool)
    for t in range(batch.horizon):
        previous = observation
        observation, reward, terminated, truncated, _ = batch.step(torch.as_tensor(actions[t]))
        assert reward.shape == terminated.shape == truncated.shape == ended.shape
        for m, row in enumerate(singles):
            for e, env in enumerate(row):
                got = (reward[m, e].item(), terminated[m, e].item(), truncated[m, e].item())
                if ended[m, e]:  # frozen: same observation, no reward, no flags
                    assert torch.equal(observation[m, e], previous[m, e])
                    assert got == (0.0, False, False)
                    continue
                obs, r, term, trunc, _ = env.step(int(actions[t, m, e]))
                np.testing.assert_array_equal(observation[m, e].numpy(), obs)
                assert got == (r, term, trunc)
                ended[m, e] = term or trunc
    assert ended.all()  # every episode ends within the horizon


def test_example_reversed_controls_swap_the_actions(example_registry: Registry) -> None:
    spec = example_registry.game("corridor")
    moved = {}
    for controls in ("normal", "reversed"):
        env = spec.make_env({"level": {"length": 16}, "rules": {"controls": controls}})
        before, _ = env.reset(seed=0)
        after, *_ = env.step(1)
        moved[controls] = round(float(after[0] - before[0]) * 15)  # observation[0] = cell / 15
    assert moved["normal"] in (1, 0) and moved["reversed"] in (-1, 0)
    assert moved["normal"] != moved["reversed"]


def test_example_wrapped_game_applies_the_variant(example_registry: Registry) -> None:
    spec = example_registry.game("mountaincar")
    assert [p.name for p in spec.variant_space.split_params()] == ["force", "gravity"]
    env = spec.make_env({"level": {"max_steps": 300}, "rules": {"force": 0.0008, "gravity": 0.003}})
    assert (env.unwrapped.force, env.unwrapped.gravity) == (0.0008, 0.003)
    assert env.spec.max_episode_steps == 300
    env.reset(seed=0)
    env.step(2)
    env.close()


def test_example_plugin_imports_without_torch(example_package, subprocess_env) -> None:
    """Torch is imported by the batched view only, never by the plugin or the single view."""
    code = ("import sys, gameadapt_example.plugin as p; "
            "p.corridor.make_env().reset(seed=0); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=subprocess_env(example_package), timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr


# -- the plugin guide ----------------------------------------------------------------------
def test_code_snippets_in_the_plugin_guide_match_the_code(example_package) -> None:
    """Every ``<!-- snippet: PATH -->`` block of docs/plugins.md is copied verbatim from PATH."""
    root = example_package.parents[1]
    guide = (root / "docs" / "plugins.md").read_text(encoding="utf-8")
    snippets = re.findall(r"<!-- snippet: (\S+) -->\n```\w*\n(.*?)```", guide, flags=re.DOTALL)
    assert len(snippets) >= 10
    for path, code in snippets:
        assert code in (root / path).read_text(encoding="utf-8"), f"snippet out of date: {path}"


# -- declared spaces against what the views return -----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("game", "message"), [
    ("wrongobs", "Error: game 'wrongobs' of plugin 'badspaces' (gameadapt-badspaces) declares "
                 "the observation space Box(-1..1, (5,), float32) but its env has "
                 "Box(-inf..inf, (4,), float32)"),
    ("pixels", "Error: game 'pixels' of plugin 'badspaces' (gameadapt-badspaces) declares the "
               "observation space Box(0..255, (64, 64, 3), uint8); gameadapt policies take a "
               "flat float Box of shape (n,)"),
    ("wrongbatch", "Error: game 'wrongbatch' of plugin 'badspaces' (gameadapt-badspaces): the "
                   "batched reset() returned observation of shape (1, 1, 3) and dtype "
                   "torch.float32; the batched view must return shape (1, 1, 4)"),
])
def test_declared_spaces_are_checked_before_training(installed_plugins, tmp_path, game: str,
                                                     message: str) -> None:
    result = CliRunner().invoke(cli, ["train", game, "--iterations", "1", "--meta-batch", "2",
                                      "--envs-per-task", "2", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_the_views_of_every_builtin_game_match_their_declared_spaces() -> None:
    from gameadapt.train.spacecheck import check_game_views

    registry = get_registry()
    for spec in registry.games.values():
        for split in ("train", "test"):
            variant = spec.variant_space.sample(split, 1, seed=3)[0]
            check_game_views(spec, variant, "cpu", spec.controlled_agents())
            if spec.is_multi_agent:
                check_game_views(spec, variant, "cpu", spec.controlled_agents(True))


def test_a_step_that_leaves_the_declared_bounds_is_refused(fresh_registry, fake_plugin) -> None:
    from gameadapt.errors import PluginError
    from gameadapt.train.spacecheck import check_game_views

    narrow = gymnasium.spaces.Box(-0.01, 0.01, (4,), np.float32)  # CartPole leaves it at once
    spec = GameSpec(id="narrow", description="", api="gymnasium", observation_space=narrow,
                    action_space=gymnasium.spaces.Discrete(2), variant_space=VariantSpace([]),
                    make_env=lambda variant=None, render_mode=None: NarrowCartPole())
    name = fake_plugin("narrow", register_games=lambda register: register(spec))
    registry = Registry().load(builtins=(name,))
    import gameadapt.host.registry as host

    host._registry = registry
    with pytest.raises(PluginError) as raised:
        check_game_views(registry.game("narrow"), {})
    assert str(raised.value).startswith(
        "game 'narrow' of plugin 'gameadapt_fake_narrow' (gameadapt) declares the observation "
        "space Box(-0.01..0.01, (4,), float32) but ")
    assert "returned an array of shape (4,) and dtype float32, values" in str(raised.value)


class NarrowCartPole(gymnasium.Wrapper):
    """CartPole declaring observation bounds of ±0.01 that its states leave."""

    def __init__(self) -> None:
        super().__init__(gymnasium.make("CartPole-v1"))
        self.observation_space = gymnasium.spaces.Box(-0.01, 0.01, (4,), np.float32)


@pytest.mark.slow
def test_the_plugin_guides_status_examples_are_what_the_host_reports(installed_plugins) -> None:
    """docs/plugins.md's ``plugins list --all`` rows are real output of the test packages."""
    guide = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = guide[guide.index("$ gameadapt plugins list --all\nname        distribution"):]
    header, rule, *rows = block[:block.index("```")].splitlines()[1:]
    status_column = rule.rindex("  ") + 2
    registry = get_registry()
    documented = {row.split()[0]: row[status_column:] for row in rows if row != "..."}
    assert {"broken", "duplicate", "chase", "aaa_hijack", "typos", "typogroup"} <= set(documented)
    for name, status in documented.items():
        assert registry.plugins[name].status == status, name
