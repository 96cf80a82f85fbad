"""The task posterior of the context family: a product of Gaussians (PEARL, Rakelly et al.
2019), kept as two running sums.

Each transition ``c`` gives a Gaussian factor ``N(μ(c), σ²(c))`` over the latent task
variable ``z`` (diagonal, ``L`` dims); the posterior is the unit prior times every factor::

    precision = 1 + Σᵢ 1/σᵢ²          weighted = 0 + Σᵢ μᵢ/σᵢ²
    mean = weighted / precision        variance = 1 / precision

so the posterior after ``n`` transitions is two sums of size ``L``, updated by adding one
transition's ``(1/σ², μ/σ²)``: constant memory and work per step, and the same whatever the
order of the transitions. The sums start at the prior ``(1, 0)``, so no transitions means
the prior itself. (PEARL's code multiplies the factors alone; folding the prior in as a
factor keeps the zero-transition case exact and every posterior proper.)
"""

from __future__ import annotations

import torch
from torch import nn

MIN_VARIANCE = 1e-4  # floor of a factor's variance: a precision of at most 10⁴ per transition
PRIOR_PRECISION = 1.0
PRIOR_WEIGHTED = 0.0

Sums = tuple[torch.Tensor, torch.Tensor]  # (precision, weighted), each [..., L]


def factor_terms(raw: torch.Tensor) -> Sums:
    """A transition's ``(1/σ², μ/σ²)`` from the encoder's output ``[..., 2L]`` (``μ`` then
    the pre-softplus variance: ``σ² = softplus(·) + MIN_VARIANCE``)."""
    mean, raw_variance = raw.chunk(2, dim=-1)
    precision = 1.0 / (nn.functional.softplus(raw_variance) + MIN_VARIANCE)
    return precision, precision * mean


def prior_sums(*batch: int, latent_size: int, device: torch.device | str = "cpu") -> Sums:
    """The sums of no transitions: the unit prior, ``(1, 0)`` of shape ``[*batch, L]``."""
    shape = (*batch, latent_size)
    return (torch.full(shape, PRIOR_PRECISION, device=device),
            torch.full(shape, PRIOR_WEIGHTED, device=device))


def add_factors(sums: Sums, factors: Sums, live: torch.Tensor) -> Sums:
    """The sums with one transition's factors added where ``live`` (``[...]``, bool or 0/1)."""
    weight = live.to(factors[0].dtype).unsqueeze(-1)
    return sums[0] + weight * factors[0], sums[1] + weight * factors[1]


def total_sums(factors: Sums, mask: torch.Tensor) -> Sums:
    """The sums after every transition where ``mask`` is 1 (``factors`` ``[S, ..., L]``,
    ``mask`` ``[S, ...]``): the prior plus their sum over the first dim."""
    live = mask.unsqueeze(-1)
    return (PRIOR_PRECISION + (factors[0] * live).sum(0),
            PRIOR_WEIGHTED + (factors[1] * live).sum(0))


def posterior(sums: Sums) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, variance)`` of the posterior the sums describe."""
    variance = 1.0 / sums[0]
    return sums[1] * variance, variance


def kl_to_prior(mean: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, variance) ‖ N(0, I))`` summed over the latent dims (closed form)."""
    return 0.5 * (variance + mean ** 2 - 1.0 - torch.log(variance)).sum(-1)


def episode_start_sums(factors: Sums, mask: torch.Tensor, episode: torch.Tensor,
                       episodes: int) -> Sums:
    """The sums each episode of a trial starts from, ``[K, B, L]``: the prior plus every
    factor of the earlier episodes (``factors`` ``[S, B, L]`` on the trial's timeline,
    ``mask`` ``[S, B]``, ``episode`` ``[S, B]``: the episode of each step)."""
    starts = []
    for terms, prior in zip(factors, (PRIOR_PRECISION, PRIOR_WEIGHTED)):
        index = episode.unsqueeze(-1).expand_as(terms)
        per_episode = terms.new_zeros(episodes, *terms.shape[1:]).scatter_add_(
            0, index, terms * mask.unsqueeze(-1))
        before = torch.cumsum(per_episode, 0) - per_episode  # factors of episodes < k
        starts.append(before + prior)
    return starts[0], starts[1]


def step_sums(factors: Sums, mask: torch.Tensor) -> Sums:
    """The sums before each step of a trial's timeline, ``[S, B, L]``: the prior plus every
    earlier live factor (an exclusive cumulative sum over the steps)."""
    starts = []
    for terms, prior in zip(factors, (PRIOR_PRECISION, PRIOR_WEIGHTED)):
        live = terms * mask.unsqueeze(-1)
        starts.append(torch.cumsum(live, 0) - live + prior)
    return starts[0], starts[1]
