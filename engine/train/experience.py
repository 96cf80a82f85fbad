"""The experience axis: the return of episode *n*+1 on a variant after *n* episodes of
experience on it, for every adaptation family, at equal data.

Each variant is played in ``trials`` independent trials. A recurrent or context policy plays
one trial of ``max(budgets) + 1`` episodes with its memory carried (the GRU state; the task
posterior, acted on with ``z`` drawn from it or at its mean), and episode *n*+1's return is
read for every budget *n*. A gradient-family policy plays *n* episodes with the shared
parameters, adapts on them (its inner loop), and plays one more with the adapted ones;
budget 0 is the shared parameters' own episode. The experience episodes are played in the
same action mode as the measured one (``greedy``: what a game playing the ``action`` output
does; ``sampled``). Every method evaluated with the same seed meets the same variants, and
the methods of one family the same env seeds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import torch

from ..algorithm import TRIAL_FAMILIES, GradientAlgorithm, gradient_algorithm, trial_algorithm
from ..game import BatchedGame
from ..hashrandom import derive_seed
from ..learn.policy import MLPPolicy, detached, expand_params
from ..learn.rollout import learner_returns, learner_rows, sample_episodes
from ..learn.trials import LatentMode, TrialPolicy, sample_trials
from ..learn.vector import make_batched_game
from ..variants import Variant
from .session import Session

ActionMode = Literal["greedy", "sampled"]
ACTION_MODES: tuple[ActionMode, ...] = ("greedy", "sampled")
FINETUNE_LRS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)  # two decades, ~half-decade steps


@dataclass(frozen=True)
class Curve:
    """Per budget: the mean return over variants x trials, and the success rate (or None)."""

    returns: list[float]
    success: list[float] | None


def experience_curve(session: Session, variants: Sequence[Variant], budgets: Sequence[int],
                     trials: int, seed: int, mode: ActionMode,
                     algorithm: GradientAlgorithm | None = None,
                     latent: LatentMode = "sample") -> Curve:
    """Episode *n*+1's mean return (and success) for every *n* in ``budgets``.

    ``algorithm`` overrides the session's own for the gradient family (a baseline fine-tuned
    at its own learning rate); ``latent`` is how a context policy acts on its posterior.
    """
    if session.algorithm.family in TRIAL_FAMILIES:
        return _trial_curve(session, variants, budgets, trials, seed, mode, latent)
    chosen = algorithm or gradient_algorithm(session.algorithm, "the experience axis")
    points = [_gradient_point(session, chosen, variants, n, trials, seed, mode) for n in budgets]
    returns = [value for value, _ in points]
    success = None if any(s is None for _, s in points) else [s for _, s in points if s is not None]
    return Curve(returns, success)


def _trial_curve(session: Session, variants: Sequence[Variant], budgets: Sequence[int],
                 trials: int, seed: int, mode: ActionMode, latent: LatentMode) -> Curve:
    """One trial of ``max(budgets) + 1`` episodes per (variant, trial)."""
    trial_algorithm(session.algorithm)
    policy = cast(TrialPolicy, session.policy)
    with _game(session, variants, trials) as game:
        played = sample_trials(game, policy, max(budgets) + 1, derive_seed(seed, 0),
                               greedy=mode == "greedy", latent=latent)
        returns = torch.stack([learner_rows(r, game) for r in played.episode_returns])
        success = None if played.success is None else torch.stack(
            [learner_rows(s.float(), game) for s in played.success])
    return Curve([returns[n].mean().item() for n in budgets],
                 None if success is None else [success[n].mean().item() for n in budgets])


def _gradient_point(session: Session, algorithm: GradientAlgorithm,
                    variants: Sequence[Variant], budget: int, trials: int, seed: int,
                    mode: ActionMode) -> tuple[float, float | None]:
    """The mean return and success of one episode after adapting on ``budget`` episodes."""
    policy = session.policy
    assert isinstance(policy, MLPPolicy)
    greedy = mode == "greedy"
    shared = detached(session.params)
    repeated = [variant for variant in variants for _ in range(trials)]  # one task per trial
    params = expand_params(shared, len(repeated))
    if budget > 0:
        with _game(session, repeated, budget) as game:
            experience = sample_episodes(game, policy, params, derive_seed(seed, 2 * budget),
                                         greedy)
        with torch.enable_grad():
            params = algorithm.adapt(policy, shared, experience)
    with _game(session, repeated, 1) as game:
        measured = sample_episodes(game, policy, params, derive_seed(seed, 2 * budget + 1),
                                   greedy)
        returns = learner_returns(measured, game)
        success = None if measured.success is None else learner_rows(
            measured.success.float(), game)
    return returns.mean().item(), None if success is None else success.mean().item()


def choose_finetune_lr(session: Session, variants: Sequence[Variant], episodes: int,
                       seed: int, grid: Sequence[float] = FINETUNE_LRS
                       ) -> tuple[float, list[float]]:
    """The inner learning rate from ``grid`` whose one adaptation on ``episodes`` sampled
    episodes gives the best sampled return on ``variants`` (training variants, never held-out
    ones), and the return of every value."""
    algorithm = gradient_algorithm(session.algorithm, "fine-tuning")
    returns = [_gradient_point(session, algorithm.with_inner_lr(lr), variants, episodes, 1,
                               seed, "sampled")[0] for lr in grid]
    best = max(range(len(grid)), key=lambda index: returns[index])
    return float(grid[best]), returns


@contextlib.contextmanager
def _game(session: Session, variants: Sequence[Variant], envs: int) -> Iterator[BatchedGame]:
    """The session's batched game of ``variants`` x ``envs``, closed on the way out."""
    with contextlib.closing(make_batched_game(session.spec, variants, envs, session.device,
                                              session.agents)) as game:
        yield game


def thin_budgets(budgets: Sequence[int]) -> list[int]:
    """Budgets at which a gradient method's advantage estimate means little: a single
    episode, whose own returns-to-go the per-task linear baseline can fit."""
    return [n for n in budgets if n == 1]
