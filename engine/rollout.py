"""Sample episodes from a batch of tasks, one batched loop over time steps.

:func:`sample_episodes` plays one episode in every env of a :class:`~gameadapt.game.BatchedGame`
(``M`` tasks x ``E`` envs) with per-task policy parameters: the action distributions of all
tasks come from one batched computation over the task dimension (batched matmuls prepared
once per round, see :func:`~gameadapt.policy.task_batched_policy`), and the action noise is
drawn outside it from a seeded ``torch.Generator``, so the same seed replays the same
episodes. Games without a batched view run through :class:`GymVectorGame`, which
exposes the same protocol over ``gymnasium.vector.SyncVectorEnv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import gymnasium
import numpy as np
import torch

from .game import BatchedGame, BatchedStep, GameSpec
from .hashrandom import stream_key
from .multiagent import ParallelVectorGame
from .policy import MLPPolicy, Params, task_batched_policy
from .variants import Variant


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

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of every episode, ``[M, E]``."""
        return (self.rewards * self.mask).sum(0)

    @property
    def num_steps(self) -> int:
        """Env steps taken (alive steps summed over all envs)."""
        return int(self.mask.sum().item())

    def task(self, index: int) -> Episodes:
        """The episodes of one task, each field ``[T, E, ...]``."""
        return Episodes(*(field[:, index] for field in self))


@torch.no_grad()
def sample_episodes(game: BatchedGame, policy: MLPPolicy, params: Params, seed: int) -> Episodes:
    """Play one episode in every env of ``game`` with per-task ``params`` (leading dim ``M``).

    ``seed`` seeds both ``game.reset`` and the action noise. The game receives
    :meth:`~gameadapt.policy.MLPPolicy.to_env_action` of each sample (scaled, clipped to the
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
    for _ in range(game.horizon):
        dist = dist_fn(obs)
        actions = policy.sample(dist, generator)
        result: BatchedStep = game.step(policy.to_env_action(actions))
        steps.append((obs, actions, result.reward, alive))
        dists.append(dist)
        alive = alive & ~(result.terminated | result.truncated)
        obs = result.observation.to(device=device, dtype=torch.float32)
        if not bool(alive.any()):
            break
    observations, actions, rewards, alive_before = (torch.stack(field) for field in zip(*steps))
    mask = alive_before.to(observations.dtype)
    rewards = rewards.to(observations.dtype) * mask
    # One log-probability computation for the whole round instead of one per step.
    log_probs = policy.log_prob(tuple(torch.stack(part) for part in zip(*dists)), actions)
    return Episodes(observations, actions, rewards, mask, log_probs)


class GymVectorGame:
    """The :class:`~gameadapt.game.BatchedGame` protocol over ``gymnasium.vector.SyncVectorEnv``.

    Builds ``len(variants) * envs_per_task`` single-instance envs with ``spec.make_env``
    (env ``(m, e)`` plays ``variants[m]``), steps them together and converts between numpy
    and torch. Envs that ended are frozen: their later observations repeat, rewards are 0
    and flags are False (the vector env's own auto-reset is ignored). ``horizon`` defaults
    to the envs' ``max_episode_steps``; when given, episodes are truncated there.
    """

    def __init__(self, spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                 device: torch.device | str = "cpu", horizon: int | None = None) -> None:
        if not variants or envs_per_task < 1:
            raise ValueError("GymVectorGame needs at least one variant and envs_per_task >= 1")
        self.num_tasks = len(variants)
        self.envs_per_task = envs_per_task
        self.device = torch.device(device)
        self.discrete = isinstance(spec.action_space, gymnasium.spaces.Discrete)
        fns = [partial(spec.make_env, variant) for variant in variants
               for _ in range(envs_per_task)]
        self.vector = gymnasium.vector.SyncVectorEnv(
            fns, autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP)
        limits = [env.spec.max_episode_steps for env in self.vector.envs
                  if env.spec is not None and env.spec.max_episode_steps is not None]
        if horizon is None:
            if len(limits) != len(self.vector.envs):
                raise ValueError(f"game {spec.id!r}: its envs have no max_episode_steps; "
                                 f"give GymVectorGame a horizon")
            horizon = max(limits)
        self.horizon = int(horizon)
        self._shape = (self.num_tasks, envs_per_task)
        self._obs: np.ndarray | None = None
        self._done = np.zeros(self.num_tasks * envs_per_task, dtype=bool)
        self._steps = 0

    def reset(self, seed: int) -> torch.Tensor:
        """Reset env ``i`` with the seed of stream ``i`` under ``seed``."""
        seeds = [stream_key(seed, i) & 0x7FFFFFFFFFFFFFFF for i in range(self.vector.num_envs)]
        obs, _ = self.vector.reset(seed=seeds)
        self._obs = np.array(obs, dtype=np.float32)
        self._done[:] = False
        self._steps = 0
        return self._to_torch(self._obs)

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Step every env; ended envs are frozen."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        flat = action.detach().cpu().reshape(self.vector.num_envs, *action.shape[2:]).numpy()
        obs, reward, terminated, truncated, _ = self.vector.step(
            flat.astype(np.int64) if self.discrete else flat.astype(np.float32))
        self._steps += 1
        live = ~self._done
        truncated = truncated | (self._steps >= self.horizon)
        terminated, truncated = terminated & live, truncated & live & ~terminated
        self._obs = np.where(live[:, None], np.asarray(obs, dtype=np.float32).reshape(
            self.vector.num_envs, -1), self._obs.reshape(self.vector.num_envs, -1))
        self._done |= terminated | truncated
        reward = np.where(live, reward, 0.0).astype(np.float32)
        return BatchedStep(self._to_torch(self._obs), self._to_torch(reward),
                           self._to_torch(terminated), self._to_torch(truncated))

    def close(self) -> None:
        """Close the underlying envs."""
        self.vector.close()

    def _to_torch(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device).reshape(*self._shape, *array.shape[1:])


def make_batched_game(spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                      device: torch.device | str = "cpu",
                      agents: Sequence[str] | None = None) -> BatchedGame:
    """The game's native batched view, or a Python-loop view when it has none.

    Games without a batched view run through :class:`GymVectorGame` (for a multi-agent
    game: the learner's gymnasium view), or, when a multi-agent game's policy drives several
    agents, through :class:`~gameadapt.multiagent.ParallelVectorGame`. ``agents`` are the
    controlled agents of a multi-agent game (default: its learner).
    """
    if spec.is_multi_agent:
        agents = tuple(agents) if agents else spec.controlled_agents()
        if spec.make_batched is not None:
            return spec.make_batched(variants, envs_per_task, device, agents)
        if agents == spec.controlled_agents():
            return GymVectorGame(spec, variants, envs_per_task, device,
                                 horizon=spec.max_episode_steps)
        return ParallelVectorGame(spec, variants, envs_per_task, device, agents)
    if agents:
        raise ValueError(f"game {spec.id!r} is single-agent; it has no agents to control")
    if spec.make_batched is not None:
        return spec.make_batched(variants, envs_per_task, device)
    return GymVectorGame(spec, variants, envs_per_task, device)


def learner_returns(episodes: Episodes, game: BatchedGame) -> torch.Tensor:
    """Returns ``[M, envs]`` of the learner's rows (every row in a single-agent game).

    In a multi-agent game with several controlled agents the learner is the first agent of
    each env (see :class:`~gameadapt.game.BatchedGame`).
    """
    returns = episodes.returns
    agents = getattr(game, "agents", ())
    if len(agents) <= 1:
        return returns
    return returns.reshape(returns.shape[0], -1, len(agents))[..., 0]
