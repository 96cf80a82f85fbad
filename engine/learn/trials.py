"""Trials: several episodes of one variant played by a policy that carries what it has
learnt about the variant across them (a recurrent state, or a task posterior), for every env
of a batched game at once.

A trial of ``K`` episodes is ``K`` rounds of the :class:`~gameadapt.game.BatchedGame`
(round ``k`` reset with ``derive_seed(seed, k)``). What carries over lives in the policy's
:class:`TrialMemory`, made fresh for every trial (a new variant) and told when an episode
starts, what to act on, and what each step brought. The rounds are laid end to end on one
*timeline* of ``S`` steps (``S`` = the rounds' lengths summed); ``mask`` marks the steps that
belong to an episode, so the memory and the advantages flow over the gaps from an episode's
last step to the next episode's first.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

import torch

from ..game import BatchedGame
from ..hashrandom import derive_seed
from . import shard
from .policy import DistParams

LatentMode = Literal["sample", "mean"]
LATENT_MODES: tuple[LatentMode, ...] = ("sample", "mean")


class TrialMemory(Protocol):
    """What a trial-family policy carries over the episodes of a trial, ``[M, E]`` envs."""

    def start_episode(self, generator: torch.Generator) -> torch.Tensor | None:
        """A new episode begins; returns the noise it drew for the episode, if any."""
        ...

    def act(self, observation: torch.Tensor, alive: torch.Tensor
            ) -> tuple[DistParams, torch.Tensor]:
        """The action distribution and value estimate at ``observation``."""
        ...

    def observe(self, actions: torch.Tensor, reward: torch.Tensor,
                next_observation: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """Take in the step's outcome (only where ``alive``); returns the step's record,
        the ``inputs`` that training replays."""
        ...


class TrialPolicy(Protocol):
    """A policy that plays trials: an ``ActionHead`` with a :class:`TrialMemory`."""

    def trial_memory(self, batch: tuple[int, int], device: torch.device | str,
                     latent: LatentMode = "sample") -> TrialMemory:
        """A fresh memory for ``batch`` envs (``latent``: how a posterior is acted on)."""
        ...

    def greedy(self, dist: DistParams) -> torch.Tensor: ...
    def sample(self, dist: DistParams, generator: torch.Generator | None = None
               ) -> torch.Tensor: ...
    def log_prob(self, dist: DistParams, actions: torch.Tensor) -> torch.Tensor: ...
    def to_env_action(self, actions: torch.Tensor) -> torch.Tensor: ...


class Trials(NamedTuple):
    """One trial per env, on the timeline: every field ``[S, M, E, ...]`` unless noted."""

    inputs: torch.Tensor  # [S, M, E, input_size]: each step's record (what training replays)
    actions: torch.Tensor  # [S, M, E] long or [S, M, E, act_dim] (policy units)
    rewards: torch.Tensor  # [S, M, E], 0 where mask is 0
    mask: torch.Tensor  # [S, M, E] float: 1 on a step of an episode
    log_probs: torch.Tensor  # [S, M, E] of the sampling policy (0 for greedy actions)
    values: torch.Tensor  # [S, M, E] the value head's estimates
    episode: torch.Tensor  # [S] long: the episode (round) of the trial each step belongs to
    success: torch.Tensor | None  # [K, M, E] bool, or None if the game reports no success
    noise: torch.Tensor | None = None  # [K, M, E, ...] what each episode drew, if anything

    @property
    def num_episodes(self) -> int:
        """Episodes per trial (``K``)."""
        return int(self.episode.max().item()) + 1

    @property
    def episode_returns(self) -> torch.Tensor:
        """Undiscounted return of every episode of every trial, ``[K, M, E]``."""
        returns = self.rewards.new_zeros(self.num_episodes, *self.rewards.shape[1:])
        return returns.index_add_(0, self.episode, self.rewards * self.mask)

    @property
    def num_steps(self) -> int:
        """Env steps taken."""
        return int(self.mask.sum().item())


@torch.no_grad()
def sample_trials(game: BatchedGame, policy: TrialPolicy, episodes: int, seed: int,
                  greedy: bool = False, latent: LatentMode = "sample") -> Trials:
    """Play a trial of ``episodes`` episodes in every env of ``game`` (see the module doc).

    Actions (and any noise the memory draws) come from a generator seeded with ``seed`` (the
    same seed replays the same trials), or are the most likely ones with ``greedy``.
    """
    device = game.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    shape = (game.num_tasks, game.envs_per_task)
    memory = policy.trial_memory(shape, device, latent)
    steps: list[tuple[torch.Tensor, ...]] = []
    successes: list[torch.Tensor | None] = []
    noises: list[torch.Tensor | None] = []
    for index in range(episodes):
        obs = game.reset(derive_seed(seed, index)).to(device=device, dtype=torch.float32)
        noises.append(memory.start_episode(generator))
        alive = torch.ones(shape, dtype=torch.bool, device=device)
        success: torch.Tensor | None = None
        for _ in range(game.horizon):
            dist, value = memory.act(obs, alive)
            actions = policy.greedy(dist) if greedy else policy.sample(dist, generator)
            result = game.step(policy.to_env_action(actions))
            reward = result.reward.to(torch.float32) * alive
            log_prob = torch.zeros_like(value) if greedy else policy.log_prob(dist, actions)
            next_obs = result.observation.to(device=device, dtype=torch.float32)
            inputs = memory.observe(actions, reward, next_obs, alive)
            steps.append((inputs, actions, reward, alive.to(torch.float32), log_prob, value,
                          torch.full((), index, device=device)))
            success = _merge_success(success, result.success, alive)
            alive = alive & ~(result.terminated | result.truncated)
            obs = next_obs
            if not shard.any_alive(alive):  # every rank's envs, when sharded
                break
        successes.append(success)
    inputs, actions, rewards, mask, log_probs, values, episode = (
        torch.stack(field) for field in zip(*steps))
    reported = [s for s in successes if s is not None]
    drawn = [n for n in noises if n is not None]
    return Trials(inputs, actions, rewards, mask, log_probs, values, episode,
                  torch.stack(reported) if len(reported) == episodes else None,
                  torch.stack(drawn) if len(drawn) == episodes else None)


def _merge_success(success: torch.Tensor | None, step_success: torch.Tensor | None,
                   alive: torch.Tensor) -> torch.Tensor | None:
    """An episode's success so far: ``step_success`` on any of its live steps."""
    if step_success is None:
        return success
    now = step_success.to(torch.bool) & alive
    return now if success is None else success | now


def discounted_trial_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float
                             ) -> torch.Tensor:
    """Discounted reward-to-go over whole trials (0 at masked steps), ``[S, ...]``."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        live = mask[t] > 0
        running = torch.where(live, rewards[t] + gamma * running, running)
        returns[t] = torch.where(live, running, torch.zeros_like(running))
    return returns


def trial_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                     gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over whole trials, ``(advantages, returns)`` each ``[S, ...]``.

    The trial is one sequence: an episode's last step bootstraps from the value of the next
    episode's first step (the agent is rewarded for what it learns for later episodes), and
    the trial's last step from 0. Masked steps are skipped (they carry the recursion).
    """
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[0])
    next_advantage = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        live = mask[t] > 0
        delta = rewards[t] + gamma * next_value - values[t]
        advantage = delta + gamma * lam * next_advantage
        advantages[t] = torch.where(live, advantage, torch.zeros_like(advantage))
        next_value = torch.where(live, values[t], next_value)
        next_advantage = torch.where(live, advantage, next_advantage)
    return advantages, (advantages + values) * mask
