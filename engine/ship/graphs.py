"""The torch modules that become the ONNX graphs, and what they must compute.

``policy.onnx`` is :class:`PolicyGraph` (the policy module itself: normalise, body, head,
then the action handling); ``policy_weights.onnx`` is :class:`WeightsPolicyGraph` (the same
with every parameter an input). :func:`reference_outputs` is what both must output, computed
the engine's way, which verification compares them against.
"""

from __future__ import annotations

import torch
from torch import nn

from ..learn.policy import MLPPolicy, distribution_params


def output_names(policy: MLPPolicy) -> list[str]:
    """``["action", "logits"]`` (discrete) or ``["action", "mean", "log_std"]``."""
    return ["action", "logits"] if policy.discrete else ["action", "mean", "log_std"]


def dist_outputs(policy: MLPPolicy, dist: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The graph outputs from distribution parameters ``(logits,)`` or ``(mean, log_std)``."""
    greedy = policy.greedy(dist)
    if policy.discrete:
        return greedy, dist[0]
    return policy.to_env_action(greedy), dist[0], dist[1]


def reference_outputs(policy: MLPPolicy, params: dict[str, torch.Tensor],
                      observation: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """What the graphs compute, with the engine's :func:`~gameadapt.learn.policy.distribution_params`."""
    return dist_outputs(policy, distribution_params(policy, params, observation))


class PolicyGraph(nn.Module):
    """``policy.onnx``: ``observation -> (action, logits)`` or ``(action, mean, log_std)``.

    Calls the policy module itself (normalise, body, head), as ``distribution_params`` does
    through ``functional_call``, which the legacy TorchScript exporter cannot trace.
    """

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.policy(observation)
        dist = (out,) if self.policy.discrete else (out, self.policy.log_std.expand_as(out))
        return dist_outputs(self.policy, dist)


class WeightsPolicyGraph(nn.Module):
    """``policy_weights.onnx``: like :class:`PolicyGraph`, the parameters given as inputs."""

    def __init__(self, policy: MLPPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.names = [name for name, _ in policy.named_parameters()]

    def forward(self, observation: torch.Tensor, *weights: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        return reference_outputs(self.policy, dict(zip(self.names, weights)), observation)
