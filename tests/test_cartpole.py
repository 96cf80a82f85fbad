"""cartpole: gymnasium's CartPole-v1 with variant physics, through the generic wrapper."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gameadapt.errors import VariantError
from gameadapt.games import cartpole
from gameadapt.variants import FloatRange, Param, VariantSpace
from gameadapt.wrappers import gymnasium_game
from gymnasium.utils.env_checker import check_env

SPEC = cartpole.SPEC
HEAVY = {"rules": {"gravity": 12.5, "masscart": 1.6, "masspole": 0.3, "length": 0.8,
                   "force_mag": 14.0}}


def trajectory(env: gymnasium.Env, seed: int = 7, steps: int = 15) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    observations = [obs]
    for t in range(steps):
        obs, *_ = env.step(t % 2)
        observations.append(obs)
    return np.array(observations)


def balance(obs: np.ndarray) -> int:
    """Push towards the side the pole leans and moves to: keeps it up for hundreds of steps."""
    return int(obs[2] + 0.5 * obs[3] > 0)


@pytest.mark.parametrize("variant", [None, HEAVY, {"level": {"max_steps": 60},
                                                   "rules": {"gravity": 5.0, "length": 0.25}}])
def test_check_env(variant):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*different from the unwrapped.*")
        warnings.filterwarnings("ignore", message=".*observation space (minimum|maximum) value")
        # rendering needs pygame, which gameadapt does not depend on
        check_env(SPEC.make_env(variant), skip_render_check=True)


def test_spec():
    assert (SPEC.id, SPEC.api, SPEC.gym_id) == ("cartpole", "gymnasium", "gameadapt/CartPole-v0")
    assert SPEC.make_batched is None and SPEC.is_discrete
    reference = gymnasium.make("CartPole-v1")
    assert SPEC.observation_space == reference.observation_space
    assert SPEC.action_space == gymnasium.spaces.Discrete(2)


def test_physics_reach_gymnasium_env():
    env = SPEC.make_env(HEAVY).unwrapped
    assert (env.gravity, env.masscart, env.masspole, env.length, env.force_mag) == (
        12.5, 1.6, 0.3, 0.8, 14.0)
    assert env.total_mass == pytest.approx(1.9)
    assert env.polemass_length == pytest.approx(0.24)
    default = SPEC.make_env().unwrapped
    assert (default.gravity, default.total_mass, default.polemass_length) == (9.8, 1.1, 0.05)


def test_default_variant_is_plain_cartpole():
    np.testing.assert_array_equal(trajectory(SPEC.make_env()),
                                  trajectory(gymnasium.make("CartPole-v1")))


@pytest.mark.parametrize("rule, value", [("gravity", 14.0), ("masscart", 0.5), ("masspole", 0.4),
                                         ("length", 1.0), ("force_mag", 5.0)])
def test_each_rule_changes_the_trajectory(rule, value):
    base = trajectory(SPEC.make_env())
    changed = trajectory(SPEC.make_env({"rules": {rule: value}}))
    np.testing.assert_array_equal(base[0], changed[0])  # same seed: same start
    assert not np.allclose(base[1:], changed[1:])
    np.testing.assert_array_equal(changed, trajectory(SPEC.make_env({"rules": {rule: value}})))


def test_max_steps_truncates():
    env = SPEC.make_env({"level": {"max_steps": 50}})
    obs, _ = env.reset(seed=0)
    for t in range(1, 51):
        obs, reward, terminated, truncated, _ = env.step(balance(obs))
        assert not terminated
        assert truncated == (t == 50)
    assert SPEC.make_env().spec.max_episode_steps == 500


def test_gymnasium_make_registered_id():
    env = gymnasium.make("gameadapt/CartPole-v0", variant={"level": {"max_steps": 80}, **HEAVY})
    assert env.unwrapped.gravity == 12.5 and env.unwrapped.polemass_length == pytest.approx(0.24)
    assert env.spec.max_episode_steps == 80
    np.testing.assert_array_equal(trajectory(env), trajectory(SPEC.make_env(HEAVY)))


@pytest.mark.parametrize("variant", [{"rules": {"gravity": 20.0}}, {"level": {"max_steps": 10}},
                                     {"rules": {"length": "long"}}, {"rules": {"wind": 1.0}},
                                     {"level": {"gravity": 9.8}}, {"physics": {}}])
def test_bad_variants_raise_variant_error(variant):
    with pytest.raises(VariantError):
        SPEC.make_env(variant)
    with pytest.raises(VariantError):
        gymnasium.make("gameadapt/CartPole-v0", variant=variant)


def test_splits_hold_out_a_region():
    space = SPEC.variant_space
    train, test = space.sample("train", 40, seed=1), space.sample("test", 40, seed=1)
    for v in train:
        assert 0.3 <= v["rules"]["length"] <= 0.6 and 8.0 <= v["rules"]["gravity"] <= 11.0
        assert space.validate(v, partial=False) == v and v["level"]["max_steps"] == 500
    for v in test:
        assert 0.6 <= v["rules"]["length"] <= 0.9 and 11.0 <= v["rules"]["gravity"] <= 13.0
    assert {p.name for p in space.split_params()} == set(cartpole.PHYSICS)


def test_wrapper_passes_constructor_kwargs_and_checks_names():
    space = VariantSpace([Param("gravity", "rules", FloatRange(1.0, 20.0), 10.0, "g")])
    spec = gymnasium_game("pendulum", "Pendulum-v1", space, description="Swing up.",
                          kwargs={"rules.gravity": "g"}, make_kwargs={"max_episode_steps": 30})
    env = spec.make_env({"rules": {"gravity": 3.7}})
    assert env.unwrapped.g == 3.7 and env.spec.max_episode_steps == 30
    assert spec.action_space.shape == (1,) and spec.make_batched is None
    with pytest.raises(ValueError, match="unknown variant parameter"):
        gymnasium_game("p", "Pendulum-v1", space, description="", attributes={"level.gravity": "g"})
    with pytest.raises(ValueError, match="unknown variant parameter"):
        gymnasium_game("p", "Pendulum-v1", space, description="", kwargs={"mass": "m"})
