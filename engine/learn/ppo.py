"""PPO over trials, shared by the trial families (``rl2``, ``context``): the options they
share, the clipped surrogate with a value loss and an entropy bonus, the minibatch epochs,
and the running return scale that keeps the value loss the same size in every game.

A trial family samples one trial per env (:func:`~gameadapt.learn.trials.sample_trials`),
flattens its fields to ``[S, B, ...]`` (``B`` trials) with :func:`flatten_trials`, and calls
:func:`ppo_update` with a loss of a minibatch of trials; the loss computes the distributions
and values over whole trials in its own way (a GRU unrolled, or a posterior per episode) and
passes them to :func:`clipped_surrogate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

import torch

from ..algorithm import AdaptationFamily
from ..game import BatchedGame
from ..hashrandom import derive_seed
from . import shard
from .learner import shard_total, task_slices
from .shard import masked_mean
from .options import (
    COEF_MAX,
    Check,
    check_options,
    common_checks,
    learning_rate,
    options_from_mapping,
    within,
)
from .policy import Params
from .rollout import learner_rows
from .trials import Trials, TrialPolicy, discounted_trial_returns, sample_trials, trial_advantages

Batch = dict[str, torch.Tensor]
LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class PPOConfig:
    """The PPO options of a trial family (its own options are added by a subclass)."""

    trial_episodes: int = 2  # K: episodes of one variant per trial (what adapts carries over)
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
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """A validated config from ``values`` (strings are parsed) and keyword overrides."""
        return options_from_mapping(cls, values, **overrides)

    def validate(self) -> None:
        """Raise :class:`~gameadapt.errors.GameadaptError` naming the first invalid value."""
        check_options(self, self.ppo_checks())

    def ppo_checks(self) -> list[Check]:
        """The rules of the shared options (a subclass's ``validate`` adds its own)."""
        return [
            ("trial_episodes", 1 <= self.trial_episodes <= 100, "must be from 1 to 100"),
            learning_rate("lr", self.lr),
            within("value_coef", self.value_coef, 0, COEF_MAX),
            within("entropy_coef", self.entropy_coef, 0, COEF_MAX),
            *common_checks(self, "epochs", "minibatches"),
        ]


class ReturnScaled(torch.nn.Module):
    """A running standard deviation of discounted trial returns, kept in two buffers
    (``return_var``, ``return_count``: saved in checkpoints, never differentiated) of the
    policy module it is mixed into. Value heads estimate returns in these units."""

    return_var: torch.Tensor
    return_count: torch.Tensor

    def register_return_scale(self) -> None:
        """Add the buffers (call from ``__init__`` after ``nn.Module.__init__``)."""
        self.register_buffer("return_var", torch.ones(()))
        self.register_buffer("return_count", torch.zeros(()))

    def return_scale(self) -> torch.Tensor:
        """The running standard deviation of discounted returns (1 before any update)."""
        return torch.sqrt(self.return_var + 1e-8)

    @torch.no_grad()
    def update_return_scale(self, returns: torch.Tensor, mask: torch.Tensor) -> None:
        """Merge the second moment of ``returns`` (where ``mask`` is 1) into the statistics."""
        values = returns[mask > 0].to(torch.float64)
        size, square_sum = ((values.numel(), (values ** 2).sum()) if shard.current() is None
                            else shard.sums(values.numel(), (values ** 2).sum()))  # every rank's
        if size == 0:
            return
        count = self.return_count.double()
        total = count + size
        moment = (self.return_var.double() * count + square_sum) / total
        self.return_var.copy_(moment.clamp_min(1e-8))
        self.return_count.copy_(total)


def flatten_trials(policy: ReturnScaled, trials: Trials, cfg: PPOConfig) -> Batch:
    """The training fields of ``trials`` with ``[M, E]`` merged into one trial dim ``B``
    (``[S, B, ...]``; ``noise``: ``[K, B, ...]``, with ``episode`` ``[S, B]``), after updating the return scale and
    computing GAE over whole trials in its units."""
    policy.update_return_scale(discounted_trial_returns(trials.rewards, trials.mask,
                                                        cfg.gamma), trials.mask)
    advantages, returns = trial_advantages(trials.rewards / policy.return_scale(),
                                           trials.values, trials.mask, cfg.gamma,
                                           cfg.gae_lambda)
    fields = {"inputs": trials.inputs, "actions": trials.actions, "mask": trials.mask,
              "log_probs": trials.log_probs, "advantages": advantages, "returns": returns}
    if trials.noise is not None:  # a latent drawn per episode: which episode each step is
        fields["noise"] = trials.noise
        fields["episode"] = trials.episode[:, None, None].expand(trials.mask.shape)
    return {name: value.reshape(value.shape[0], -1, *value.shape[3:])
            for name, value in fields.items()}


def ppo_update(params: Params, optimizer: torch.optim.Optimizer, batch: Batch,
               cfg: PPOConfig, seed: int, loss_fn: LossFn) -> dict[str, float]:
    """``epochs`` passes of ``minibatches`` optimiser steps, each on a slice of the trials
    of ``batch`` (shuffled with ``seed``); returns the last step's statistics."""
    trials, share = batch["mask"].shape[1], shard.current()
    per_task = trials // share.size if share is not None else trials  # the envs of a task
    count = shard_total(1) * per_task  # every rank's trials (this one's in one process)
    generator = torch.Generator().manual_seed(seed)
    stats: dict[str, torch.Tensor] = {}
    for _ in range(cfg.epochs):
        order = torch.randperm(count, generator=generator).to(batch["mask"].device)
        for part in task_slices(count, cfg.minibatches):
            rows = shard.local_rows(order[part], per_task)  # sharded: this rank's trials
            chunk = {name: value[:, rows] for name, value in batch.items()}
            loss, stats = loss_fn(chunk)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            shard.reduce_gradients(params.values())  # sharded: the whole gradient
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
            optimizer.step()
    return {name: value.item() for name, value in shard.reduce_stats(stats).items()}


def whole_mean(values: torch.Tensor, mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """A masked mean over every rank's entries (``count`` of them), detached (the same on
    every rank)."""
    with torch.no_grad():
        part = masked_mean(values, mask, count)
        return part if shard.current() is None else shard.reduce_stats({"m": part})["m"]


def clipped_surrogate(log_probs: torch.Tensor, entropy: torch.Tensor, values: torch.Tensor,
                      batch: Batch, cfg: PPOConfig
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate + ``value_coef`` x value MSE − ``entropy_coef`` x entropy,
    masked means over the steps of ``batch`` (``log_probs``, ``entropy``, ``values``: the
    current policy's, ``[S, B]``); advantages are normalised over the minibatch."""
    mask = batch["mask"]
    count = shard.mask_count(mask)  # the minibatch's steps, on every rank together
    advantages = batch["advantages"]
    mean = whole_mean(advantages, mask, count)  # over every rank's share of the minibatch
    std = whole_mean((advantages - mean) ** 2, mask, count).sqrt()
    advantages = (advantages - mean) / (std + 1e-8)
    log_ratio = log_probs - batch["log_probs"]
    ratio = log_ratio.exp()
    clipped = ratio.clamp(1 - cfg.clip, 1 + cfg.clip)
    policy_loss = -masked_mean(torch.minimum(ratio * advantages, clipped * advantages), mask,
                               count)
    value_loss = masked_mean((values - batch["returns"]) ** 2, mask, count)
    entropy_mean = masked_mean(entropy, mask, count)
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy_mean
    with torch.no_grad():
        stats = {"outer_loss": loss.detach(), "value_loss": value_loss.detach(),
                 "entropy": entropy_mean.detach(),
                 "approx_kl": masked_mean(torch.expm1(log_ratio) - log_ratio, mask, count),
                 "clip_fraction": masked_mean(((ratio - 1).abs() > cfg.clip).float(), mask,
                                              count)}
    return loss, stats


class TrialLearner:
    """What the trial families' algorithms share (a ``MetaAlgorithm`` once a subclass adds
    ``make_policy`` and :meth:`loss`): one trial per env, then PPO epochs over the trials."""

    family: AdaptationFamily
    trains = True

    def __init__(self, config: PPOConfig, name: str) -> None:
        self.name = name
        self.config = config
        self.trial_episodes = config.trial_episodes

    def options(self) -> dict[str, Any]:
        """The resolved config (``dataclasses.asdict``)."""
        return dataclasses.asdict(self.config)

    def make_optimizer(self, params: Params) -> torch.optim.Optimizer:
        """Adam at ``lr``."""
        return torch.optim.Adam(list(params.values()), lr=self.config.lr)

    def meta_train_step(self, policy: torch.nn.Module, params: Params,
                        optimizer: torch.optim.Optimizer, game: BatchedGame,
                        seed: int) -> dict[str, float]:
        """One trial per env, then PPO epochs over the trials; returns metrics.

        ``pre_return`` is the mean return of a trial's first episode, ``post_return`` of its
        last (what the memory carried over from the earlier episodes is worth).
        """
        trials = sample_trials(game, cast(TrialPolicy, policy), self.trial_episodes, derive_seed(seed, 0))
        stats = self.update(policy, params, optimizer, trials, derive_seed(seed, 1))
        returns = trials.episode_returns  # [K, M, E]
        return {"pre_return": shard.global_mean(learner_rows(returns[0], game)),
                "post_return": shard.global_mean(learner_rows(returns[-1], game)),
                "env_steps": shard.sums(trials.num_steps)[0], **stats}

    def update(self, policy: torch.nn.Module, params: Params, optimizer: torch.optim.Optimizer,
               trials: Trials, seed: int) -> dict[str, float]:
        """``epochs`` passes of minibatch PPO steps over the trials (shuffled with ``seed``)."""
        assert isinstance(policy, ReturnScaled)
        batch = flatten_trials(policy, trials, self.config)
        return ppo_update(params, optimizer, batch, self.config, seed,
                          lambda chunk: self.loss(policy, chunk))

    def loss(self, policy: torch.nn.Module, batch: Batch
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a minibatch of trials (fields ``[S, B, ...]``) and its statistics."""
        raise NotImplementedError
