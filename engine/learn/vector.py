"""Batched views the engine builds itself, and the one function that picks a game's view.

:func:`make_batched_game` returns a game's native batched view when it has one, and else one
of the two Python-loop adapters behind the same :class:`~gameadapt.game.BatchedGame`
protocol: :class:`GymVectorGame` (single-instance gymnasium views in
``gymnasium.vector.SyncVectorEnv``) and :class:`ParallelVectorGame` (PettingZoo parallel
envs, one row per controlled agent: the layout SuperSuit uses for parameter sharing).

Both Python-loop views fill :attr:`~gameadapt.game.BatchedStep.success` from the envs'
``info["is_success"]`` (gymnasium's convention) on the step an episode ends, once the game
declares success (``GameSpec.success``) or any env has reported it; else it stays None.

Every view takes the global index of its first task (``first_task``, default 0), so a slice
of a meta-batch replays exactly the random streams its tasks have in the whole batch: env
``(m, e)`` draws from stream ``(first_task + m) * E + e``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from functools import partial
from typing import Any

import gymnasium
import numpy as np
import torch

from ..errors import GameadaptError
from ..game import BatchedGame, BatchedStep, GameSpec
from ..hashrandom import derive_seed
from ..multiagent import check_shareable
from ..variants import Variant


class GymVectorGame:
    """The :class:`~gameadapt.game.BatchedGame` protocol over ``gymnasium.vector.SyncVectorEnv``.

    Builds ``len(variants) * envs_per_task`` single-instance envs with ``spec.make_env``
    (env ``(m, e)`` plays ``variants[m]``), steps them together and converts between numpy
    and torch. Envs that ended are frozen: their later observations repeat, rewards are 0
    and flags are False (the vector env's own auto-reset is ignored). ``horizon`` defaults
    to the envs' ``max_episode_steps``; when given, episodes are truncated there.
    ``first_task`` is the global index of the first task (see :func:`make_batched_game`).
    ``success`` is the envs' ``info["is_success"]`` on the step their episode ends.
    """

    def __init__(self, spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                 device: torch.device | str = "cpu", horizon: int | None = None,
                 first_task: int = 0) -> None:
        if not variants or envs_per_task < 1:
            raise ValueError("GymVectorGame needs at least one variant and envs_per_task >= 1")
        self.num_tasks = len(variants)
        self.envs_per_task = envs_per_task
        self.agents = spec.controlled_agents()
        self.first_task = first_task
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
        self._reports_success = spec.success is not None

    def reset(self, seed: int) -> torch.Tensor:
        """Reset env ``i`` with the seed of its global stream under ``seed``."""
        first = self.first_task * self.envs_per_task
        seeds: list[int | None] = [derive_seed(seed, first + i)
                                   for i in range(self.vector.num_envs)]
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
        obs, reward, terminated, truncated, infos = self.vector.step(
            flat.astype(np.int64) if self.discrete else flat.astype(np.float32))
        self._steps += 1
        live = ~self._done
        truncated = truncated | (self._steps >= self.horizon)
        terminated, truncated = terminated & live, truncated & live & ~terminated
        self._obs = np.where(live[:, None], np.asarray(obs, dtype=np.float32).reshape(
            self.vector.num_envs, -1), self._obs.reshape(self.vector.num_envs, -1))
        self._done |= terminated | truncated
        reward = np.where(live, reward, 0.0).astype(np.float32)
        success = self._success(infos, terminated | truncated)
        return BatchedStep(self._to_torch(self._obs), self._to_torch(reward),
                           self._to_torch(terminated), self._to_torch(truncated),
                           None if success is None else self._to_torch(success))

    def _success(self, infos: dict[str, Any], ended: np.ndarray) -> np.ndarray | None:
        """``info["is_success"]`` of the envs whose episode ended on this step (bool ``[N]``).

        A vector env's infos hold ``is_success`` for every env with the mask ``_is_success``
        of the envs that reported it; envs that ended earlier were auto-reset by the vector
        env, so ``ended`` (this step's ends only) keeps them False.
        """
        if "is_success" in infos:
            self._reports_success = True
        if not self._reports_success:
            return None
        reported = np.asarray(infos.get("_is_success", np.zeros(len(ended), dtype=bool)),
                              dtype=bool)
        values = infos.get("is_success", np.zeros(len(ended), dtype=bool))
        flags = np.array([bool(v) for v in np.asarray(values, dtype=object).reshape(-1)])
        return reported & flags.reshape(ended.shape) & ended

    def close(self) -> None:
        """Close the underlying envs."""
        self.vector.close()

    def _to_torch(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device).reshape(*self._shape, *array.shape[1:])


class ParallelVectorGame:
    """``len(variants) x envs_per_task`` parallel envs behind the BatchedGame protocol.

    Rows are the controlled ``agents`` of every env (``envs_per_task`` counts rows: envs
    times agents); see :class:`~gameadapt.game.BatchedGame`. Env ``i = m * E + e`` is reset
    with the seed of stream ``first_task * E + i``. A row ends when its agent terminates or is truncated, or
    after ``horizon`` steps; ended rows are frozen, and an env is no longer stepped once all
    its controlled agents have ended.
    """

    def __init__(self, spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                 device: Any = "cpu", agents: Sequence[str] | None = None,
                 horizon: int | None = None, first_task: int = 0) -> None:
        if not variants or envs_per_task < 1:
            raise ValueError("ParallelVectorGame needs at least one variant and "
                             "envs_per_task >= 1")
        if spec.make_parallel_env is None or spec.opponent is None:
            raise ValueError(f"game {spec.id!r} is not a multi-agent game")
        self.spec = spec
        self.agents = tuple(agents) if agents else spec.controlled_agents()
        horizon = horizon or spec.max_episode_steps
        if not horizon:
            raise ValueError(f"game {spec.id!r} declares no max_episode_steps")
        self.horizon = int(horizon)
        self.variants = [spec.variant_space.validate(v) for v in variants]
        self.envs = [spec.make_parallel_env(v) for v in self.variants for _ in range(envs_per_task)]
        check_shareable(spec, self.envs[0], self.agents)
        self.num_tasks = len(self.variants)
        self.envs_per_task = envs_per_task * len(self.agents)
        self._first_env = first_task * envs_per_task
        self.device = torch.device(device)
        self._variant_of = [v for v in self.variants for _ in range(envs_per_task)]
        self._observations: list[dict[str, Any]] = []
        self._rows: np.ndarray | None = None
        self._done = np.zeros((len(self.envs), len(self.agents)), dtype=bool)
        self._steps = 0
        self._reports_success = spec.success is not None

    def reset(self, seed: int) -> torch.Tensor:
        """Reset env ``i`` with the seed of its global stream under ``seed``."""
        self._observations = []
        for index, env in enumerate(self.envs):
            observations, _ = env.reset(seed=derive_seed(seed, self._first_env + index))
            self._observations.append(dict(observations))
        self._rows = np.stack([np.stack([np.asarray(obs[a], dtype=np.float32)
                                         for a in self.agents]) for obs in self._observations])
        self._done[:] = False
        self._steps = 0
        return self._to_torch(self._rows)

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Step every env that has a live controlled agent; ended rows are frozen."""
        if self._rows is None:
            raise RuntimeError("call reset() before step()")
        chosen = action.detach().cpu().numpy().reshape(len(self.envs), len(self.agents),
                                                       *action.shape[2:])
        self._steps += 1
        shape = self._done.shape
        reward = np.zeros(shape, dtype=np.float32)
        terminated, truncated = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        success = np.zeros(shape, dtype=bool)
        for index, env in enumerate(self.envs):
            if self._done[index].all():
                continue
            actions = self._env_actions(index, env, chosen[index])
            observations, rewards, terms, truncs, infos = env.step(actions)
            self._observations[index].update(observations)
            for column, agent in enumerate(self.agents):
                if self._done[index, column]:
                    continue
                self._rows[index, column] = np.asarray(observations.get(
                    agent, self._rows[index, column]), dtype=np.float32)
                reward[index, column] = float(rewards.get(agent, 0.0))
                terminated[index, column] = bool(terms.get(agent, agent not in env.agents))
                truncated[index, column] = bool(truncs.get(agent, False))
                success[index, column] = self._reported_success(infos.get(agent, {}))
        truncated = (truncated | (self._steps >= self.horizon)) & ~terminated & ~self._done
        terminated &= ~self._done
        self._done |= terminated | truncated
        success &= terminated | truncated
        return BatchedStep(self._to_torch(self._rows), self._to_torch(reward),
                           self._to_torch(terminated), self._to_torch(truncated),
                           self._to_torch(success) if self._reports_success else None)

    def _reported_success(self, info: Any) -> bool:
        """One agent's ``info["is_success"]`` (False when absent); notes that envs report it."""
        if not isinstance(info, dict) or "is_success" not in info:
            return False
        self._reports_success = True
        return bool(info["is_success"])

    def close(self) -> None:
        """Close every parallel env."""
        for env in self.envs:
            env.close()

    def _env_actions(self, index: int, env: Any, chosen: np.ndarray) -> dict[str, Any]:
        """Actions for every live agent of env ``index``: the policy's or the opponent's."""
        assert self.spec.opponent is not None
        actions = {}
        for agent in env.agents:
            if agent in self.agents:
                value = chosen[self.agents.index(agent)]
                space = env.action_space(agent)
                actions[agent] = int(value) if isinstance(space, gymnasium.spaces.Discrete) \
                    else np.asarray(value, dtype=space.dtype)
            else:
                actions[agent] = self.spec.opponent(env, agent, self._observations[index][agent],
                                                    self._variant_of[index])
        return actions

    def _to_torch(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device).reshape(
            self.num_tasks, self.envs_per_task, *array.shape[2:])


def make_batched_game(spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                      device: torch.device | str = "cpu",
                      agents: Sequence[str] | None = None, first_task: int = 0) -> BatchedGame:
    """The game's native batched view, or a Python-loop view when it has none.

    Games without a batched view run through :class:`GymVectorGame` (for a multi-agent
    game: the learner's gymnasium view), or, when a multi-agent game's policy drives several
    agents, through :class:`ParallelVectorGame`. ``agents`` are the controlled agents of a
    multi-agent game (default: its learner). ``first_task`` is the global index of
    ``variants[0]`` in its meta-batch; native views get it as a keyword when it is not 0.
    """
    if spec.is_multi_agent:
        agents = tuple(agents) if agents else spec.controlled_agents()
        if spec.make_batched is not None:
            return _native(spec, variants, envs_per_task, device, first_task, agents)
        if agents == spec.controlled_agents():
            return GymVectorGame(spec, variants, envs_per_task, device,
                                 horizon=spec.max_episode_steps, first_task=first_task)
        return ParallelVectorGame(spec, variants, envs_per_task, device, agents,
                                  first_task=first_task)
    if agents:
        raise ValueError(f"game {spec.id!r} is single-agent; it has no agents to control")
    if spec.make_batched is not None:
        return _native(spec, variants, envs_per_task, device, first_task)
    return GymVectorGame(spec, variants, envs_per_task, device, first_task=first_task)


def _native(spec: GameSpec, variants: Sequence[Variant], envs_per_task: int, device: Any,
            first_task: int, *agents: tuple[str, ...]) -> BatchedGame:
    """The native view, completed with ``agents`` and ``close()`` if a plugin left them out."""
    assert spec.make_batched is not None
    keywords: dict[str, Any] = {}
    if first_task:
        if "first_task" not in inspect.signature(spec.make_batched).parameters:
            raise GameadaptError(f"game {spec.id!r}: its make_batched takes no first_task, so a "
                                 f"slice of a meta-batch cannot replay its random streams")
        keywords["first_task"] = first_task
    game = spec.make_batched(variants, envs_per_task, device, *agents, **keywords)
    if not hasattr(game, "agents"):
        game.agents = agents[0] if agents else ()
    if not callable(getattr(game, "close", None)):
        setattr(game, "close", _nothing)  # noqa: B010 - completing a plugin's object
    return game


def _nothing() -> None:
    """``close()`` of a batched view that holds nothing to release."""
