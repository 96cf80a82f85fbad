"""The torch modules that become the ONNX graphs, and what they must compute.

``policy.onnx`` is :class:`PolicyGraph` (the policy module itself: normalise, body, head,
then the action handling); ``policy_weights.onnx`` is :class:`WeightsPolicyGraph` (the same
with every parameter an input, always greedy). :func:`reference_outputs` is what both must
output, computed the engine's way, which verification compares them against.

The ``action`` output is greedy, or with ``--action sampled`` drawn from the distribution
with uniform(0, 1) numbers the game passes as the input ``noise`` (:func:`noise_action`):
no random-number operator, so the graph stays deterministic, runs at opset 15 and in
runtimes without random ops (Unity Sentis).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..learn.policy import ActionHead, DistParams, MLPPolicy, distribution_params
from .formats import NOISE_CLAMP


def output_names(policy: ActionHead) -> list[str]:
    """``["action", "logits"]`` (discrete) or ``["action", "mean", "log_std"]``."""
    return ["action", "logits"] if policy.discrete else ["action", "mean", "log_std"]


def noise_size(policy: ActionHead) -> int:
    """Uniform numbers per row a sampled graph takes: ``n`` (Gumbel-max) or ``2 * act_dim``
    (Box-Muller)."""
    return policy.action_dim if policy.discrete else 2 * policy.action_dim


def gumbel_scores(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``logits - log(-log u)``, ``u`` the noise clamped: their argmax is a categorical sample."""
    uniform = noise.clamp(NOISE_CLAMP, 1.0 - NOISE_CLAMP)
    return logits - torch.log(-torch.log(uniform))


def box_muller(noise: torch.Tensor) -> torch.Tensor:
    """Standard normals ``sqrt(-2 ln u1) cos(2 pi u2)`` from the noise's two halves."""
    uniform = noise.clamp(NOISE_CLAMP, 1.0 - NOISE_CLAMP)
    half = uniform.shape[-1] // 2
    return torch.sqrt(-2.0 * torch.log(uniform[..., :half])) * torch.cos(
        (2.0 * math.pi) * uniform[..., half:])


def noise_action(policy: ActionHead, dist: DistParams, noise: torch.Tensor) -> torch.Tensor:
    """The sampled action in policy units drawn with ``noise`` (an index, or ``mean +
    exp(log_std) z``)."""
    if policy.discrete:
        return torch.argmax(gumbel_scores(dist[0], noise), dim=-1)
    return dist[0] + torch.exp(dist[1]) * box_muller(noise)


def dist_outputs(policy: ActionHead, dist: DistParams, noise: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, ...]:
    """The graph outputs from distribution parameters ``(logits,)`` or ``(mean, log_std)``:
    the greedy action, or with ``noise`` the sampled one, as the env takes it."""
    chosen = policy.greedy(dist) if noise is None else noise_action(policy, dist, noise)
    if policy.discrete:
        return chosen, dist[0]
    return policy.to_env_action(chosen), dist[0], dist[1]


def played_features(policy: ActionHead, action: torch.Tensor, indices: torch.Tensor
                    ) -> torch.Tensor:
    """An action a game played as the policy's networks read it, in plain operators: the
    one-hot of an index as ``Equal`` against the constant range ``indices`` and a ``Cast``
    (``-1`` gives zeros), or ``action_features`` of the env action in policy units,
    ``(a - center) / scale`` (the clip inside keeps out-of-bounds actions as the env took
    them)."""
    if policy.discrete:
        return (action.unsqueeze(-1) == indices).to(torch.float32)
    return policy.action_features((action - policy.action_center) / policy.action_scale)


def reference_outputs(policy: MLPPolicy, params: dict[str, torch.Tensor],
                      observation: torch.Tensor, noise: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, ...]:
    """What the graphs compute, with the engine's :func:`~gameadapt.learn.policy.distribution_params`."""
    return dist_outputs(policy, distribution_params(policy, params, observation), noise)


class PolicyGraph(nn.Module):
    """``policy.onnx``: ``observation [, noise] -> (action, logits)`` or ``(action, mean,
    log_std)``.

    Calls the policy module itself (normalise, body, head), as ``distribution_params`` does
    through ``functional_call``, which the legacy TorchScript exporter cannot trace.
    """

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor, noise: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, ...]:
        out = self.policy(observation)
        dist = (out,) if self.policy.discrete else (out, self.policy.log_std.expand_as(out))
        return dist_outputs(self.policy, dist, noise)


class WeightsPolicyGraph(nn.Module):
    """``policy_weights.onnx``: like :class:`PolicyGraph` (greedy), the parameters as inputs."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.names = [name for name, _ in policy.named_parameters()]

    def forward(self, observation: torch.Tensor, *weights: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return reference_outputs(self.policy, dict(zip(self.names, weights)), observation)
