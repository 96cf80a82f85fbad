"""Success and the reference (upper-bound) policy: the game API, the Python-loop views'
pass-through of ``info["is_success"]``, the built-in games' two views agreeing on it, and
:func:`gameadapt.train.upper_bound.reference_returns`."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from gameadapt.errors import GameadaptError
from gameadapt.game import BatchedStep, GameSpec
from gameadapt.hashrandom import derive_seed
from gameadapt.host.registry import get_registry
from gameadapt.learn.vector import GymVectorGame, ParallelVectorGame
from gameadapt.multiagent import ControlledAgentEnv
from gameadapt.train.upper_bound import play_reference, reference_returns
from gameadapt.variants import IntRange, Param, VariantSpace


def builtin(game_id: str) -> GameSpec:
    return get_registry().game(game_id)


# -- the API --------------------------------------------------------------------------------

def test_a_batched_step_without_success_reports_none() -> None:
    zeros = torch.zeros(1, 2)
    step = BatchedStep(zeros, zeros, zeros.bool(), zeros.bool())
    assert step.success is None and len(step) == 5


def test_specs_declare_success_and_reference() -> None:
    for game_id in ("gridnav", "pointnav", "duel"):
        spec = builtin(game_id)
        assert isinstance(spec.success, str) and spec.reference is not None
        data = spec.to_json()
        assert data["success"] == spec.success and data["reference"] is True
    cartpole = builtin("cartpole")
    assert cartpole.success == "balanced until the time limit" and cartpole.reference is None
    assert cartpole.to_json()["reference"] is False


def test_cartpole_succeeds_by_reaching_its_time_limit() -> None:
    env = builtin("cartpole").make_env({"level": {"max_steps": 60}})
    obs, _ = env.reset(seed=0)
    for t in range(1, 61):  # push towards the side the pole leans to: it stays up
        obs, _, terminated, truncated, info = env.step(int(obs[2] + 0.5 * obs[3] > 0))
        assert info["is_success"] is (t == 60) and not terminated
    env.reset(seed=0)
    terminated = False
    while not terminated:  # always left: it falls
        *_, terminated, truncated, info = env.step(0)
        assert not info["is_success"]


# -- the native views agree with the single views -------------------------------------------

def mixed_actions(spec: GameSpec, singles: list[list[Any]], observations: list[list[Any]],
                  variants: list[dict], done: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Env 0 of every task acts at random; the others follow the reference 70% of the time."""
    assert spec.reference is not None
    actions = []
    for m, row in enumerate(singles):
        for e, env in enumerate(row):
            if spec.is_discrete:
                action: Any = int(rng.integers(int(spec.action_space.n)))
            else:
                action = rng.normal(0.0, 0.1, spec.action_space.shape).astype(np.float32)
            if not done[m, e] and e > 0 and rng.random() < 0.7:
                action = spec.reference(env, observations[m][e], variants[m])
            actions.append(action)
    shape = (len(singles), len(singles[0])) + (() if spec.is_discrete else (-1,))
    return np.array(actions).reshape(shape)


@pytest.mark.parametrize("game_id", ["gridnav", "pointnav", "duel"])
@pytest.mark.parametrize("seed", [0, 3])
def test_batched_success_is_the_single_views_is_success(game_id: str, seed: int) -> None:
    spec = builtin(game_id)
    assert spec.make_batched is not None
    space = spec.variant_space
    variants = [space.validate(v) for v in space.sample("train", 2, seed) +
                space.sample("test", 2, seed)]
    M, E = len(variants), 3
    batch = spec.make_batched(variants, E, "cpu")
    singles = [[spec.make_env(v) for _ in range(E)] for v in variants]
    batch.reset(seed)
    observations = [[env.reset(seed=seed, options={"stream": m * E + e})[0]
                     for e, env in enumerate(row)] for m, row in enumerate(singles)]
    rng = np.random.default_rng(seed)
    done = np.zeros((M, E), dtype=bool)
    ends = successes = 0
    for _ in range(batch.horizon):
        actions = mixed_actions(spec, singles, observations, variants, done, rng)
        out = batch.step(torch.as_tensor(actions))
        assert out.success is not None and out.success.dtype == torch.bool
        assert out.success.shape == (M, E)
        assert not (out.success & ~(out.terminated | out.truncated)).any()
        for m, row in enumerate(singles):
            for e, env in enumerate(row):
                if done[m, e]:  # frozen: never successful again
                    assert not out.success[m, e]
                    continue
                observations[m][e], _, terminated, truncated, info = env.step(actions[m, e])
                assert bool(out.success[m, e]) is info["is_success"], (m, e)
                assert (bool(out.terminated[m, e]), bool(out.truncated[m, e])) == (
                    terminated, truncated)
                if terminated or truncated:
                    done[m, e] = True
                    ends, successes = ends + 1, successes + info["is_success"]
        if done.all():
            break
    assert done.all() and 0 < successes < ends, (successes, ends)


# -- the Python-loop views pass is_success through ------------------------------------------

TALLY_SPACE = VariantSpace([
    Param("length", "level", IntRange(1, 10), 3, "steps per episode"),
    Param("report", "rules", IntRange(0, 2), 1,
          "1: report info['is_success'] at the end; 2: on every step (gymnasium-robotics' way: "
          "whether it would succeed now); 0: never"),
])


def successful(count: int, length: int) -> bool:
    return 2 * count >= length


class TallyEnv(gymnasium.Env):
    """Ends after ``length`` steps; a success if action 1 came on at least half of them."""

    def __init__(self, variant: dict | None = None, render_mode: str | None = None) -> None:
        full = TALLY_SPACE.validate(variant or {})
        self.length, self.report = full["level"]["length"], full["rules"]["report"]
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.t = self.count = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.t = self.count = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: Any) -> tuple:
        self.t, self.count = self.t + 1, self.count + int(action)
        ended = self.t >= self.length
        reports = self.report == 2 or (self.report == 1 and ended)
        info = {"is_success": successful(self.count, self.length)} if reports else {}
        return np.full(1, self.t, np.float32), float(action), ended, False, info


def tally_spec(success: str | None) -> GameSpec:
    space = TALLY_SPACE
    return GameSpec("tally", "count the ones", "gymnasium", TallyEnv().observation_space,
                    TallyEnv().action_space, space, TallyEnv, success=success)


TALLY_VARIANTS = [{"level": {"length": n}, "rules": {"report": r}}
                  for n, r in ((2, 1), (3, 2), (5, 0), (4, 1))]


def expected_success(variants: list[dict], envs: int, actions: np.ndarray, agents: int = 1
                     ) -> np.ndarray:
    """``[T, M, E * C]``: True on the step an env's (reporting) episode ends successfully."""
    steps, rows = actions.shape[0], len(variants) * envs * agents
    flat = actions.reshape(steps, len(variants), envs, agents)
    out = np.zeros((steps, len(variants), envs, agents), dtype=bool)
    for m, v in enumerate(variants):
        length, report = v["level"]["length"], v["rules"]["report"]
        if report and length <= steps:
            counts = flat[:length, m].sum(0)
            out[length - 1, m] = [[successful(int(c), length) for c in row] for row in counts]
    return out.reshape(steps, len(variants), rows // len(variants))


@pytest.mark.parametrize("declared", [None, "more ones than zeros"])
def test_gym_vector_game_passes_is_success_through(declared: str | None) -> None:
    # length-2 envs end at step 2, and the vector env's auto-reset ends them again; the
    # length-3 ones report is_success on every step: only their last step counts
    E, steps = 2, 9
    game = GymVectorGame(tally_spec(declared), TALLY_VARIANTS, E, horizon=steps)
    actions = np.random.default_rng(0).integers(0, 2, (steps, len(TALLY_VARIANTS), E))
    actions[2:] = 1  # later episodes of auto-reset envs would succeed: frozen, they must not
    expected = expected_success(TALLY_VARIANTS, E, actions)
    assert expected.any() and not expected.all()
    game.reset(0)
    for t in range(steps):
        out = game.step(torch.as_tensor(actions[t]))
        assert out.success is not None and out.success.dtype == torch.bool
        np.testing.assert_array_equal(out.success.numpy(), expected[t], err_msg=f"step {t}")
    game.close()


def test_gym_vector_game_reports_none_when_the_envs_never_report() -> None:
    variants = [dict(v, rules={"report": 0}) for v in TALLY_VARIANTS]
    game = GymVectorGame(tally_spec(None), variants, 2, horizon=6)
    game.reset(0)
    for _ in range(6):
        assert game.step(torch.ones(len(variants), 2, dtype=torch.long)).success is None
    game.close()
    declared = GymVectorGame(tally_spec("declared"), variants, 2, horizon=6)
    declared.reset(0)
    out = declared.step(torch.ones(len(variants), 2, dtype=torch.long))
    assert out.success is not None and not out.success.any()
    declared.close()


class TallyParallelEnv:
    """Two agents tally their own ones; both end after ``length`` steps (PettingZoo API)."""

    metadata = {"name": "tally_v0"}
    possible_agents = ["a", "b"]

    def __init__(self, variant: dict | None = None, render_mode: str | None = None) -> None:
        self.env = TallyEnv(variant)
        self.agents: list[str] = []
        self.counts: dict[str, int] = {}

    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.env.observation_space

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.env.action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        self.env.t, self.agents, self.counts = 0, list(self.possible_agents), {"a": 0, "b": 0}
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple:
        self.env.t += 1
        for agent, action in actions.items():
            self.counts[agent] += int(action)
        ended, agents = self.env.t >= self.env.length, self.agents
        infos: dict[str, dict] = {a: {} for a in agents}
        if self.env.report == 2 or (ended and self.env.report == 1):
            infos = {a: {"is_success": successful(self.counts[a], self.env.length)}
                     for a in agents}
        if ended:
            self.agents = []
        observations = {a: np.full(1, self.env.t, np.float32) for a in agents}
        return (observations, {a: float(actions[a]) for a in agents}, dict.fromkeys(agents, ended),
                dict.fromkeys(agents, False), infos)

    def close(self) -> None:
        pass


def always_one(env: Any, agent: str, observation: Any, variant: Any) -> int:
    return 1


def tally_parallel_spec(success: str | None) -> GameSpec:
    def make_env(variant: dict | None = None, render_mode: str | None = None) -> gymnasium.Env:
        full = TALLY_SPACE.validate(variant or {})
        return ControlledAgentEnv(TallyParallelEnv(full), "a", always_one, full)

    probe = TallyEnv()
    return GameSpec("tally2", "two tallies", "pettingzoo", probe.observation_space,
                    probe.action_space, TALLY_SPACE, make_env, agents=("a", "b"), learner="a",
                    make_parallel_env=TallyParallelEnv, opponent=always_one,
                    max_episode_steps=8, success=success)


@pytest.mark.parametrize("declared", [None, "more ones than zeros"])
def test_parallel_vector_game_passes_each_agents_is_success_through(declared: str | None
                                                                    ) -> None:
    E, C, steps = 2, 2, 8
    game = ParallelVectorGame(tally_parallel_spec(declared), TALLY_VARIANTS, E, "cpu",
                              ("a", "b"))
    actions = np.random.default_rng(1).integers(0, 2, (steps, len(TALLY_VARIANTS), E * C))
    expected = expected_success(TALLY_VARIANTS, E, actions, C)
    assert expected.any() and not expected.all()
    game.reset(0)
    for t in range(steps):
        out = game.step(torch.as_tensor(actions[t]))
        assert out.success is not None and out.success.shape == (len(TALLY_VARIANTS), E * C)
        np.testing.assert_array_equal(out.success.numpy(), expected[t], err_msg=f"step {t}")
    game.close()


def test_parallel_vector_game_without_reports_leaves_success_none() -> None:
    variants = [dict(v, rules={"report": 0}) for v in TALLY_VARIANTS]
    game = ParallelVectorGame(tally_parallel_spec(None), variants, 2, "cpu", ("a",))
    game.reset(0)
    for _ in range(8):
        assert game.step(torch.ones(len(variants), 2, dtype=torch.long)).success is None
    game.close()


def test_the_learners_view_in_a_vector_env_reports_the_learners_success() -> None:
    game = GymVectorGame(tally_parallel_spec("declared"), TALLY_VARIANTS[:2], 1, horizon=4)
    game.reset(0)
    outs = [game.step(torch.zeros(2, 1, dtype=torch.long)) for _ in range(3)]
    # "a" pressed 0 (fails), the opponent "b" pressed 1: only "a"'s success is reported
    assert all(out.success is not None and not out.success.any() for out in outs)
    game.close()


# -- reference_returns ----------------------------------------------------------------------

def test_reference_returns_shapes_and_seeding() -> None:
    spec = builtin("gridnav")
    variants = [spec.variant_space.parse_assignments(["rules.slip=0.4"], v)
                for v in spec.variant_space.sample("test", 3, seed=2)]
    returns, success = reference_returns(spec, variants, 4, seed=11)
    assert returns.shape == (3, 4) and returns.dtype == torch.float32
    assert success is not None and success.shape == (3, 4) and success.dtype == torch.bool
    again, success_again = reference_returns(spec, variants, 4, seed=11)
    assert torch.equal(returns, again) and success_again is not None
    assert torch.equal(success, success_again)
    other, _ = reference_returns(spec, variants, 4, seed=12)
    assert not torch.equal(returns, other)  # slip 0.4: another seed, other slips
    # episode i of variant m is reset with derive_seed(seed, m * episodes + i)
    env = spec.make_env(variants[2])
    total, won = play_reference(spec, env, spec.variant_space.validate(variants[2]),
                                derive_seed(11, 2 * 4 + 1))
    assert np.float32(total) == returns[2, 1].item() and won == bool(success[2, 1])


def test_reference_returns_without_success_or_reference() -> None:
    spec = dataclasses.replace(builtin("pointnav"), success=None)
    returns, success = reference_returns(spec, [{}], 2, seed=0)
    assert success is None and returns.shape == (1, 2)
    with pytest.raises(GameadaptError, match="game 'cartpole' has no reference") as error:
        reference_returns(builtin("cartpole"), [{}], 2, seed=0)
    assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("game_id, least_success", [("gridnav", 1.0), ("pointnav", 1.0),
                                                    ("duel", 0.95)])
def test_reference_on_held_out_variants(game_id: str, least_success: float) -> None:
    """The figures of the reference row: 40 held-out variants x 20 episodes (printed)."""
    spec = builtin(game_id)
    variants = spec.variant_space.sample("test", 40, seed=0)
    returns, success = reference_returns(spec, variants, 20, seed=0)
    assert success is not None
    rate = success.float().mean().item()
    print(f"\n{game_id} reference, 40 held-out variants x 20 episodes: mean return "
          f"{returns.mean().item():.3f}, success {rate:.1%}")
    assert rate >= least_success
