"""Sample episodes from a batch of tasks, one batched loop over time steps.

:func:`sample_episodes` plays one episode in every env of a :class:`~gameadapt.game.BatchedGame`
(``M`` tasks x ``E`` envs) with per-task policy parameters: the action distributions of all
tasks come from one batched computation over the task dimension (batched matmuls prepared
once per round, see :func:`~gameadapt.learn.policy.task_batched_policy`), and the action noise is
drawn outside it from a seeded ``torch.Generator``, so the same seed replays the same
episodes. (The batched views themselves: :mod:`gameadapt.learn.vector`.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

import torch

from ..game import BatchedGame, BatchedStep, GameSpec
from ..variants import Variant
from .policy import MLPPolicy, Params, expand_params, task_batched_policy
from .vector import make_batched_game


class Episodes(NamedTuple):
    """One episode per env, time-major: every field is shaped ``[T, M, E, ...]``.

    ``mask`` is 1.0 at the steps where the env was still alive (the step's observation,
    action and reward belong to its episode) and 0.0 after the episode ended. ``log_probs``
    are the sampling policy's log-probabilities of ``actions`` (no gradient).
    """

    observations: torch.Tensor  # [T, M, E, obs_dim]
    actions: torch.Tensor  # [T, M, E] long or [T, M, E, act_dim]
    rewards: torch.Tensor  # [T, M, E]
    mask: torch.Tensor  # [T, M, E] float
    log_probs: torch.Tensor  # [T, M, E]
    success: torch.Tensor | None = None  # [M, E] bool, or None if the game reports no success

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of every episode, ``[M, E]``."""
        return (self.rewards * self.mask).sum(0)

    @property
    def num_steps(self) -> int:
        """Env steps taken (alive steps summed over all envs)."""
        return int(self.mask.sum().item())

    def task(self, index: int) -> Episodes:
        """The episodes of one task, each field ``[T, E, ...]`` (``success``: ``[E]``)."""
        return Episodes(self.observations[:, index], self.actions[:, index],
                        self.rewards[:, index], self.mask[:, index], self.log_probs[:, index],
                        None if self.success is None else self.success[index])


@torch.no_grad()
def sample_episodes(game: BatchedGame, policy: MLPPolicy, params: Params, seed: int,
                    greedy: bool = False) -> Episodes:
    """Play one episode in every env of ``game`` with per-task ``params`` (leading dim ``M``).

    ``seed`` seeds both ``game.reset`` and the action noise; with ``greedy`` every action is
    the most likely one (:meth:`~gameadapt.learn.policy.ActionHead.greedy`). The game receives
    :meth:`~gameadapt.learn.policy.MLPPolicy.to_env_action` of each sample (scaled, clipped to the
    bounds); the raw samples are recorded, as their log-probabilities are what losses use.
    """
    device = game.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    dist_fn = task_batched_policy(policy, params)
    obs = game.reset(seed).to(device=device, dtype=torch.float32)
    alive = torch.ones(obs.shape[:2], dtype=torch.bool, device=device)
    steps: list[tuple[torch.Tensor, ...]] = []
    dists: list[tuple[torch.Tensor, ...]] = []
    success: torch.Tensor | None = None
    reported = True
    for _ in range(game.horizon):
        dist = dist_fn(obs)
        actions = policy.greedy(dist) if greedy else policy.sample(dist, generator)
        result: BatchedStep = game.step(policy.to_env_action(actions))
        steps.append((obs, actions, result.reward, alive))
        dists.append(dist)
        reported = reported and result.success is not None
        if result.success is not None:
            now = result.success.to(torch.bool) & alive
            success = now if success is None else success | now
        alive = alive & ~(result.terminated | result.truncated)
        obs = result.observation.to(device=device, dtype=torch.float32)
        # sharded, a rank stops with its own envs: the round's generator is not used again,
        # and the noise of its tasks at every step it plays is the one-process noise
        if not bool(alive.any()):
            break
    observations, actions, rewards, alive_before = (torch.stack(field) for field in zip(*steps))
    mask = alive_before.to(observations.dtype)
    rewards = rewards.to(observations.dtype) * mask
    # One log-probability computation for the whole round instead of one per step.
    log_probs = policy.log_prob(tuple(torch.stack(part) for part in zip(*dists)), actions)
    return Episodes(observations, actions, rewards, mask, log_probs,
                    success if reported else None)


def learner_returns(episodes: Episodes, game: BatchedGame) -> torch.Tensor:
    """Returns ``[M, envs]`` of the learner's rows (every row in a single-agent game).

    In a multi-agent game with several controlled agents the learner is the first agent of
    each env (see :class:`~gameadapt.game.BatchedGame`).
    """
    return learner_rows(episodes.returns, game)


def learner_rows(values: torch.Tensor, game: BatchedGame) -> torch.Tensor:
    """The learner's rows ``[M, envs]`` of per-row values ``[M, rows]`` (see
    :func:`learner_returns`)."""
    agents = getattr(game, "agents", ())
    if len(agents) <= 1:
        return values
    return values.reshape(values.shape[0], -1, len(agents))[..., 0]


def play_episodes(spec: GameSpec, policy: MLPPolicy, params: Params, variant: Variant,
                  episodes: int, seed: int, device: torch.device | str = "cpu",
                  agents: Sequence[str] = (), greedy: bool = False
                  ) -> tuple[Episodes, torch.Tensor]:
    """``episodes`` episodes of one variant with one parameter set (no task dimension),
    sampled or ``greedy``.

    Returns the episodes (one task) and the learner's returns ``[episodes]``.
    """
    with contextlib.closing(make_batched_game(spec, [variant], episodes, device,
                                              agents or None)) as game:
        played = sample_episodes(game, policy, expand_params(params, 1), seed, greedy)
        return played, learner_returns(played, game)[0]
