"""The recurrent ``policy.onnx`` (RL²): one step of the GRU policy with its state as an
explicit input and output, and what that step must compute.

Inputs ``observation [batch, obs_dim]``, ``prev_action`` (``[batch]`` int64, the index the
game played, ``-1`` for none; or ``[batch, act_dim]`` float32, the env action played, the
action space's center for none), ``prev_reward [batch]``, ``episode_start [batch]`` (0/1),
``state [batch, H]`` and, for a sampled export, ``noise``. The graph computes::

    new = policy.step(policy.step_input(observation, features(prev_action), prev_reward,
                                        episode_start), state)
    dist, value = policy.heads(new)

and outputs ``action``, ``logits`` (or ``mean``, ``log_std``), ``value`` and
``state_out = new``. ``features`` is the one-hot of the index as ``Equal`` against a constant
range and a ``Cast`` (so ``-1`` gives zeros, the training's "no action yet"), or
``(clip(a) - center) / scale``; the GRU is MatMul/Sigmoid/Tanh/Mul/Add
(:func:`~gameadapt.learn.recurrent.gru_update`). :func:`reference_step` is the same step
the engine's way (``action_features``, ``no_action``), which verification compares against.
"""

from __future__ import annotations

import torch
from torch import nn

from ..learn.recurrent import RecurrentPolicy
from .formats import STATE_OUTPUT
from .graphs import dist_outputs, output_names, played_features


def recurrent_output_names(policy: RecurrentPolicy) -> list[str]:
    """``action``, the distribution's outputs, ``value`` and ``state_out``."""
    return [*output_names(policy), "value", STATE_OUTPUT]


def no_previous_action(policy: RecurrentPolicy, batch: int) -> torch.Tensor:
    """What a game feeds as ``prev_action`` at a new level: ``-1`` or the action space's
    center (both mean "no action yet")."""
    if policy.discrete:
        return torch.full((batch,), -1, dtype=torch.long)
    return policy.action_center.expand(batch, policy.action_dim).clone()


class RecurrentGraph(nn.Module):
    """The recurrent ``policy.onnx`` (see the module doc)."""

    indices: torch.Tensor

    def __init__(self, policy: RecurrentPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.register_buffer("indices", torch.arange(policy.action_dim), persistent=False)

    def features(self, prev_action: torch.Tensor) -> torch.Tensor:
        """The previous action as the GRU reads it (one-hot via Equal + Cast; -1: zeros)."""
        return played_features(self.policy, prev_action, self.indices)

    def forward(self, observation: torch.Tensor, prev_action: torch.Tensor,
                prev_reward: torch.Tensor, episode_start: torch.Tensor, state: torch.Tensor,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        inputs = self.policy.step_input(observation, self.features(prev_action), prev_reward,
                                        episode_start)
        new = self.policy.step(inputs, state)
        dist, value = self.policy.heads(new)
        return (*dist_outputs(self.policy, dist, noise), value, new)


def reference_features(policy: RecurrentPolicy, prev_action: torch.Tensor) -> torch.Tensor:
    """The previous action's features the engine's way: ``action_features`` of a played
    action, ``no_action`` where none was played (discrete ``-1``)."""
    if not policy.discrete:
        return policy.action_features((prev_action - policy.action_center) / policy.action_scale)
    played = policy.action_features(prev_action.clamp_min(0))
    none = policy.no_action(len(prev_action))
    return torch.where((prev_action >= 0).unsqueeze(-1), played, none)


@torch.no_grad()
def reference_step(policy: RecurrentPolicy, observation: torch.Tensor,
                   prev_action: torch.Tensor, prev_reward: torch.Tensor,
                   episode_start: torch.Tensor, state: torch.Tensor,
                   noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """What one call of the recurrent graph must output, by name."""
    inputs = policy.step_input(observation, reference_features(policy, prev_action),
                               prev_reward, episode_start)
    new = policy.step(inputs, state)
    dist, value = policy.heads(new)
    values = (*dist_outputs(policy, dist, noise), value, new)
    return dict(zip(recurrent_output_names(policy), values))
