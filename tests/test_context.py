"""The context family: the product-of-Gaussians posterior (order, padding, incremental vs
batch, KL), its trials and gradients, task inference on a bandit, and runs through the CLI."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.errors import GameadaptError
from gameadapt.host.registry import get_registry
from gameadapt.learn.context import Context, ContextConfig, context_loss
from gameadapt.learn.context_policy import ContextPolicy
from gameadapt.learn.posterior import (add_factors, episode_start_sums, kl_to_prior, posterior,
                                       prior_sums)
from gameadapt.learn.ppo import flatten_trials
from gameadapt.learn.trials import sample_trials
from gameadapt.learn.vector import make_batched_game
from gameadapt.train.latents import separation
from test_experience import QUICK_EVAL, evaluate_json
from test_rl2 import Bandit
from test_trainer import TINY, assert_same_policy, returns, train

OBS = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32)
CONTEXT_TINY = [*TINY, "--algo", "context", "-o", "hidden_sizes=16", "-o", "encoder_sizes=16"]


def make_policy(discrete: bool = True, seed: int = 0, latent: int = 3) -> ContextPolicy:
    torch.manual_seed(seed)
    actions = gymnasium.spaces.Discrete(4) if discrete else gymnasium.spaces.Box(-2, 2, (2,))
    return ContextPolicy(OBS, actions, latent, (16,), (16,))


def random_factors(policy: ContextPolicy, count: int, seed: int = 0):  # noqa: ANN201
    generator = torch.Generator().manual_seed(seed)
    transitions = torch.randn(count, policy.transition_size, generator=generator)
    with torch.no_grad():
        return policy.factors(transitions)


def incremental_sums(policy: ContextPolicy, factors, order, live=None):  # noqa: ANN001, ANN201
    sums = policy.prior_sums(1)
    for i in order:
        flag = torch.ones(1) if live is None else live[i:i + 1]
        sums = add_factors(sums, (factors[0][i:i + 1], factors[1][i:i + 1]), flag)
    return sums


def test_the_posterior_does_not_depend_on_the_order_of_transitions() -> None:
    policy = make_policy()
    factors = random_factors(policy, 12)
    forward = posterior(incremental_sums(policy, factors, range(12)))
    shuffled = posterior(incremental_sums(policy, factors, torch.randperm(12).tolist()))
    for a, b in zip(forward, shuffled):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_masked_transitions_do_not_change_the_posterior() -> None:
    policy = make_policy()
    factors = random_factors(policy, 10)
    live = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 0, 1], dtype=torch.float32)
    padded = incremental_sums(policy, factors, range(10), live)
    kept = [i for i in range(10) if live[i]]
    alone = incremental_sums(policy, factors, kept)
    torch.testing.assert_close(padded[0], alone[0])
    torch.testing.assert_close(padded[1], alone[1])


def test_no_transitions_is_the_prior_and_the_posterior_is_the_product_of_gaussians() -> None:
    mean, variance = posterior(prior_sums(2, latent_size=3))
    assert torch.equal(mean, torch.zeros(2, 3)) and torch.equal(variance, torch.ones(2, 3))
    policy = make_policy()
    factors = random_factors(policy, 4)
    mean, variance = posterior(incremental_sums(policy, factors, range(4)))
    # brute force: multiply N(0, 1) by each N(mu_i, var_i), one dim at a time, on a grid
    precision, weighted = factors
    mus, variances = weighted / precision, 1 / precision
    grid = torch.linspace(-6, 6, 200001, dtype=torch.float64)
    for dim in range(policy.latent_size):
        log_density = -0.5 * grid ** 2
        for mu, var in zip(mus[:, dim].double(), variances[:, dim].double()):
            log_density = log_density - 0.5 * (grid - mu) ** 2 / var
        weights = torch.softmax(log_density, 0)
        grid_mean = (weights * grid).sum()
        grid_var = (weights * (grid - grid_mean) ** 2).sum()
        assert abs(grid_mean - mean[0, dim].double()) < 1e-4
        assert abs(grid_var / variance[0, dim].double() - 1) < 1e-3


def test_the_kl_term_equals_its_closed_form() -> None:
    mean = torch.randn(6, 5)
    variance = torch.rand(6, 5) + 0.05
    expected = torch.distributions.kl_divergence(
        torch.distributions.Independent(torch.distributions.Normal(mean, variance.sqrt()), 1),
        torch.distributions.Independent(torch.distributions.Normal(torch.zeros(5), torch.ones(5)),
                                        1))
    torch.testing.assert_close(kl_to_prior(mean, variance), expected)


def test_episode_start_sums_equal_the_incremental_sums_of_earlier_episodes() -> None:
    policy = make_policy()
    steps, batch = 9, 3
    factors = random_factors(policy, steps * batch)
    factors = tuple(f.reshape(steps, batch, -1) for f in factors)
    mask = (torch.rand(steps, batch, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    episode = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2]).unsqueeze(1).expand(steps, batch)
    starts = episode_start_sums(factors, mask, episode, 3)
    for b in range(batch):
        for k in range(3):
            earlier = [t for t in range(steps) if episode[t, b] < k]
            flat = tuple(f[:, b] for f in factors)
            expected = incremental_sums(policy, flat, earlier, mask[:, b])
            torch.testing.assert_close(starts[0][k, b], expected[0][0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(starts[1][k, b], expected[1][0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("game_id", "latent", "z_update"), [
    ("gridnav", "sample", "episode"), ("pointnav", "mean", "episode"),
    ("gridnav", "sample", "step"), ("pointnav", "sample", "step")])
def test_training_replays_the_trials_as_they_were_played(game_id: str, latent: str,
                                                         z_update: str) -> None:
    """The batch form (the posterior from the stored transitions and noise, per episode or
    per step) gives the log-probabilities and values the incremental rollout acted with."""
    spec = get_registry().game(game_id)
    torch.manual_seed(2)
    policy = ContextPolicy(spec.observation_space, spec.action_space, 4, (16,), (16,),
                           z_update=z_update)  # type: ignore[arg-type]
    with contextlib.closing(make_batched_game(spec, spec.variant_space.sample("train", 3, 4),
                                              2)) as game:
        trials = sample_trials(game, policy, 3, seed=7, latent=latent)  # type: ignore[arg-type]
    assert trials.noise is not None and trials.noise.shape == (3, 3, 2, 4)
    assert bool((trials.noise == 0).all()) == (latent == "mean")
    batch = flatten_trials(policy, trials, ContextConfig())
    with torch.no_grad():
        dist, values, kl = policy.unroll(batch["inputs"], batch["mask"], batch["episode"],
                                         batch["noise"])
    live = batch["mask"] > 0
    torch.testing.assert_close(policy.log_prob(dist, batch["actions"])[live],
                               batch["log_probs"][live], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(values[live], trials.values.reshape(values.shape)[live],
                               rtol=1e-4, atol=1e-4)
    assert kl.shape == (2, 6) and bool((kl > 0).all())


def test_the_loss_reaches_the_encoder() -> None:
    spec = get_registry().game("gridnav")
    torch.manual_seed(0)
    policy = ContextPolicy(spec.observation_space, spec.action_space, 3, (16,), (16,))
    with contextlib.closing(make_batched_game(spec, spec.variant_space.sample("train", 2, 0),
                                              3)) as game:
        trials = sample_trials(game, policy, 2, seed=3)
    config = ContextConfig(kl_weight=0.0)
    loss, _ = context_loss(policy, flatten_trials(policy, trials, config), config)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.encoder.parameters())


def test_task_inference_solves_the_bandit_from_the_first_episode() -> None:
    """Only the posterior of the first episode's transition can tell the good arm: after
    it the good arm is played almost always, with z at the posterior mean or drawn from it;
    a new trial starts from the prior again."""
    torch.manual_seed(0)
    actions = gymnasium.spaces.Discrete(2)
    algorithm = Context(ContextConfig(latent_size=2, hidden_sizes=(16,), encoder_sizes=(16,),
                                      lr=3e-3, trial_episodes=3, entropy_coef=0.0))
    policy = algorithm.make_policy(gymnasium.spaces.Box(0, 1, (1,), np.float32), actions)
    params = dict(policy.named_parameters())
    optimizer = algorithm.make_optimizer(params)
    arms = torch.Generator().manual_seed(5)
    for iteration in range(150):
        good = torch.randint(0, 2, (16,), generator=arms).tolist()
        algorithm.meta_train_step(policy, params, optimizer, Bandit(good, 8), iteration)
    game = Bandit([0, 1] * 50, 4)
    for latent in ("mean", "sample"):
        played = sample_trials(game, policy, 4, seed=123, greedy=True, latent=latent)
        per_episode = played.episode_returns.mean(dim=(1, 2))
        assert 0.3 < per_episode[0] < 0.7, latent  # the first pull acts on the prior
        # z drawn from the posterior of one pull is sometimes on the wrong side
        assert per_episode[1:].min() > (0.95 if latent == "mean" else 0.85), (latent, per_episode)


def test_context_options_are_validated() -> None:
    config = ContextConfig.from_mapping({"hidden_sizes": "32,32", "latent_size": "7"})
    assert config.hidden_sizes == (32, 32) and config.latent_size == 7
    with pytest.raises(GameadaptError, match="invalid algorithm option kl_weight=-1.0"):
        ContextConfig.from_mapping({"kl_weight": -1})
    with pytest.raises(GameadaptError, match="encoder_sizes"):
        ContextConfig.from_mapping({"encoder_sizes": ""})
    with pytest.raises(GameadaptError, match="unknown algorithm option 'hidden_size'"):
        ContextConfig.from_mapping({"hidden_size": 8})


@pytest.mark.parametrize("game", ["gridnav", "pointnav"])
def test_resumed_context_run_is_bit_identical(tmp_path: Path, game: str) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train(game, "--iterations", "3", "--run-dir", str(whole), *CONTEXT_TINY).exit_code == 0
    assert train(game, "--iterations", "1", "--run-dir", str(split), *CONTEXT_TINY).exit_code == 0
    result = train("--resume", str(split), "--iterations", "3")
    assert result.exit_code == 0, result.output
    assert_same_policy(whole, split)
    assert returns(whole) == returns(split)


@pytest.mark.parametrize("args", [("cartpole",), ("duel",), ("duel", "--share-policy")])
def test_context_trains_on_every_kind_of_game(tmp_path: Path, args: tuple[str, ...]) -> None:
    run = tmp_path / "run"
    result = train(*args, "--iterations", "1", "--run-dir", str(run), *CONTEXT_TINY)
    assert result.exit_code == 0, result.output
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert row["env_steps"] > 0 and row["kl"] > 0


def test_evaluation_reports_both_latent_modes(tmp_path: Path) -> None:
    run = tmp_path / "context"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *CONTEXT_TINY).exit_code == 0
    data = evaluate_json(str(run), *QUICK_EVAL, "--baselines", "")
    method = data["methods"]["context"]
    assert method["family"] == "context" and method["trial_episodes"] == 2
    assert set(method["experience"]) == {"greedy, z drawn", "sampled, z drawn",
                                         "greedy, z mean", "sampled, z mean"}
    for curve in method["experience"].values():
        assert len(curve["return"]["mean"]) == 4 and len(curve["success"]["mean"]) == 4
    table = CliRunner().invoke(cli, ["evaluate", str(run), *QUICK_EVAL, "--baselines", ""])
    assert table.exit_code == 0, table.output
    assert "greedy, z mean" in table.output and "n=3*" not in table.output
    assert "*" in table.output  # beyond the 2 episodes per trial it was trained on


def test_latents_pictures_the_task_space(tmp_path: Path) -> None:
    run = tmp_path / "context"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *CONTEXT_TINY).exit_code == 0
    plot = tmp_path / "space.png"
    result = CliRunner().invoke(cli, ["latents", str(run), "--plot", str(plot), "--tasks", "12",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["label"] == "control mapping" and data["kind"] == "category"
    assert len(data["points"]) == 12 and len(data["means"][0]) == 5
    assert 0 <= data["separation"]["value"] <= 1
    assert data["explained"][0] >= data["explained"][1] > 0 and sum(data["explained"]) <= 1 + 1e-9
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    colored = CliRunner().invoke(cli, ["latents", str(run), "--plot", str(plot), "--tasks", "6",
                                       "--color", "rules.slip"])
    assert colored.exit_code == 0, colored.output
    assert "coloured by rules.slip" in colored.output and "linear-fit R²" in colored.output


@pytest.mark.parametrize(("args", "message"), [
    (["--color", "rules.nothing"], "Error: --color 'rules.nothing' is not a variant parameter "
                                   "of 'gridnav' (e.g. rules.time_limit)\n"),
    (["--tasks", "2"], "Error: --tasks must be >= 3 and --episodes >= 1\n"),
])
def test_latents_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    run = tmp_path / "context"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *CONTEXT_TINY).exit_code == 0
    result = CliRunner().invoke(cli, ["latents", str(run), "--plot", str(tmp_path / "p.png"),
                                      *args])
    assert result.exit_code == 1 and result.output == message
    assert not (tmp_path / "p.png").exists()


def test_latents_refuses_a_run_of_another_family(tmp_path: Path) -> None:
    run = tmp_path / "maml"
    assert train("gridnav", "--iterations", "1", "--run-dir", str(run), *TINY).exit_code == 0
    result = CliRunner().invoke(cli, ["latents", str(run), "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 1
    assert result.output == ("Error: latents needs a run of the context family; this run's "
                             "'maml' adapts in its gradient state\n")


def test_separation_scores_what_the_space_tells_apart() -> None:
    generator = torch.Generator().manual_seed(0)
    labels = ["a", "b", "c"] * 10
    centres = {"a": torch.tensor([5.0, 0, 0]), "b": torch.tensor([0, 5.0, 0]),
               "c": torch.tensor([0, 0, 5.0])}
    apart = torch.stack([centres[x] for x in labels]) + 0.1 * torch.randn(30, 3,
                                                                          generator=generator)
    assert separation(apart, labels, "category") == {"measure": "accuracy", "value": 1.0,
                                                     "chance": 1 / 3}
    noise = torch.randn(30, 3, generator=generator)
    assert separation(noise, labels, "category")["value"] < 0.7
    angles = torch.linspace(-179, 179, 40)
    embedded = torch.stack([torch.cos(torch.deg2rad(angles)), torch.sin(torch.deg2rad(angles)),
                            torch.randn(40, generator=generator)], 1)
    assert separation(embedded, angles.tolist(), "angle")["value"] > 0.999
    assert separation(torch.randn(40, 3, generator=generator), angles.tolist(),
                      "angle")["value"] < 0.3
