"""Batched episode sampling: reproducibility, masks, per-task parameters, gymnasium.vector."""

from __future__ import annotations

import gymnasium
import pytest
import torch
from fakegame import BOX_ACTIONS, DISCRETE_ACTIONS, OBSERVATION_SPACE, FakeGame
from gameadapt.game import GameSpec
from gameadapt.learn.policy import MLPPolicy, evaluate_actions, expand_params, policy_params
from gameadapt.learn.rollout import sample_episodes
from gameadapt.learn.vector import GymVectorGame, make_batched_game
from gameadapt.variants import VariantSpace

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead on small machines

GOALS = [(0.3, 0.2), (-0.4, 0.1), (0.0, -0.3)]
LIFETIMES = [3, 7, 20]


def make_policy(discrete: bool) -> MLPPolicy:
    torch.manual_seed(0)
    return MLPPolicy(OBSERVATION_SPACE, DISCRETE_ACTIONS if discrete else BOX_ACTIONS, (8,))


def per_task_params(policy: MLPPolicy) -> dict[str, torch.Tensor]:
    """Different parameters for each of the three tasks."""
    shared = {n: v.detach() for n, v in policy_params(policy).items()}
    return {n: v + 0.3 * torch.randn(v.shape) for n, v in expand_params(shared, 3).items()}


@pytest.mark.parametrize("discrete", [False, True])
def test_same_seed_same_episodes(discrete: bool) -> None:
    policy = make_policy(discrete)
    params = per_task_params(policy)
    game = FakeGame(GOALS, 5, LIFETIMES, horizon=10, discrete=discrete)
    first = sample_episodes(game, policy, params, 7)
    again = sample_episodes(game, policy, params, 7)
    for a, b in zip(first[:5], again[:5]):
        assert torch.equal(a, b)
    assert first.success is None and again.success is None  # FakeGame reports no success
    other = sample_episodes(game, policy, params, 8)
    assert not torch.equal(first.actions, other.actions)


@pytest.mark.parametrize("discrete", [False, True])
def test_shapes_and_masks_after_termination(discrete: bool) -> None:
    policy = make_policy(discrete)
    game = FakeGame(GOALS, 5, LIFETIMES, horizon=10, discrete=discrete)
    episodes = sample_episodes(game, policy, per_task_params(policy), 0)
    assert episodes.observations.shape == (10, 3, 5, 2)
    assert episodes.actions.shape == ((10, 3, 5) if discrete else (10, 3, 5, 2))
    assert episodes.rewards.shape == episodes.mask.shape == episodes.log_probs.shape == (10, 3, 5)
    lengths = torch.tensor([3, 7, 10]).view(3, 1).expand(3, 5)  # terminated, terminated, truncated
    assert torch.equal(episodes.mask.sum(0), lengths.float())
    expected = (torch.arange(10).view(-1, 1, 1) < lengths).float()
    assert torch.equal(episodes.mask, expected)
    assert torch.all(episodes.rewards[episodes.mask == 0] == 0)
    assert torch.all(episodes.rewards[episodes.mask == 1] < 0)
    torch.testing.assert_close(episodes.returns, episodes.rewards.sum(0))
    assert episodes.num_steps == int(lengths.sum())
    # frozen after the end: the observation after the last step repeats
    assert torch.equal(episodes.observations[4, 0], episodes.observations[5, 0])


def test_episodes_stop_early_when_every_env_ended() -> None:
    policy = make_policy(False)
    params = {n: v[:2] for n, v in per_task_params(policy).items()}
    episodes = sample_episodes(FakeGame(GOALS[:2], 2, [3, 4], horizon=10), policy, params, 0)
    assert episodes.mask.shape[0] == 4


@pytest.mark.parametrize("discrete", [False, True])
def test_log_probs_come_from_each_tasks_own_params(discrete: bool) -> None:
    policy = make_policy(discrete)
    params = per_task_params(policy)
    episodes = sample_episodes(game := FakeGame(GOALS, 4, horizon=6, discrete=discrete),
                               policy, params, 1)
    assert game.horizon == episodes.mask.shape[0]
    for task in range(3):
        log_probs, _ = evaluate_actions(policy, {n: v[task] for n, v in params.items()},
                                        episodes.observations[:, task], episodes.actions[:, task])
        torch.testing.assert_close(log_probs, episodes.log_probs[:, task])


def test_continuous_actions_are_scaled_and_clipped_before_the_game() -> None:
    policy = make_policy(False)
    params = {n: v.detach().clone() for n, v in expand_params(policy_params(policy), 3).items()}
    params["log_std"] += 1.0  # std e: many samples fall outside [-1, 1]
    game = FakeGame(GOALS, 8, horizon=5)
    episodes = sample_episodes(game, policy, params, 0)
    sent = torch.stack(game.sent_actions)
    assert sent.abs().max() <= 0.1 + 1e-7
    assert episodes.actions.abs().max() > 1.0
    # Box(-0.1, 0.1): the policy's unit is the half-range 0.1
    torch.testing.assert_close(sent, (0.1 * episodes.actions).clamp(-0.1, 0.1))


# -- gymnasium.vector ------------------------------------------------------------------------
def cartpole_spec() -> GameSpec:
    def make_env(variant: dict | None = None, render_mode: str | None = None) -> gymnasium.Env:
        return gymnasium.make("CartPole-v1", max_episode_steps=40)

    probe = make_env()
    return GameSpec("test-cartpole", "CartPole for tests", "gymnasium", probe.observation_space,
                    probe.action_space, VariantSpace([]), make_env)


def test_gymnasium_vector_adapter_gives_the_same_structure() -> None:
    spec = cartpole_spec()
    game = make_batched_game(spec, [{}, {}], 3)
    assert isinstance(game, GymVectorGame) and game.horizon == 40
    torch.manual_seed(0)
    policy = MLPPolicy(spec.observation_space, spec.action_space, (8,))
    params = expand_params({n: v.detach() for n, v in policy_params(policy).items()}, 2)
    episodes = sample_episodes(game, policy, params, 3)
    steps = episodes.mask.shape[0]
    assert episodes.observations.shape == (steps, 2, 3, 4)
    assert episodes.actions.shape == (steps, 2, 3) and episodes.actions.dtype == torch.long
    lengths = episodes.mask.sum(0)
    # one episode per env: alive for its first `length` steps, then never again
    assert torch.equal(episodes.mask, (torch.arange(steps).view(-1, 1, 1) < lengths).float())
    assert lengths.min() < 40  # a random policy drops the pole within 40 steps somewhere
    torch.testing.assert_close(episodes.returns, lengths)  # CartPole: reward 1 per alive step
    again = sample_episodes(game, policy, params, 3)
    for a, b in zip(episodes[:5], again[:5]):
        assert torch.equal(a, b)
    assert (episodes.success is None) == (again.success is None)
    if episodes.success is not None:
        assert torch.equal(episodes.success, again.success)
    game.close()


def test_gymnasium_vector_adapter_replays_single_envs() -> None:
    spec = cartpole_spec()
    game = GymVectorGame(spec, [{}], 2, horizon=15)
    observations = game.reset(11)
    single = spec.make_env()
    obs, _ = single.reset(seed=game.vector.envs[1].np_random_seed)
    torch.testing.assert_close(observations[0, 1], torch.as_tensor(obs))
    for _ in range(15):
        result = game.step(torch.ones(1, 2, dtype=torch.long))
        obs, _, terminated, truncated, _ = single.step(1)
        if terminated or truncated:
            break
        torch.testing.assert_close(result.observation[0, 1], torch.as_tensor(obs))
    assert bool(result.terminated[0, 1]) == terminated


@pytest.mark.parametrize(("game_id", "agents", "fixed"), [
    ("gridnav", (), ()), ("cartpole", (), ()),
    ("duel", ("attacker",), ("rules.defender_speed=0.5",)),  # the scripted defender's dice
    ("duel", ("attacker", "defender"), ()),  # no randomness left: the replay only
])
def test_a_slice_of_a_meta_batch_replays_its_tasks_streams(game_id: str, agents: tuple,
                                                           fixed: tuple) -> None:
    """A batch of tasks 2..3 made with ``first_task=2`` steps exactly like tasks 2..3 of the
    whole batch (the random streams follow the global task index)."""
    from gameadapt.host.registry import get_registry

    spec = get_registry().game(game_id)
    variants = [spec.variant_space.parse_assignments(fixed, v)
                for v in spec.variant_space.sample("train", 5, seed=4)]
    whole = make_batched_game(spec, variants, 3, "cpu", agents or None)
    part = make_batched_game(spec, variants[2:4], 3, "cpu", agents or None, first_task=2)
    other = make_batched_game(spec, variants[2:4], 3, "cpu", agents or None)
    try:
        obs_whole, obs_part, obs_other = whole.reset(7), part.reset(7), other.reset(7)
        torch.testing.assert_close(obs_part, obs_whole[2:4], rtol=0, atol=0)
        differs = not torch.equal(obs_other, obs_whole[2:4])
        generator = torch.Generator().manual_seed(0)
        for _ in range(12):
            if spec.is_discrete:
                action = torch.randint(0, int(spec.action_space.n), obs_whole.shape[:2],
                                       generator=generator)
            else:
                action = torch.rand(*obs_whole.shape[:2], spec.action_space.shape[0],
                                    generator=generator)
            step_whole, step_part = whole.step(action), part.step(action[2:4])
            step_other = other.step(action[2:4])
            for got, want in zip(step_part, step_whole):
                torch.testing.assert_close(got, want[2:4], rtol=0, atol=0)
            differs = differs or not torch.equal(step_other.observation,
                                                 step_whole.observation[2:4])
        if len(agents) < 2:
            assert differs, "without first_task the slice should draw other streams"
    finally:
        for game in (whole, part, other):
            game.close()


def test_the_parallel_env_loop_replays_a_slices_streams_too() -> None:
    """:class:`ParallelVectorGame` (PettingZoo envs in a Python loop) honours ``first_task``."""
    from gameadapt.host.registry import get_registry
    from gameadapt.learn.vector import ParallelVectorGame

    spec = get_registry().game("duel")
    variants = [spec.variant_space.parse_assignments(["rules.defender_speed=0.5"], v)
                for v in spec.variant_space.sample("train", 4, seed=1)]
    whole = ParallelVectorGame(spec, variants, 2, "cpu", ("attacker",))
    part = ParallelVectorGame(spec, variants[1:3], 2, "cpu", ("attacker",), first_task=1)
    try:
        torch.testing.assert_close(part.reset(3), whole.reset(3)[1:3], rtol=0, atol=0)
        generator = torch.Generator().manual_seed(0)
        for _ in range(10):
            action = torch.randint(0, 5, (4, 2), generator=generator)
            for got, want in zip(part.step(action[1:3]), whole.step(action)):
                torch.testing.assert_close(got, want[1:3], rtol=0, atol=0)
    finally:
        whole.close()
        part.close()
