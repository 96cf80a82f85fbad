"""Multi-agent games in the engine: the learner's view, the Python-loop vector game, the
PettingZoo wrapper, parameter sharing, and multi-agent runs, evaluations and exports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gameadapt.host.registry as registry_module
import gymnasium
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.errors import GameadaptError, VariantError
from gameadapt.game import GameSpec
from gameadapt.games import duel
from gameadapt.host.registry import DEFAULT_PLUGINS, Registry
from gameadapt.learn.rollout import Episodes, learner_returns
from gameadapt.learn.vector import GymVectorGame, ParallelVectorGame, make_batched_game
from gameadapt.multiagent import ControlledAgentEnv
from gameadapt.ship.export import export_policy
from gameadapt.ship.onnxpolicy import OnnxPolicy
from gameadapt.ship.play import make_play_env
from gameadapt.ship.verify import collect_observations
from gameadapt.train.evaluate import EvalSettings, evaluate_run
from gameadapt.train.runs import RunDir
from gameadapt.train.session import make_config, start_run
from gameadapt.train.trainer import train
from gameadapt.wrappers import pettingzoo_game
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

STYLES = ("aggressive", "defensive_west", "defensive_east", "patrolling", "mirroring")


@pytest.fixture
def arena(example_on_path: Path) -> Any:
    """The example plugin's wrapped PettingZoo game module (imported from source)."""
    import gameadapt_example.arena as arena

    return arena


@pytest.fixture
def with_arena(fresh_registry, example_on_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[Registry]:
    """The process registry with the built-ins and the example plugin (for the trainer)."""
    registry = Registry().load(builtins=DEFAULT_PLUGINS + ("gameadapt_example.plugin",))
    assert registry.plugins["plugin"].ok, registry.plugins["plugin"].errors
    monkeypatch.setattr(registry_module, "_registry", registry)
    yield registry


def arena_variants(arena: Any, count: int, seed: int = 0) -> list[dict]:
    return arena.VARIANT_SPACE.sample("train", count, seed) + \
        arena.VARIANT_SPACE.sample("test", count, seed)


# -- the game spec --------------------------------------------------------------------------

def test_multi_agent_specs_must_name_agents_a_learner_a_factory_and_an_opponent() -> None:
    base = Registry().load(builtins=("gameadapt.games.duel",)).game("duel")
    with pytest.raises(ValueError, match="two or more distinct agents"):
        dataclasses.replace(base, agents=("attacker",))
    with pytest.raises(ValueError, match="learner 'goalie' is not one of its agents"):
        dataclasses.replace(base, learner="goalie")
    with pytest.raises(ValueError, match="needs make_parallel_env and opponent"):
        dataclasses.replace(base, opponent=None)
    assert base.is_multi_agent
    assert base.controlled_agents() == ("attacker",)
    assert base.controlled_agents(share_policy=True) == ("attacker", "defender")
    assert base.to_json()["agents"] == ["attacker", "defender"]


# -- the learner's gymnasium view -------------------------------------------------------------

def test_controlled_agent_env_steps_the_others_with_the_opponent_function() -> None:
    calls: list[tuple[str, tuple[float, ...]]] = []

    def recording(env: Any, agent: str, observation: Any, variant: dict) -> int:
        calls.append((agent, tuple(np.asarray(observation).tolist())))
        return env.scripted_action(agent)

    variant = duel.VARIANT_SPACE.validate({"rules": {"opponent": "defensive_west",
                                                     "defender_speed": 1.0}})
    env = ControlledAgentEnv(duel.make_parallel_env(variant), "attacker", recording, variant)
    reference = duel.make_parallel_env(variant)
    observation, _ = env.reset(seed=3)
    ref_obs, _ = reference.reset(seed=3)
    assert np.array_equal(observation, ref_obs["attacker"])
    for step in range(5):
        ref_defender_obs = ref_obs["defender"]
        observation, reward, terminated, truncated, _ = env.step(1)
        ref_obs, rewards, terms, truncs, _ = reference.step(
            {"attacker": 1, "defender": reference.scripted_action("defender")})
        assert calls[step] == ("defender", tuple(ref_defender_obs.tolist()))
        assert np.array_equal(observation, ref_obs["attacker"])
        assert (reward, terminated, truncated) == (rewards["attacker"], terms["attacker"],
                                                   truncs["attacker"])
        if terminated or truncated:
            break
    assert len(calls) == step + 1


def test_wrapped_pettingzoo_game_passes_both_api_checkers(arena: Any) -> None:
    for variant in arena_variants(arena, 2):
        parallel_api_test(arena.SPEC.make_parallel_env(variant), num_cycles=200)
        check_env(arena.SPEC.make_env(variant), skip_render_check=True)


def test_wrapper_maps_variant_parameters_to_factory_keywords(arena: Any) -> None:
    env = arena.SPEC.make_parallel_env({"level": {"size": 11},
                                        "rules": {"opponent": "mirroring",
                                                  "defender_speed": 0.5}})
    assert env.variant["level"]["size"] == 11
    assert env.variant["rules"]["opponent"] == "mirroring"
    assert env.variant["rules"]["defender_speed"] == 0.5
    spec = arena.SPEC
    assert (spec.api, spec.agents, spec.learner, spec.max_episode_steps) == (
        "pettingzoo", ("attacker", "defender"), "attacker", 30)
    assert spec.make_batched is None
    with pytest.raises(VariantError):
        spec.make_parallel_env({"rules": {"opponent": "sneaky"}})
    with pytest.raises(VariantError):
        spec.make_env({"level": {"size": 4}})


# -- the Python-loop vector game vs the native batched view ---------------------------------

@pytest.mark.parametrize("agents", [("attacker",), ("attacker", "defender")])
def test_python_loop_views_agree_with_the_native_batched_view(arena: Any, agents) -> None:
    """With defender_speed 1.0 the duel has no randomness, so the wrapped arena stepped in a
    Python loop (gymnasium.vector over the learner's view, or ParallelVectorGame when the
    policy drives both agents) and the native batched duel must match row for row."""
    variants = arena_variants(arena, 3, seed=4)
    for v in variants:
        v["rules"]["defender_speed"] = 1.0
    envs = 4
    looped = make_batched_game(arena.SPEC, variants, envs, "cpu", agents)
    native = duel.make_batched(variants, envs, "cpu", agents)
    assert isinstance(looped, GymVectorGame if len(agents) == 1 else ParallelVectorGame)
    assert looped.envs_per_task == native.envs_per_task == envs * len(agents)
    assert getattr(looped, "agents", agents) == agents
    assert torch.equal(looped.reset(7), native.reset(7))
    generator = torch.Generator().manual_seed(0)
    ended = torch.zeros(len(variants), envs * len(agents), dtype=torch.bool)
    for _ in range(looped.horizon):
        action = torch.randint(0, 5, (len(variants), envs * len(agents)), generator=generator)
        a, b = looped.step(action), native.step(action)
        for x, y in zip(a, b):
            assert torch.equal(x, y)
        ended |= a.terminated | a.truncated
        if bool(ended.all()):
            break
    assert bool(ended.all())
    looped.close()


def test_sharing_needs_every_agent_to_have_the_learners_spaces(arena: Any) -> None:
    other = dataclasses.replace(arena.SPEC, observation_space=gymnasium.spaces.Box(
        -1.0, 1.0, (3,), np.float32))
    with pytest.raises(GameadaptError, match="cannot drive it"):
        ParallelVectorGame(other, arena_variants(arena, 1), 2, "cpu", ("attacker", "defender"))
    with pytest.raises(GameadaptError, match="has no agent 'goalie'"):
        ParallelVectorGame(arena.SPEC, arena_variants(arena, 1), 2, "cpu", ("goalie",))


def test_learner_returns_take_the_first_agent_of_every_env() -> None:
    rewards = torch.arange(12, dtype=torch.float32).reshape(1, 2, 6)  # [T, M, E * C] with C = 2
    episodes = Episodes(torch.zeros(1, 2, 6, 1), torch.zeros(1, 2, 6), rewards,
                        torch.ones(1, 2, 6), torch.zeros(1, 2, 6))

    class Game:
        agents = ("attacker", "defender")

    assert learner_returns(episodes, Game()).tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    Game.agents = ("attacker",)
    assert torch.equal(learner_returns(episodes, Game()), rewards[0])


# -- runs, evaluation, export and play --------------------------------------------------------

def test_share_policy_is_refused_for_a_single_agent_game() -> None:
    result = CliRunner().invoke(cli, ["train", "gridnav", "--share-policy", "--iterations", "1"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        "Error: --share-policy needs a multi-agent game; 'gridnav' has one agent")
    with pytest.raises(GameadaptError, match="invalid share-policy"):
        make_config({"game": "duel", "share_policy": "yes"})


@pytest.mark.parametrize("game_id", ["duel", "arena"])
def test_shared_policy_run_trains_evaluates_exports_and_plays_every_agent(
        with_arena: Registry, game_id: str, tmp_path: Path) -> None:
    config = make_config({"game": game_id, "iterations": 2, "meta_batch": 3, "envs_per_task": 2,
                          "share_policy": True, "seed": 1})
    run = RunDir(tmp_path / "run")
    session = train(start_run(config, run), run)
    assert session.agents == ("attacker", "defender")
    assert json.loads((run.path / "config.json").read_text())["train"]["share_policy"] is True
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    # every env contributes one episode per agent: at most horizon x tasks x envs x 2 steps
    assert len(rows) == 2 and all(0 < r["env_steps"] <= 2 * 30 * 3 * 2 * 2 for r in rows)

    settings = EvalSettings(tasks=2, episodes=2, steps=(0, 1), seeds=(0,))
    result = evaluate_run(run.path, settings, baselines=("scratch",))
    assert result["agents"] == ["attacker", "defender"]
    assert set(result["methods"]) == {"maml", "scratch"}

    out = tmp_path / "export"
    export_policy(run.path, out)
    manifest = json.loads((out / "policy.json").read_text())
    assert manifest["agents"] == ["attacker", "defender"]
    assert manifest["verification"]["passed"]

    policy = OnnxPolicy.load(out)
    spec = with_arena.game(game_id)
    scripted: list[str] = []
    original = spec.opponent
    assert original is not None
    spied = dataclasses.replace(spec, opponent=lambda *a: scripted.append(a[1]) or original(*a))
    env = make_play_env(policy, spied, spec.variant_space.default(), None)
    env.reset(seed=0)
    env.step(0)
    assert scripted == []  # the defender is driven by the exported policy, not scripted


def test_learner_only_export_names_the_learner_and_play_scripts_the_rest(
        tmp_path: Path) -> None:
    config = make_config({"game": "duel", "iterations": 1, "meta_batch": 2, "envs_per_task": 2})
    run = RunDir(tmp_path / "run")
    train(start_run(config, run), run)
    out = tmp_path / "export"
    export_policy(run.path, out)
    assert json.loads((out / "policy.json").read_text())["agents"] == ["attacker"]
    result = CliRunner().invoke(cli, ["play", str(out), "--episodes", "2",
                                      "--variant", "rules.opponent=defensive_east"])
    assert result.exit_code == 0, result.output
    assert "mean return over 2 episodes" in result.output


def test_single_agent_exports_name_no_agents(tmp_path: Path) -> None:
    config = make_config({"game": "gridnav", "iterations": 1, "meta_batch": 2,
                          "envs_per_task": 2})
    run = RunDir(tmp_path / "run")
    train(start_run(config, run), run)
    export_policy(run.path, tmp_path / "export")
    assert json.loads((tmp_path / "export" / "policy.json").read_text())["agents"] is None


def test_play_refuses_a_manifest_whose_agents_do_not_fit_the_game(tmp_path: Path) -> None:
    config = make_config({"game": "duel", "iterations": 1, "meta_batch": 2, "envs_per_task": 2})
    run = RunDir(tmp_path / "run")
    train(start_run(config, run), run)
    out = tmp_path / "export"
    export_policy(run.path, out)
    policy = OnnxPolicy.load(out)
    policy.manifest["agents"] = ["goalie"]
    spec: GameSpec = Registry().load(builtins=("gameadapt.games.duel",)).game("duel")
    with pytest.raises(GameadaptError, match=r"drives agents \['goalie'\]"):
        make_play_env(policy, spec, spec.variant_space.default(), None)


def test_shared_exports_are_verified_on_every_driven_agents_observations() -> None:
    spec = Registry().load(builtins=("gameadapt.games.duel",)).game("duel")
    variant = spec.variant_space.default()
    learner_only, _ = collect_observations(spec, variant, 300)
    shared, info = collect_observations(spec, variant, 300, agents=("attacker", "defender"))
    assert set(np.unique(learner_only[:, -1])) == {0.0}  # the role entry: attacker only
    assert set(np.unique(shared[:, -1])) == {0.0, 1.0}
    assert info["played"] == 300 and info["sampled_from_space"] == 0


def test_wrapper_sets_attributes_on_the_unwrapped_parallel_env(arena: Any) -> None:
    seen: list[tuple[str, dict]] = []
    spec = pettingzoo_game(
        "arena-attributes", arena.arena_env, arena.VARIANT_SPACE, description="test",
        learner="attacker", opponent=arena.scripted_defender, max_episode_steps=30,
        kwargs={"level.size": "size"}, attributes={"rules.opponent": "announced_style"},
        after_apply=lambda env, variant: seen.append((env.announced_style, variant)))
    env = spec.make_parallel_env({"rules": {"opponent": "patrolling"}})
    assert env.unwrapped.announced_style == "patrolling"
    assert seen[-1][0] == "patrolling" and seen[-1][1]["rules"]["opponent"] == "patrolling"
    assert env.variant["rules"]["opponent"] == "aggressive"  # not a keyword here


def test_evaluate_can_fix_a_parameter_such_as_one_held_out_style(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gameadapt.train.evaluate as evaluate_module

    config = make_config({"game": "duel", "iterations": 1, "meta_batch": 2, "envs_per_task": 2})
    run = RunDir(tmp_path / "run")
    train(start_run(config, run), run)
    seen: list[dict] = []
    original = evaluate_module.make_batched_game

    def recording(spec: GameSpec, variants: list, *args: Any) -> Any:
        seen.extend(variants)
        return original(spec, variants, *args)

    monkeypatch.setattr(evaluate_module, "make_batched_game", recording)
    settings = EvalSettings(tasks=4, episodes=2, steps=(0, 1), seeds=(0,),
                            fixed=("rules.opponent=mirroring",))
    result = evaluate_run(run.path, settings)
    assert list(result["fixed"]) == ["rules.opponent=mirroring"]
    assert len(seen) == 4 and {v["rules"]["opponent"] for v in seen} == {"mirroring"}
    assert {v["level"]["seed"] for v in seen} <= set(range(10_000, 20_000))  # still held out
    bad = CliRunner().invoke(cli, ["evaluate", str(run.path), "-v", "rules.opponent=sneaky"])
    assert bad.exit_code != 0 and bad.output.strip().splitlines()[-1].startswith(
        "Error: rules.opponent: 'sneaky' is not one of")
