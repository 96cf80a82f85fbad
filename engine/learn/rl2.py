"""RL² (Duan et al., 2016; Wang et al., 2016): a recurrent policy trained across variants
whose adaptation to a new one is its hidden state, carried over the episodes of a trial.

Every meta-iteration plays one trial of ``trial_episodes`` episodes in every env of the
meta-batch (:func:`~gameadapt.learn.trials.sample_trials`), computes GAE over each trial as
one sequence (rewards divided by a running standard deviation of the discounted returns,
:meth:`~gameadapt.learn.recurrent.RecurrentPolicy.return_scale`, so that the value loss has
the same size in every game), and takes ``epochs`` passes of PPO's clipped surrogate with a
value loss and an entropy bonus, each pass in ``minibatches`` slices of the trials, backpropagating
through time over the whole trial. It implements :class:`gameadapt.algorithm.MetaAlgorithm`
(family ``recurrent``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium
import torch

from ..algorithm import AdaptationFamily
from ..game import BatchedGame
from ..hashrandom import derive_seed
from .learner import task_slices
from .meta import masked_mean
from .options import check_options, options_from_mapping
from .policy import Params
from .recurrent import RecurrentPolicy
from .rollout import learner_rows
from .trials import Trials, discounted_trial_returns, sample_trials, trial_advantages


@dataclass(frozen=True)
class RL2Config:
    """Hyper-parameters of ``rl2`` (the measurements behind the defaults:
    ``docs/performance.md``, "The recurrent family")."""

    hidden_size: int = 128  # GRU state width (the literature's 256 costs ~3x here)
    trial_episodes: int = 2  # K: episodes of one variant per trial (the state carries over)
    init_log_std: float = 0.0  # initial log std of a Gaussian policy
    scale_actions: bool = True  # Gaussian in units of the Box's half-range
    lr: float = 1e-3  # Adam learning rate
    epochs: int = 4  # PPO passes over each meta-batch
    minibatches: int = 4  # optimiser steps per pass, each on a slice of the trials
    clip: float = 0.2  # PPO ratio clip
    gamma: float = 0.99  # discount, across the episodes of a trial
    gae_lambda: float = 0.95  # GAE λ
    value_coef: float = 0.5  # weight of the value loss
    entropy_coef: float = 0.01  # weight of the entropy bonus
    max_grad_norm: float = 0.5  # clip the gradient's norm (0: no clipping)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any
                     ) -> RL2Config:
        """A validated config from ``values`` (strings are parsed) and keyword overrides."""
        return options_from_mapping(cls, values, **overrides)

    def validate(self) -> None:
        """Raise :class:`~gameadapt.errors.GameadaptError` naming the first invalid value."""
        check_options(self, [
            ("hidden_size", 1 <= self.hidden_size <= 4096, "must be from 1 to 4096"),
            ("trial_episodes", 1 <= self.trial_episodes <= 100, "must be from 1 to 100"),
            ("lr", self.lr > 0, "must be > 0"),
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("minibatches", self.minibatches >= 1, "must be >= 1"),
            ("clip", 0 < self.clip < 1, "must be in (0, 1)"),
            ("gamma", 0 < self.gamma <= 1, "must be in (0, 1]"),
            ("gae_lambda", 0 <= self.gae_lambda <= 1, "must be in [0, 1]"),
            ("value_coef", self.value_coef >= 0, "must be >= 0"),
            ("entropy_coef", self.entropy_coef >= 0, "must be >= 0"),
            ("max_grad_norm", self.max_grad_norm >= 0, "must be >= 0"),
            ("init_log_std", True, "must be finite"),
        ])


class RL2:
    """The ``rl2`` algorithm (see the module doc); a recurrent-family MetaAlgorithm."""

    family: AdaptationFamily = "recurrent"
    trains = True

    def __init__(self, config: RL2Config, name: str = "rl2") -> None:
        self.name = name
        self.config = config
        self.trial_episodes = config.trial_episodes

    def options(self) -> dict[str, Any]:
        """The resolved :class:`RL2Config` (``dataclasses.asdict``)."""
        return dataclasses.asdict(self.config)

    def make_policy(self, observation_space: gymnasium.spaces.Space,
                    action_space: gymnasium.spaces.Space) -> RecurrentPolicy:
        """A freshly initialised :class:`RecurrentPolicy`."""
        cfg = self.config
        return RecurrentPolicy(observation_space, action_space, cfg.hidden_size,
                               cfg.init_log_std, cfg.scale_actions)

    def make_optimizer(self, params: Params) -> torch.optim.Optimizer:
        """Adam at ``lr``."""
        return torch.optim.Adam(list(params.values()), lr=self.config.lr)

    def meta_train_step(self, policy: torch.nn.Module, params: Params,
                        optimizer: torch.optim.Optimizer, game: BatchedGame,
                        seed: int) -> dict[str, float]:
        """One trial per env, then PPO epochs over the trials; returns metrics.

        ``pre_return`` is the mean return of a trial's first episode, ``post_return`` of its
        last (what the state carried over from the earlier episodes is worth).
        """
        assert isinstance(policy, RecurrentPolicy)
        trials = sample_trials(game, policy, self.trial_episodes, derive_seed(seed, 0))
        stats = self.update(policy, params, optimizer, trials, derive_seed(seed, 1))
        returns = trials.episode_returns  # [K, M, E]
        return {"pre_return": learner_rows(returns[0], game).mean().item(),
                "post_return": learner_rows(returns[-1], game).mean().item(),
                "env_steps": float(trials.num_steps), **stats}

    def update(self, policy: RecurrentPolicy, params: Params, optimizer: torch.optim.Optimizer,
               trials: Trials, seed: int) -> dict[str, float]:
        """``epochs`` passes of minibatch PPO steps over the trials (shuffled with ``seed``)."""
        cfg = self.config
        policy.update_return_scale(discounted_trial_returns(trials.rewards, trials.mask,
                                                            cfg.gamma), trials.mask)
        advantages, returns = trial_advantages(trials.rewards / policy.return_scale(),
                                               trials.values, trials.mask, cfg.gamma,
                                               cfg.gae_lambda)
        flat = _flatten(trials._replace(success=None), advantages, returns)
        count = flat["mask"].shape[1]
        generator = torch.Generator().manual_seed(seed)
        stats: dict[str, torch.Tensor] = {}
        for _ in range(cfg.epochs):
            order = torch.randperm(count, generator=generator).to(flat["mask"].device)
            for part in task_slices(count, cfg.minibatches):
                chunk = {name: value[:, order[part]] for name, value in flat.items()}
                loss, stats = ppo_loss(policy, chunk, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
                optimizer.step()
        return {name: value.item() for name, value in stats.items()}


def _flatten(trials: Trials, advantages: torch.Tensor, returns: torch.Tensor
             ) -> dict[str, torch.Tensor]:
    """The training fields with the ``[M, E]`` dims merged into one trial dim ``B``."""
    fields = {"inputs": trials.inputs, "actions": trials.actions, "mask": trials.mask,
              "log_probs": trials.log_probs, "advantages": advantages, "returns": returns}
    return {name: value.reshape(value.shape[0], -1, *value.shape[3:])
            for name, value in fields.items()}


def ppo_loss(policy: RecurrentPolicy, batch: dict[str, torch.Tensor], cfg: RL2Config
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate + ``value_coef`` x value MSE − ``entropy_coef`` x entropy,
    masked means over the steps of the trials in ``batch`` (fields ``[S, B, ...]``)."""
    mask = batch["mask"]
    dist, values = policy.unroll(batch["inputs"], mask)
    log_probs = policy.log_prob(dist, batch["actions"])
    advantages = batch["advantages"]
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    advantages = (advantages - mean) / (std + 1e-8)
    log_ratio = log_probs - batch["log_probs"]
    ratio = log_ratio.exp()
    clipped = ratio.clamp(1 - cfg.clip, 1 + cfg.clip)
    policy_loss = -masked_mean(torch.minimum(ratio * advantages, clipped * advantages), mask)
    value_loss = masked_mean((values - batch["returns"]) ** 2, mask)
    entropy = masked_mean(policy.entropy(dist), mask)
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
    with torch.no_grad():
        stats = {"outer_loss": loss.detach(), "value_loss": value_loss.detach(),
                 "entropy": entropy.detach(),
                 "approx_kl": masked_mean(torch.expm1(log_ratio) - log_ratio, mask),
                 "clip_fraction": masked_mean(((ratio - 1).abs() > cfg.clip).float(), mask)}
    return loss, stats
