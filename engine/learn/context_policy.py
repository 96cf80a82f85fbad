"""The policy of the context family: a transition encoder whose Gaussian factors multiply
into a task posterior (:mod:`~gameadapt.learn.posterior`), and a policy and value that read
the observation and a latent task variable ``z``.

A transition, what the encoder reads, is::

    [observation, action, reward, next observation]

with the action one-hot (discrete) or the env action in policy units (continuous), as
:meth:`~gameadapt.learn.policy.ActionHead.action_features` gives it. Within a trial (one
variant) the posterior's sums take in every transition as it happens, and ``z`` is drawn
(``latent="sample"``: PEARL's posterior sampling) or set to the posterior mean
(``latent="mean"``) once, at the start of each episode, and held through it: the first
episode acts on the prior, later ones on what the earlier episodes showed. Training replays
a trial with the same rule in one batched pass (:meth:`ContextPolicy.unroll`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import gymnasium
import torch
from torch import nn

from ..errors import GameadaptError
from . import shard
from .policy import ActionHead, DistParams
from .posterior import (Sums, add_factors, episode_start_sums, factor_terms, kl_to_prior,
                        posterior, prior_sums, step_sums)
from .ppo import ReturnScaled
from .trials import LatentMode

ZUpdate = Literal["episode", "step"]
Z_UPDATES: tuple[ZUpdate, ...] = ("episode", "step")


def tanh_mlp(inputs: int, hidden: Sequence[int], outputs: int, out_gain: float) -> nn.Sequential:
    """``Linear``/``Tanh`` layers, orthogonally initialised (``√2`` inside, ``out_gain`` last)."""
    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, int(size)), nn.Tanh()]
        width = int(size)
    layers.append(nn.Linear(width, outputs))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, out_gain if layer is layers[-1] else math.sqrt(2))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class ContextPolicy(ActionHead, ReturnScaled):
    """Encoder → posterior over ``z``; actor and critic on ``[observation, z]`` (see the
    module doc). The value estimates returns in units of ``return_scale()``."""

    def __init__(self, observation_space: gymnasium.spaces.Space,
                 action_space: gymnasium.spaces.Space, latent_size: int = 5,
                 hidden_sizes: Sequence[int] = (128, 128),
                 encoder_sizes: Sequence[int] = (128, 128),
                 init_log_std: float = 0.0, scale_actions: bool = True,
                 z_update: ZUpdate = "episode") -> None:
        if not isinstance(observation_space, gymnasium.spaces.Box):
            raise GameadaptError(f"ContextPolicy needs a Box observation space, "
                                 f"got {type(observation_space).__name__}")
        super().__init__(action_space, scale_actions)
        self.obs_dim = int(math.prod(observation_space.shape))
        self.latent_size = int(latent_size)
        self.z_update = z_update
        self.transition_size = 2 * self.obs_dim + self.action_dim + 1
        self.encoder = tanh_mlp(self.transition_size, encoder_sizes, 2 * self.latent_size, 0.1)
        self.actor = tanh_mlp(self.obs_dim + self.latent_size, hidden_sizes, self.action_dim,
                              0.01)
        self.critic = tanh_mlp(self.obs_dim + self.latent_size, hidden_sizes, 1, 1.0)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(init_log_std)))
        self.register_return_scale()

    # -- the posterior ----------------------------------------------------------------------
    def transition(self, observation: torch.Tensor, actions: torch.Tensor,
                   reward: torch.Tensor, next_observation: torch.Tensor) -> torch.Tensor:
        """One transition as the encoder reads it, ``[..., transition_size]``."""
        return torch.cat([observation, self.action_features(actions), reward.unsqueeze(-1),
                          next_observation], dim=-1)

    def factors(self, transitions: torch.Tensor) -> Sums:
        """Each transition's ``(1/σ², μ/σ²)``, ``[..., L]`` each."""
        return factor_terms(self.encoder(transitions))

    def prior_sums(self, *batch: int, device: torch.device | str = "cpu") -> Sums:
        """The posterior sums before any transition (the unit prior)."""
        return prior_sums(*batch, latent_size=self.latent_size, device=device)

    def trial_memory(self, batch: tuple[int, int], device: torch.device | str,
                     latent: LatentMode = "sample") -> ContextMemory:
        """A fresh trial's memory: the prior's sums."""
        return ContextMemory(self, batch, device, latent)

    # -- acting -----------------------------------------------------------------------------
    def heads(self, observation: torch.Tensor, z: torch.Tensor) -> tuple[DistParams, torch.Tensor]:
        """Distribution parameters and the value estimate at ``observation`` given ``z``."""
        features = torch.cat([observation, z], dim=-1)
        out = self.actor(features)
        dist = (out,) if self.discrete else (out, self.log_std.expand_as(out))
        return dist, self.critic(features).squeeze(-1)

    def unroll(self, inputs: torch.Tensor, mask: torch.Tensor, episode: torch.Tensor,
               noise: torch.Tensor) -> tuple[DistParams, torch.Tensor, torch.Tensor]:
        """Distributions and values at every step of trials (``inputs`` ``[S, B, T]``: the
        transitions; ``episode`` ``[S, B]``: the episode of each step; ``noise`` ``[K, B, L]``: each episode's draw), and
        the KL to the prior of the posterior each later episode acted on, ``[K - 1, B]``."""
        factors = self.factors(inputs)
        episodes = noise.shape[0]
        mean, variance = posterior(episode_start_sums(factors, mask, episode, episodes))
        index = episode.unsqueeze(-1).expand(*episode.shape, self.latent_size)
        step_noise = torch.gather(noise, 0, index)  # [S, B, L]: each step's episode's draw
        if self.z_update == "step":
            step_mean, step_variance = posterior(step_sums(factors, mask))
            z = step_mean + step_variance.sqrt() * step_noise
        else:
            z = torch.gather(mean + variance.sqrt() * noise, 0, index)
        dist, values = self.heads(inputs[..., :self.obs_dim], z)
        return dist, values, kl_to_prior(mean[1:], variance[1:])


class ContextMemory:
    """The :class:`~gameadapt.learn.trials.TrialMemory` of the context family: the posterior
    sums (updated on every live transition) and the ``z`` of the current episode; a step's
    record is its transition, each episode's noise the standard normal draw behind its ``z``
    (zeros with ``latent="mean"``)."""

    def __init__(self, policy: ContextPolicy, batch: tuple[int, int],
                 device: torch.device | str, latent: LatentMode) -> None:
        self.policy = policy
        self.latent = latent
        self.sums = policy.prior_sums(*batch, device=device)
        self.z = torch.zeros(*batch, policy.latent_size, device=device)
        self.noise = torch.zeros_like(self.z)
        self.observation = torch.empty(0)

    def start_episode(self, generator: torch.Generator) -> torch.Tensor:
        """Draw this episode's noise and set ``z`` from the posterior so far; returns the
        noise."""
        mean, variance = posterior(self.sums)
        if self.latent == "mean":
            self.noise = torch.zeros_like(mean)
        else:
            self.noise = shard.normal(mean.shape, generator, mean.device, mean.dtype)
        self.z = mean + variance.sqrt() * self.noise
        return self.noise

    def act(self, observation: torch.Tensor, alive: torch.Tensor
            ) -> tuple[DistParams, torch.Tensor]:
        """The heads at ``observation`` with the current ``z`` (with ``z_update="step"``
        recomputed from the sums so far, with the episode's noise)."""
        if self.policy.z_update == "step":
            mean, variance = posterior(self.sums)
            self.z = mean + variance.sqrt() * self.noise
        self.observation = observation
        return self.policy.heads(observation, self.z)

    def observe(self, actions: torch.Tensor, reward: torch.Tensor,
                next_observation: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """Add the step's transition to the sums (live envs only); returns the transition."""
        transition = self.policy.transition(self.observation, actions, reward, next_observation)
        self.sums = add_factors(self.sums, self.policy.factors(transition), alive)
        return transition
