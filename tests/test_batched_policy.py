"""The rollout's batched-matmul policy evaluation equals vmap(functional_call)."""

from __future__ import annotations

from functools import partial

import gymnasium
import pytest
import torch
from gameadapt.errors import GameadaptError
from gameadapt.learn.policy import (
    MLPPolicy,
    distribution_params,
    policy_params,
    task_batched_policy,
)
from torch.func import vmap


@pytest.mark.parametrize("action_space", [gymnasium.spaces.Discrete(4),
                                          gymnasium.spaces.Box(-0.1, 0.1, (2,))])
def test_task_batched_matches_vmap(action_space: gymnasium.spaces.Space) -> None:
    torch.manual_seed(0)
    policy = MLPPolicy(gymnasium.spaces.Box(-1, 1, (9,)), action_space, (32, 16))
    policy.update_normalizer(torch.randn(100, 9) * 3 + 1)
    params = {name: p.detach() + 0.1 * torch.randn(5, *p.shape)
              for name, p in policy_params(policy).items()}
    obs = torch.randn(5, 7, 9)
    expected = vmap(partial(distribution_params, policy))(params, obs)
    actual = task_batched_policy(policy, params)(obs)
    assert len(expected) == len(actual)
    for want, got in zip(expected, actual):  # log_std comes broadcastable, [M, 1, act_dim]
        assert torch.broadcast_shapes(got.shape, want.shape) == want.shape
        torch.testing.assert_close(got.expand_as(want), want, rtol=1e-6, atol=1e-6)


def test_task_batched_policy_refuses_a_body_it_cannot_batch() -> None:
    policy = MLPPolicy(gymnasium.spaces.Box(-1, 1, (3,)), gymnasium.spaces.Discrete(2), (4,))
    policy.body[1] = torch.nn.ReLU()
    params = {name: p.detach().unsqueeze(0) for name, p in policy_params(policy).items()}
    with pytest.raises(GameadaptError, match="Linear/Tanh"):
        task_batched_policy(policy, params)
