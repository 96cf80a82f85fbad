"""Discounted returns, GAE and the per-task linear baseline, against hand and numpy results."""

from __future__ import annotations

import numpy as np
import torch
from gameadapt.learn.advantages import (
    baseline_advantages,
    baseline_features,
    discount_matrix,
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
)


def column(*values: float) -> torch.Tensor:
    """A ``[T, 1, 1]`` tensor (one task, one env)."""
    return torch.tensor(values, dtype=torch.float64).view(-1, 1, 1)


def test_discount_matrix() -> None:
    expected = torch.tensor([[1.0, 0.5, 0.25], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(discount_matrix(3, 0.5), expected)


def test_discounted_returns_by_hand() -> None:
    rewards, mask = column(1.0, 2.0, 4.0, 0.0), column(1, 1, 1, 0)
    # G2 = 4, G1 = 2 + 0.5 * 4 = 4, G0 = 1 + 0.5 * 4 = 3, G3 = 0 (after the end)
    torch.testing.assert_close(discounted_returns(rewards, mask, 0.5), column(3.0, 4.0, 4.0, 0.0))


def test_gae_by_hand() -> None:
    rewards, values = column(1.0, 2.0, 4.0, 0.0), column(0.5, 1.0, 2.0, 0.0)
    mask = column(1, 1, 1, 0)
    gamma, lam = 0.5, 0.5
    # deltas: r + gamma * V' - V, with V after the last step = 0
    d2 = 4.0 - 2.0
    d1 = 2.0 + 0.5 * 2.0 - 1.0
    d0 = 1.0 + 0.5 * 1.0 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    torch.testing.assert_close(gae(rewards, values, mask, gamma, lam), column(a0, a1, a2, 0.0))


def test_gae_limits() -> None:
    torch.manual_seed(0)
    rewards = torch.randn(6, 2, 3, dtype=torch.float64)
    values = torch.randn(6, 2, 3, dtype=torch.float64)
    mask = (torch.arange(6).view(-1, 1, 1) < torch.tensor([[3, 6, 1], [6, 4, 2]])).double()
    values = values * mask
    returns = discounted_returns(rewards, mask, 0.9)
    torch.testing.assert_close(gae(rewards, values, mask, 0.9, 1.0), (returns - values) * mask)
    next_values = torch.cat([values[1:] * mask[1:], torch.zeros(1, 2, 3, dtype=torch.float64)])
    torch.testing.assert_close(gae(rewards, values, mask, 0.9, 0.0),
                               (rewards + 0.9 * next_values - values) * mask)


def _masked_episodes(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    observations = torch.randn(20, 3, 4, 2, generator=generator)
    targets = torch.randn(20, 3, 4, generator=generator)
    lengths = torch.tensor([[20, 20, 13, 7], [20, 5, 20, 20], [11, 20, 20, 20]])
    mask = (torch.arange(20).view(-1, 1, 1) < lengths).float()
    return observations, targets, mask


def test_baseline_features_layout() -> None:
    observations, _, mask = _masked_episodes()
    features = baseline_features(observations, mask)
    assert features.shape == (20, 3, 4, 2 * 2 + 4)
    t = 5 / 100
    torch.testing.assert_close(features[5, 0, 0, 4:], torch.tensor([t, t**2, t**3, 1.0]))
    assert torch.all(features[mask == 0] == 0)


def test_linear_baseline_matches_numpy_lstsq() -> None:
    observations, targets, mask = _masked_episodes()
    fitted = fit_linear_baseline(observations, targets, mask, ridge=0.0)
    features = baseline_features(observations, mask).double().numpy()
    for task in range(3):
        alive = mask[:, task].numpy() > 0
        x = features[:, task][alive]
        y = targets[:, task].double().numpy()[alive]
        weights, *_ = np.linalg.lstsq(x, y, rcond=None)
        np.testing.assert_allclose(fitted[:, task].numpy()[alive], x @ weights, atol=1e-4)
    assert torch.all(fitted[mask == 0] == 0)


def test_linear_baseline_ridge_matches_the_closed_form() -> None:
    observations, targets, mask = _masked_episodes(1)
    ridge = 0.3
    fitted = fit_linear_baseline(observations, targets, mask, ridge=ridge)
    features = baseline_features(observations, mask).double().numpy()
    x = features[:, 1].reshape(-1, features.shape[-1])
    y = (targets[:, 1] * mask[:, 1]).double().numpy().reshape(-1)
    weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
    np.testing.assert_allclose(fitted[:, 1].numpy().reshape(-1), x @ weights, atol=1e-5)


def test_linear_baseline_survives_badly_conditioned_features() -> None:
    # pointnav-like: 100 steps, observations that barely move -> nearly collinear features
    observations = torch.linspace(0, 1e-3, 100).view(-1, 1, 1, 1).expand(100, 2, 5, 2).clone()
    targets = -torch.linspace(1, 0, 100).view(-1, 1, 1).expand(100, 2, 5).clone()
    mask = torch.ones(100, 2, 5)
    fitted = fit_linear_baseline(observations, targets, mask, ridge=1e-5)
    assert torch.isfinite(fitted).all()
    assert (fitted - targets).abs().max() < 0.05


def test_normalize_per_task() -> None:
    _, values, mask = _masked_episodes()
    normalized = normalize_per_task(values * 5 + 3, mask)
    for task in range(3):
        alive = normalized[:, task][mask[:, task] > 0].double()
        assert abs(alive.mean().item()) < 1e-5
        assert abs(alive.std(unbiased=False).item() - 1) < 1e-4
    assert torch.all(normalized[mask == 0] == 0)


def test_baseline_advantages_shape_and_mask() -> None:
    observations, rewards, mask = _masked_episodes()
    advantages = baseline_advantages(observations, rewards, mask, 0.99, 0.95)
    assert advantages.shape == rewards.shape and torch.isfinite(advantages).all()
    assert torch.all(advantages[mask == 0] == 0)
    raw = baseline_advantages(observations, rewards, mask, 0.99, 0.95, normalize=False)
    torch.testing.assert_close(normalize_per_task(raw, mask), advantages)
