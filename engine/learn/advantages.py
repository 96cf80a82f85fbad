"""Returns, a per-task linear baseline and GAE, masked and batched over tasks.

Every tensor is time-major ``[T, M, E]`` (``T`` steps, ``M`` tasks, ``E`` envs per task), and
``mask`` holds one episode per env: 1.0 while the env is alive, then 0.0 for good. Under that
layout discounted sums are one matrix product with an upper-triangular discount matrix.
"""

from __future__ import annotations

import torch

TIME_SCALE = 100.0  # the baseline's time feature is t / 100, as in pytorch-maml-rl


def discount_matrix(length: int, factor: float, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """``D[t, s] = factor ** (s - t)`` for ``s >= t``, else 0 (shape ``[length, length]``)."""
    steps = torch.arange(length, device=device, dtype=torch.float64)
    power = (steps.unsqueeze(0) - steps.unsqueeze(1)).clamp_min(0)
    matrix = torch.triu(float(factor) ** power)
    return matrix.to(dtype)


def discounted_sum(values: torch.Tensor, factor: float) -> torch.Tensor:
    """``out[t] = sum_{s >= t} factor**(s-t) * values[s]`` along the leading (time) dimension."""
    matrix = discount_matrix(values.shape[0], factor, dtype=values.dtype, device=values.device)
    return (matrix @ values.reshape(values.shape[0], -1)).reshape(values.shape)


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted reward-to-go at every alive step (0 after the episode ended)."""
    return discounted_sum(rewards * mask, gamma) * mask


def baseline_features(observations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pytorch-maml-rl's ``LinearFeatureBaseline`` features ``[T, M, E, 2*obs_dim + 4]``.

    ``(obs, obs**2, t, t**2, t**3, 1)`` with ``t = step / 100``, zero where ``mask`` is 0.
    """
    ones = mask.unsqueeze(-1)
    time = torch.arange(mask.shape[0], device=mask.device, dtype=observations.dtype)
    time = (time / TIME_SCALE).view(-1, *([1] * (mask.dim() - 1)), 1) * ones
    return torch.cat([observations * ones, observations**2 * ones,
                      time, time**2, time**3, ones], dim=-1)


def fit_linear_baseline(observations: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                        ridge: float = 1e-5) -> torch.Tensor:
    """Per-task ridge regression of ``targets [T, M, E]``; returns its fitted values.

    Solves ``(X^T X + ridge I) w = X^T y`` for every task at once in float64 (the normal
    equations are badly conditioned in float32) and returns ``X w`` as ``targets``' dtype.
    """
    features = baseline_features(observations, mask).to(torch.float64)  # [T, M, E, F]
    x = features.transpose(0, 1).reshape(features.shape[1], -1, features.shape[-1])  # [M, T*E, F]
    y = (targets * mask).to(torch.float64).transpose(0, 1).reshape(x.shape[0], -1, 1)
    eye = torch.eye(x.shape[-1], dtype=torch.float64, device=x.device)
    gram = x.transpose(1, 2) @ x + ridge * eye
    weights = torch.linalg.solve(gram, x.transpose(1, 2) @ y).squeeze(-1)  # [M, F]
    return torch.einsum("tmef,mf->tme", features, weights).to(targets.dtype) * mask


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> torch.Tensor:
    """Generalised advantage estimates; the value after an episode's last step is 0."""
    next_values = torch.cat([values[1:] * mask[1:], torch.zeros_like(values[:1])])
    deltas = (rewards + gamma * next_values - values) * mask
    return discounted_sum(deltas, gamma * lam) * mask


def normalize_per_task(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Standardise ``[T, M, E]`` values over each task's alive steps."""
    count = mask.sum(dim=(0, 2), keepdim=True).clamp_min(1.0)
    mean = (values * mask).sum(dim=(0, 2), keepdim=True) / count
    var = (((values - mean) * mask) ** 2).sum(dim=(0, 2), keepdim=True) / count
    return (values - mean) / torch.sqrt(var + eps) * mask


def baseline_advantages(observations: torch.Tensor, rewards: torch.Tensor, mask: torch.Tensor,
                        gamma: float, lam: float, *, ridge: float = 1e-5,
                        normalize: bool = True) -> torch.Tensor:
    """GAE with a per-task linear baseline fitted to the discounted returns, ``[T, M, E]``."""
    returns = discounted_returns(rewards, mask, gamma)
    values = fit_linear_baseline(observations, returns, mask, ridge)
    advantages = gae(rewards, values, mask, gamma, lam)
    return normalize_per_task(advantages, mask) if normalize else advantages
