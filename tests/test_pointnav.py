"""pointnav: paper-exact dynamics, gymnasium compliance and batched/single parity."""

from __future__ import annotations

import contextlib
import inspect
import json
import subprocess
import sys
import warnings

import gameadapt.games.pointnav as pointnav
import gymnasium
import numpy as np
import pytest
from gameadapt.errors import VariantError
from gameadapt.games.pointnav.dynamics import VARIANT_SPACE
from gameadapt.games.pointnav.env import PointNavEnv
from gameadapt.host.registry import Registry
from gymnasium.utils.env_checker import check_env

f32 = np.float32
RULES = {"speed": 1.7, "drift_x": 0.03, "drift_y": -0.02, "horizon": 25}


@contextlib.contextmanager
def strict_warnings():
    """Turn warnings into errors, except those about the (intended) unbounded observations."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*observation space (minimum|maximum) value")
        yield


def variant(goal=(0.3, 0.3), **rules) -> dict:
    return {"level": {"goal_x": goal[0], "goal_y": goal[1]}, "rules": rules}


def run(env: PointNavEnv, actions) -> list[tuple]:
    env.reset(seed=0)
    return [env.step(a) for a in actions]


# -- gymnasium compliance --------------------------------------------------------------------
@pytest.mark.parametrize("v", [None, variant((-0.4, 0.2), **RULES)])
def test_check_env(v):
    with strict_warnings():
        # a directly built env has no spec, so gymnasium cannot try the other render modes
        warnings.filterwarnings("ignore", message=".*alternative render modes.*")
        check_env(PointNavEnv(v))


def test_check_env_through_gymnasium_make_tests_render_modes(capsys):
    env = gymnasium.make("gameadapt/PointNav-v0", variant=variant((-0.4, 0.2), **RULES))
    with strict_warnings():
        check_env(env.unwrapped)  # has a spec: also makes the "ansi" and "human" envs
    assert "goal (-0.400, +0.200)" in capsys.readouterr().out  # the human env printed


def test_gymnasium_make_applies_variant():
    env = gymnasium.make("gameadapt/PointNav-v0", variant={"level": {"goal_x": -0.25}},
                         render_mode="ansi")
    assert env.unwrapped.variant == VARIANT_SPACE.validate({"level": {"goal_x": -0.25}})
    np.testing.assert_array_equal(env.unwrapped.goal, np.array([-0.25, 0.3], f32))
    obs, info = env.reset(seed=1)
    np.testing.assert_array_equal(obs, np.zeros(2, f32))
    obs, *_ = env.step(np.array([-0.1, 0.0], f32))
    np.testing.assert_array_equal(obs, np.array([-0.1, 0.0], f32))
    with pytest.raises(VariantError):
        gymnasium.make("gameadapt/PointNav-v0", variant={"rules": {"speed": 5.0}})


def test_ansi_render_picture():
    env = PointNavEnv(variant((0.5, -0.5)), render_mode="ansi")
    env.reset()
    env.step([0.1, 0.1])
    rows = env.render().splitlines()
    assert len(rows) == 22 and all(len(r.split()) == 21 for r in rows[:21])
    assert rows[10].split()[10] == "+"  # the origin in the middle
    assert rows[9].split()[11] == "A"  # (0.1, 0.1): one cell right, one cell up
    assert rows[15].split()[15] == "G"  # (0.5, -0.5)
    assert rows[21] == ("agent (+0.100, +0.100)  goal (+0.500, -0.500)  "
                        "distance 0.721  step 1/100")


def test_bad_render_mode_and_variant_rejected():
    with pytest.raises(ValueError):
        PointNavEnv(render_mode="rgb_array")
    with pytest.raises(VariantError):
        PointNavEnv({"level": {"goal_x": 0.6}})
    with pytest.raises(VariantError):
        PointNavEnv({"rules": {"horizon": 9}})
    with pytest.raises(VariantError):
        PointNavEnv({"rules": {"wind": 0.0}})


# -- the paper's dynamics --------------------------------------------------------------------
def test_defaults_are_the_paper():
    env = PointNavEnv()
    assert env.variant["rules"] == {"speed": 1.0, "drift_x": 0.0, "drift_y": 0.0, "horizon": 100}
    assert env.observation_space == gymnasium.spaces.Box(-np.inf, np.inf, (2,), f32)
    assert env.action_space == gymnasium.spaces.Box(-0.1, 0.1, (2,), f32)
    obs, info = env.reset(seed=123, options={"stream": 7})
    np.testing.assert_array_equal(obs, np.zeros(2, f32))
    assert obs.dtype == f32 and info == {}


def test_action_is_clipped_and_reward_is_minus_distance_after_the_move():
    env = PointNavEnv()  # goal (0.3, 0.3)
    env.reset()
    obs, reward, terminated, truncated, info = env.step(np.array([0.5, -0.5]))
    np.testing.assert_array_equal(obs, np.array([0.1, -0.1], f32))
    assert reward == float(-np.sqrt((f32(0.1) - f32(0.3)) ** 2 + (f32(-0.1) - f32(0.3)) ** 2))
    assert reward == pytest.approx(-np.sqrt(0.2), abs=1e-6)
    assert (terminated, truncated) == (False, False)
    obs, *_ = env.step([0.05, -3.0])
    np.testing.assert_array_equal(obs, np.array([0.1, -0.1], f32) + np.array([0.05, -0.1], f32))


def test_speed_and_drift():
    env = PointNavEnv(variant(speed=2.0, drift_x=0.05, drift_y=-0.05))
    env.reset()
    obs, *_ = env.step([1.0, 0.0])
    np.testing.assert_array_equal(obs, np.array([f32(0.1) * f32(2) + f32(0.05), f32(-0.05)], f32))
    assert obs == pytest.approx([0.25, -0.05])


@pytest.mark.parametrize("goal, ends", [((0.105, 0.0), True), ((0.1, -0.0095), True),
                                        ((0.115, 0.0), False), ((0.1, 0.02), False)])
def test_termination_box(goal, ends):
    env = PointNavEnv(variant(goal))
    env.reset()
    _, _, terminated, truncated, _ = env.step([0.1, 0.0])
    assert terminated is ends and truncated is False


def test_reaches_default_goal_in_three_steps():
    results = run(PointNavEnv(), [[0.1, 0.1]] * 3)
    assert [r[2] for r in results] == [False, False, True]
    assert results[-1][1] == pytest.approx(0.0, abs=1e-6)


def test_truncation_at_horizon():
    results = run(PointNavEnv(variant(horizon=10)), [[0.0, 0.0]] * 10)
    assert [r[3] for r in results] == [False] * 9 + [True]
    assert not any(r[2] for r in results)
    # reaching the goal on the last step terminates instead of truncating
    results = run(PointNavEnv(variant((0.1, 0.1), horizon=10)), [[0.0, 0.0]] * 9 + [[0.1, 0.1]])
    assert results[-1][2:4] == (True, False)


def test_is_success_on_the_step_that_reaches_the_goal_only():
    results = run(PointNavEnv(), [[0.1, 0.1]] * 3)
    assert [r[4] for r in results] == [{"is_success": False}] * 2 + [{"is_success": True}]
    results = run(PointNavEnv(variant(horizon=10)), [[0.0, 0.0]] * 10)
    assert results[-1][3] and results[-1][4] == {"is_success": False}


def play_reference(env: PointNavEnv) -> tuple[list[tuple], list[np.ndarray]]:
    """One episode of the reference: every step's result and action."""
    env.reset(seed=0)
    results, actions = [], []
    while not results or not (results[-1][2] or results[-1][3]):
        actions.append(pointnav.reference(env, env.position, env.variant))
        results.append(env.step(actions[-1]))
    return results, actions


def test_reference_heads_for_the_goal_at_full_speed():
    results, actions = play_reference(PointNavEnv())  # goal (0.3, 0.3)
    np.testing.assert_allclose(np.array(actions), np.full((3, 2), 0.1), rtol=1e-6)
    assert [r[2] for r in results] == [False, False, True] and results[-1][4]["is_success"]
    expected = -np.sqrt(0.08) - np.sqrt(0.02)  # distances after the first two moves, then 0
    assert sum(r[1] for r in results) == pytest.approx(expected, abs=1e-5)
    # each axis at full speed until it is done: x in one move, y in five; the distance after
    # every move is the least any policy can reach (0.4, 0.3, ...: better than the diagonal)
    results, actions = play_reference(PointNavEnv(variant((0.05, -0.5))))
    assert len(results) == 5 and results[-1][2]
    np.testing.assert_allclose([a[1] for a in actions], -0.1, rtol=1e-6)
    np.testing.assert_allclose([a[0] for a in actions], [0.05, 0, 0, 0, 0], atol=1e-7)
    np.testing.assert_allclose([r[1] for r in results], [-0.4, -0.3, -0.2, -0.1, 0], atol=1e-6)


def test_reference_compensates_drift_and_speed():
    # RULES: speed 1.7, drift (0.03, -0.02): a move is at most 0.14 left and 0.15 up
    results, actions = play_reference(PointNavEnv(variant((-0.4, 0.2), **RULES)))
    assert len(results) == 3 and results[-1][2] and results[-1][4]["is_success"]
    assert actions[0][0] == pytest.approx(-0.1) and actions[1][1] < 0.1
    # in reach: one move onto the goal, the drift taken off (aiming at it would miss the box)
    results, actions = play_reference(PointNavEnv(variant((0.1, 0.05), drift_x=0.03,
                                                          drift_y=-0.02)))
    np.testing.assert_allclose(actions[0], [0.07, 0.07], rtol=1e-6)
    assert len(results) == 1 and results[0][2] and results[0][4]["is_success"]
    # too slow for the drift: full speed against it, and the horizon ends it unsuccessfully
    results, actions = play_reference(PointNavEnv(variant((-0.3, 0.0), speed=0.1, drift_x=0.05,
                                                          horizon=12)))
    assert len(results) == 12 and results[-1][3] and not results[-1][4]["is_success"]
    np.testing.assert_allclose(np.array(actions), np.tile([-0.1, 0.0], (12, 1)), atol=1e-7)


# -- the batched view ------------------------------------------------------------------------
PARITY_VARIANTS = [
    variant((0.3, -0.2), horizon=10),
    variant((-0.45, 0.1), **RULES),
    variant((0.2, -0.15), speed=0.5, drift_x=-0.02, drift_y=0.03, horizon=40),
]


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
def test_batched_matches_single_step_for_step(device):
    import torch

    M, E = len(PARITY_VARIANTS), 4
    rng = np.random.default_rng(0)
    game = pointnav.make_batched(PARITY_VARIANTS, E, device)
    envs = [[PointNavEnv(v) for _ in range(E)] for v in PARITY_VARIANTS]
    assert (game.num_tasks, game.envs_per_task, game.horizon) == (M, E, 40)
    assert game.device.type == device

    obs = game.reset(seed=5)
    assert obs.shape == (M, E, 2) and obs.dtype == torch.float32
    single_obs = np.zeros((M, E, 2), f32)
    for m in range(M):
        for e in range(E):
            single_obs[m, e], _ = envs[m][e].reset(seed=5, options={"stream": m * E + e})
    np.testing.assert_array_equal(obs.cpu().numpy(), single_obs)

    ended = np.zeros((M, E), bool)
    endings = {"terminated": 0, "truncated": 0}
    for _ in range(game.horizon):
        actions = rng.normal(0.0, 0.15, (M, E, 2)).astype(f32)  # often outside [-0.1, 0.1]
        for m, env_row in enumerate(envs):  # envs 0 and 1 head for the goal (and reach it)
            wanted = (env_row[0].goal - single_obs[m, :2] - env_row[0].drift) / env_row[0].speed
            actions[m, :2] = wanted + rng.normal(0.0, 0.002, (2, 2))
        out = game.step(torch.from_numpy(actions).to(device))
        assert out.success is not None and out.success.dtype == torch.bool
        b_obs, b_rew, b_term, b_trunc, b_succ = (t.cpu().numpy() for t in out)
        assert not (b_succ & ~(b_term | b_trunc)).any()  # success only where an episode ends
        for m in range(M):
            for e in range(E):
                if ended[m, e]:  # frozen: same observation, reward 0, no flags
                    np.testing.assert_array_equal(b_obs[m, e], single_obs[m, e])
                    assert (b_rew[m, e], b_term[m, e], b_trunc[m, e]) == (0.0, False, False)
                    assert not b_succ[m, e]
                    continue
                o, r, term, trunc, info = envs[m][e].step(actions[m, e])
                np.testing.assert_array_equal(b_obs[m, e], o)
                assert b_rew[m, e] == r
                assert (bool(b_term[m, e]), bool(b_trunc[m, e])) == (term, trunc)
                assert bool(b_succ[m, e]) is info["is_success"] is term
                single_obs[m, e] = o
                ended[m, e] = term or trunc
                endings["terminated"] += term
                endings["truncated"] += trunc
    assert ended.all()
    assert endings["terminated"] >= 5 and endings["truncated"] >= 5  # both endings exercised


def test_batched_validates_input():
    import torch

    game = pointnav.make_batched([{}], 2, "cpu")
    with pytest.raises(RuntimeError):
        game.step(torch.zeros(1, 2, 2))
    game.reset(seed=0)
    with pytest.raises(ValueError):
        game.step(torch.zeros(1, 3, 2))
    with pytest.raises(VariantError):
        pointnav.make_batched([{"rules": {"speed": 0.0}}], 2, "cpu")


# -- packaging -------------------------------------------------------------------------------
def test_single_view_never_imports_torch():
    code = (
        "import sys, gymnasium\n"
        "import gameadapt.games.pointnav as p\n"
        "from gameadapt.games.pointnav.env import PointNavEnv\n"
        "env = gymnasium.make('gameadapt/PointNav-v0', render_mode='ansi')\n"
        "env.reset(seed=0); env.step([0.3, 0.1]); env.render()\n"
        "p.make_env({'rules': {'speed': 2.0}}).reset()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_variant_space_samples_validate():
    train = VARIANT_SPACE.sample("train", 50, seed=3)
    test = VARIANT_SPACE.sample("test", 50, seed=3)
    assert train == VARIANT_SPACE.sample("train", 50, seed=3)
    for v in train + test:
        assert VARIANT_SPACE.validate(v, partial=False) == v
        assert -0.5 <= v["level"]["goal_x"] <= 0.5 and -0.5 <= v["level"]["goal_y"] <= 0.5
        assert v["rules"] == VARIANT_SPACE.default()["rules"]
    train_goals = {(v["level"]["goal_x"], v["level"]["goal_y"]) for v in train}
    test_goals = {(v["level"]["goal_x"], v["level"]["goal_y"]) for v in test}
    assert len(train_goals) == 50 and not train_goals & test_goals  # fresh draws per split


def test_plugin_registers_spec(monkeypatch):
    monkeypatch.setenv("GAMEADAPT_LOAD_PLUGINS", "")
    registry = Registry().load(builtins=("gameadapt.games.pointnav",))
    assert registry.plugins["pointnav"].ok, registry.plugins["pointnav"].errors
    spec = registry.game("pointnav")
    assert (spec.api, spec.gym_id, spec.is_discrete) == ("native", "gameadapt/PointNav-v0", False)
    assert spec.variant_space is VARIANT_SPACE
    assert isinstance(spec.make_env({"level": {"goal_y": -0.1}}), PointNavEnv)
    data = json.loads(json.dumps(spec.to_json()))
    assert data["batched"] is True and data["action_space"]["shape"] == [2]
    assert spec.success == data["success"] == "reached the goal" and data["reference"] is True
    assert inspect.unwrap(spec.reference) is pointnav.reference
