"""The context family's graphs (task inference): ``policy.onnx`` acts on the observation and
a latent task variable ``z``; ``encoder.onnx`` adds one transition to the task posterior's
two running sums (:mod:`~gameadapt.learn.posterior`), constant work and memory per step.

``policy.onnx`` takes ``observation [batch, obs_dim]``, ``z [batch, L]`` and, for a sampled
export, ``noise``; it computes ``dist, value = policy.heads(observation, z)`` and outputs
``action``, ``logits`` (or ``mean``, ``log_std``) and ``value``.

``encoder.onnx`` takes ``observation``, ``action`` (``[batch]`` int64, the index played; or
``[batch, act_dim]`` float32, the env action played), ``reward [batch]``,
``next_observation`` and the sums ``precision_sum``, ``weighted_sum`` (``[batch, L]``)::

    precision, weighted = factor_terms(encoder([observation, features(action), reward,
                                                next_observation]))   # 1/σ², μ/σ²
    precision_sum_out = precision_sum + precision
    weighted_sum_out = weighted_sum + weighted
    posterior_variance = 1 / precision_sum_out
    posterior_mean = weighted_sum_out * posterior_variance

``features`` is :func:`~gameadapt.ship.graphs.played_features` (Equal + Cast, or the clip
and affine map). The game makes ``z`` from the posterior so far (:func:`latent`) by the
policy's ``z_update`` rule (:func:`remakes_z`): ``"step"`` before every step, ``"episode"``
once, at each episode's start; a sampled ``z``'s standard normals are drawn once per episode
either way. :func:`reference_policy` and :func:`reference_encoder` are the same steps the
engine's way (``transition``, ``factors``, ``add_factors``, ``posterior``), which
verification compares against.
"""

from __future__ import annotations

import torch
from torch import nn

from ..learn.context_policy import ContextPolicy
from ..learn.posterior import Sums, add_factors, posterior
from .formats import ENCODER_OUTPUTS
from .graphs import dist_outputs, output_names, played_features


def context_output_names(policy: ContextPolicy) -> list[str]:
    """``action``, the distribution's outputs and ``value``."""
    return [*output_names(policy), "value"]


def example_action(policy: ContextPolicy, batch: int) -> torch.Tensor:
    """An ``action`` input (for tracing): index 0, or the action space's center."""
    if policy.discrete:
        return torch.zeros(batch, dtype=torch.long)
    return policy.action_center.expand(batch, policy.action_dim).clone()


def latent(mean: torch.Tensor, variance: torch.Tensor, normal: torch.Tensor | None
           ) -> torch.Tensor:
    """``z``: the posterior mean, or with standard normals ``normal`` a draw
    ``mean + sqrt(variance) * normal`` (the game draws ``normal`` once per episode)."""
    return mean if normal is None else mean + variance.sqrt() * normal


def remakes_z(policy: ContextPolicy, episode_start: bool) -> bool:
    """Whether the game makes ``z`` anew before this step: at every episode's start, and
    with ``z_update="step"`` before every step."""
    return episode_start or policy.z_update == "step"


class ContextPolicyGraph(nn.Module):
    """The context ``policy.onnx`` (see the module doc)."""

    def __init__(self, policy: ContextPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor, z: torch.Tensor,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        dist, value = self.policy.heads(observation, z)
        return (*dist_outputs(self.policy, dist, noise), value)


class EncoderGraph(nn.Module):
    """``encoder.onnx``: one transition added to the posterior's sums (see the module doc)."""

    indices: torch.Tensor

    def __init__(self, policy: ContextPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.register_buffer("indices", torch.arange(policy.action_dim), persistent=False)

    def forward(self, observation: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                next_observation: torch.Tensor, precision_sum: torch.Tensor,
                weighted_sum: torch.Tensor) -> tuple[torch.Tensor, ...]:
        transition = torch.cat([observation, played_features(self.policy, action, self.indices),
                                reward.unsqueeze(-1), next_observation], dim=-1)
        precision, weighted = self.policy.factors(transition)
        sums = (precision_sum + precision, weighted_sum + weighted)
        return (*sums, *posterior(sums))


@torch.no_grad()
def reference_policy(policy: ContextPolicy, observation: torch.Tensor, z: torch.Tensor,
                     noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """What one call of the context ``policy.onnx`` must output, by name."""
    dist, value = policy.heads(observation, z)
    return dict(zip(context_output_names(policy), (*dist_outputs(policy, dist, noise), value)))


def policy_units(policy: ContextPolicy, action: torch.Tensor) -> torch.Tensor:
    """A played action as training records it: the index, or the env action in policy
    units ``(a - center) / scale``."""
    if policy.discrete:
        return action.long()
    return (action - policy.action_center) / policy.action_scale


@torch.no_grad()
def reference_encoder(policy: ContextPolicy, observation: torch.Tensor, action: torch.Tensor,
                      reward: torch.Tensor, next_observation: torch.Tensor, sums: Sums
                      ) -> dict[str, torch.Tensor]:
    """What one call of ``encoder.onnx`` must output, by name (the engine's
    :meth:`~gameadapt.learn.context_policy.ContextMemory.observe` of a live step)."""
    transition = policy.transition(observation, policy_units(policy, action), reward,
                                   next_observation)
    new = add_factors(sums, policy.factors(transition), torch.ones(len(observation)))
    return dict(zip(ENCODER_OUTPUTS, (*new, *posterior(new))))
