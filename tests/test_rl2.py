"""The recurrent (RL²) family: the GRU, trials, their advantages and gradients, and memory."""

from __future__ import annotations

import contextlib

import fakegame
import gymnasium
import numpy as np
import pytest
import torch
from gameadapt.errors import GameadaptError
from gameadapt.game import BatchedStep
from gameadapt.hashrandom import derive_seed
from gameadapt.host.registry import get_registry
from gameadapt.learn.recurrent import RecurrentPolicy
from gameadapt.learn.rl2 import RL2, RL2Config, ppo_loss
from gameadapt.learn.trials import sample_trials, trial_advantages
from gameadapt.learn.vector import make_batched_game

OBS = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def make_policy(discrete: bool = True, hidden: int = 8, seed: int = 0) -> RecurrentPolicy:
    torch.manual_seed(seed)
    actions = gymnasium.spaces.Discrete(4) if discrete else gymnasium.spaces.Box(-2, 2, (2,))
    return RecurrentPolicy(OBS, actions, hidden)


class Bandit:
    """A two-armed bandit per task, one step per episode: reward 1 for the task's good arm.

    Only memory of an earlier episode's reward can tell which arm is good.
    """

    horizon = 1
    agents = ()

    def __init__(self, good_arms: list[int], envs_per_task: int) -> None:
        self.num_tasks, self.envs_per_task = len(good_arms), envs_per_task
        self.device = torch.device("cpu")
        self.good = torch.tensor(good_arms).unsqueeze(1)

    def reset(self, seed: int) -> torch.Tensor:
        return torch.ones(self.num_tasks, self.envs_per_task, 1)

    def step(self, action: torch.Tensor) -> BatchedStep:
        done = torch.ones(self.num_tasks, self.envs_per_task, dtype=torch.bool)
        won = action == self.good
        return BatchedStep(self.reset(0), won.float(), done, ~done, won)

    def close(self) -> None:
        pass


def test_gru_update_is_torchs_gru_cell() -> None:
    policy = make_policy()
    inputs = torch.randn(5, policy.input_size)
    state = torch.randn(5, policy.hidden_size)
    torch.testing.assert_close(policy.step(inputs, state), policy.core(inputs, state))


def test_unroll_equals_stepping_with_a_held_state() -> None:
    policy = make_policy(discrete=False)
    inputs = torch.randn(7, 3, policy.input_size)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1],
                         [1, 1, 0], [0, 0, 1]], dtype=torch.float32)
    dist, values = policy.unroll(inputs, mask)
    state = policy.initial_state(3)
    for t in range(7):
        for b in range(3):
            if mask[t, b]:
                state[b] = policy.core(inputs[t, b:b + 1], state[b:b + 1])[0]
        with torch.no_grad():
            (mean, _), value = policy.heads(state)
        live = mask[t] > 0
        torch.testing.assert_close(dist[0][t][live], mean[live])
        torch.testing.assert_close(values[t][live], value[live])


def test_action_features() -> None:
    discrete, box = make_policy(), make_policy(discrete=False)
    assert discrete.action_features(torch.tensor([2])).tolist() == [[0, 0, 1, 0]]
    # policy units of the clipped env action: a = 0.5 is the env action 1.0 of [-2, 2]
    features = box.action_features(torch.tensor([[0.5, 3.0]]))
    torch.testing.assert_close(features, torch.tensor([[0.5, 1.0]]))


@pytest.mark.parametrize("game_id", ["gridnav", "pointnav"])
def test_batched_trials_equal_a_single_env_reference(game_id: str) -> None:
    """Every env's trial replays in the gymnasium view, step by step, with the state, the
    previous action and reward carried across the episode boundary."""
    spec = get_registry().game(game_id)
    variants = spec.variant_space.sample("train", 2, 3)
    torch.manual_seed(1)
    policy = RecurrentPolicy(spec.observation_space, spec.action_space, 8)
    with contextlib.closing(make_batched_game(spec, variants, 2)) as game:
        trials = sample_trials(game, policy, 2, seed=11)
    assert trials.num_episodes == 2
    for m in range(2):
        for e in range(2):
            _replay_one(spec, policy, variants[m], trials, m, e, stream=m * 2 + e, seed=11)


def _replay_one(spec, policy, variant, trials, m, e, stream, seed) -> None:  # noqa: ANN001
    env = spec.make_env(variant)
    state = policy.initial_state(1)
    previous_action, previous_reward = policy.no_action(1), torch.zeros(1)
    live = trials.mask[:, m, e] > 0
    steps = torch.nonzero(live).flatten().tolist()
    cursor = 0
    for episode in range(trials.num_episodes):
        obs, _ = env.reset(seed=derive_seed(seed, episode), options={"stream": stream})
        start, done = torch.ones(1), False
        while not done:
            t = steps[cursor]
            assert int(trials.episode[t]) == episode
            inputs = policy.step_input(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1),
                                       previous_action, previous_reward, start)
            torch.testing.assert_close(trials.inputs[t, m, e], inputs[0])
            with torch.no_grad():
                state = policy.step(inputs, state)
                dist, value = policy.heads(state)
            action = trials.actions[t, m, e].unsqueeze(0)
            torch.testing.assert_close(trials.values[t, m, e], value[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(trials.log_probs[t, m, e], policy.log_prob(dist, action)[0],
                                       atol=1e-5, rtol=1e-5)
            env_action = policy.to_env_action(action)[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(
                int(env_action) if policy.discrete else env_action)
            assert float(trials.rewards[t, m, e]) == pytest.approx(reward, abs=1e-5)
            previous_action = policy.action_features(action)
            previous_reward, start = torch.tensor([float(reward)]), torch.zeros(1)
            done, cursor = terminated or truncated, cursor + 1
    assert cursor == len(steps)


def _reference_gae(rewards: list[float], values: list[float], gamma: float, lam: float
                   ) -> list[float]:
    advantages, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(rewards) else 0.0
        running = rewards[t] + gamma * next_value - values[t] + gamma * lam * running
        advantages[t] = running
    return advantages


def test_trial_advantages_run_over_the_episode_gaps() -> None:
    generator = torch.Generator().manual_seed(0)
    rewards = torch.randn(9, 2, 3, generator=generator)
    values = torch.randn(9, 2, 3, generator=generator)
    mask = (torch.rand(9, 2, 3, generator=generator) > 0.3).float()
    mask[0] = 1
    advantages, returns = trial_advantages(rewards * mask, values, mask, 0.9, 0.8)
    for m in range(2):
        for e in range(3):
            live = torch.nonzero(mask[:, m, e]).flatten()
            expected = _reference_gae(rewards[live, m, e].tolist(), values[live, m, e].tolist(),
                                      0.9, 0.8)
            torch.testing.assert_close(advantages[live, m, e], torch.tensor(expected))
            torch.testing.assert_close(returns[live, m, e], torch.tensor(expected)
                                       + values[live, m, e])
    assert (advantages[mask == 0] == 0).all() and (returns[mask == 0] == 0).all()


def test_gradient_through_time_equals_a_per_trial_reference() -> None:
    """The batched, masked BPTT gradient of the PPO loss equals the gradient of the same loss
    computed trial by trial with torch's GRUCell over each trial's own steps only."""
    torch.manual_seed(0)
    policy = RecurrentPolicy(fakegame.OBSERVATION_SPACE, fakegame.DISCRETE_ACTIONS, 6)
    game = fakegame.FakeGame([(0.5, 0.5), (-0.5, 0.2)], 2, lifetimes=[3, 9], horizon=6,
                             discrete=True)  # task 0 ends early: gaps in the timeline
    trials = sample_trials(game, policy, 3, seed=3)
    assert (trials.mask == 0).any()
    config = RL2Config(hidden_size=6)
    advantages, returns = trial_advantages(trials.rewards, trials.values, trials.mask, 0.9, 0.95)
    batch = {"inputs": trials.inputs.flatten(1, 2), "actions": trials.actions.flatten(1, 2),
             "mask": trials.mask.flatten(1, 2), "log_probs": trials.log_probs.flatten(1, 2),
             "advantages": advantages.flatten(1, 2), "returns": returns.flatten(1, 2)}
    loss, _ = ppo_loss(policy, batch, config)
    grads = torch.autograd.grad(loss, list(policy.parameters()))
    reference = _reference_loss(policy, batch, config)
    expected = torch.autograd.grad(reference, list(policy.parameters()))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def _reference_loss(policy: RecurrentPolicy, batch: dict[str, torch.Tensor],
                    config: RL2Config) -> torch.Tensor:
    mask = batch["mask"]
    live = mask > 0
    alive = batch["advantages"][live]
    adv = (batch["advantages"] - alive.mean()) / (alive.std(unbiased=False) + 1e-8)
    terms = []
    for b in range(mask.shape[1]):
        state = policy.initial_state(1)
        for t in torch.nonzero(mask[:, b]).flatten().tolist():
            state = policy.core(batch["inputs"][t, b:b + 1], state)
            dist, value = policy.heads(state)
            action = batch["actions"][t, b:b + 1]
            ratio = torch.exp(policy.log_prob(dist, action) - batch["log_probs"][t, b])
            a = adv[t, b]
            surrogate = torch.minimum(ratio * a, ratio.clamp(0.8, 1.2) * a)
            terms.append((-surrogate, (value - batch["returns"][t, b]) ** 2,
                          policy.entropy(dist)))
    pg, vf, ent = (torch.cat(parts).mean() for parts in zip(*terms))
    return pg + config.value_coef * vf - config.entropy_coef * ent


def _train_bandit(iterations: int, seed: int = 0) -> tuple[RL2, RecurrentPolicy]:
    config = RL2Config.from_mapping({"hidden_size": 16, "trial_episodes": 4, "lr": 0.01,
                                     "entropy_coef": 0.0, "minibatches": 2})
    algorithm = RL2(config)
    torch.manual_seed(seed)
    policy = algorithm.make_policy(gymnasium.spaces.Box(0, 1, (1,)), gymnasium.spaces.Discrete(2))
    params = dict(policy.named_parameters())
    optimizer = algorithm.make_optimizer(params)
    arms = torch.Generator().manual_seed(seed)
    for iteration in range(iterations):
        good = torch.randint(0, 2, (16,), generator=arms).tolist()
        algorithm.meta_train_step(policy, params, optimizer, Bandit(good, 8), iteration)
    return algorithm, policy


def test_memory_solves_the_bandit_and_resets_at_a_new_trial() -> None:
    """Only the state carried across episodes can find the good arm: after the first
    episode of a trial it is played almost always; a new trial starts from knowing nothing."""
    _, policy = _train_bandit(60)
    game = Bandit([0, 1] * 50, 4)
    played = sample_trials(game, policy, 4, seed=123, greedy=True)
    per_episode = played.episode_returns.mean(dim=(1, 2))
    assert 0.3 < per_episode[0] < 0.7  # the first pull is a guess (the arms are balanced)
    assert per_episode[1:].min() > 0.95
    assert played.success is not None and played.success.float().mean(dim=(1, 2))[1] > 0.95
    # The same policy with its state dropped between episodes cannot use what it saw.
    forgetful = [sample_trials(game, policy, 1, seed=123 + k, greedy=True).episode_returns
                 for k in range(3)]
    assert all(0.3 < returns.mean() < 0.7 for returns in forgetful)


def test_rl2_options_are_validated() -> None:
    assert RL2Config.from_mapping({"hidden_size": "32"}).hidden_size == 32
    with pytest.raises(GameadaptError, match="trial_episodes"):
        RL2Config.from_mapping({"trial_episodes": 0})
    with pytest.raises(GameadaptError, match="unknown algorithm option 'inner_lr'"):
        RL2Config.from_mapping({"inner_lr": 0.1})
