"""Multi-agent (PettingZoo) games seen by a single-agent learner.

A multi-agent game is a PettingZoo ``ParallelEnv``. The engine's policy drives the
*controlled* agents: the game's ``learner``, or with parameter sharing every agent (one
policy, one set of weights, each agent acting on its own observation). Every other agent
acts by the game's ``opponent(env, agent, observation, variant)`` function: its scripted
behaviour, chosen by the variant's rules (e.g. an opponent style).

- :class:`ControlledAgentEnv` is the single-agent ``gymnasium.Env`` view of one agent (the
  learner): what ``check_env``, previews, export checks and ``gameadapt play`` use.
- :class:`ParallelVectorGame` steps ``tasks x envs`` parallel envs in a Python loop behind the
  :class:`~gameadapt.game.BatchedGame` protocol, one row per controlled agent of each env
  (the layout SuperSuit uses for parameter sharing). The engine uses it when the policy
  drives several agents of a game without a native batched view; with one controlled agent
  the learner's view goes through ``gymnasium.vector`` instead.

Numpy only: importing this module never imports torch (the vector game converts lazily).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from .errors import GameadaptError
from .hashrandom import stream_key
from .variants import Variant

if TYPE_CHECKING:
    import torch

    from .game import BatchedStep, GameSpec, Opponent


class ControlledAgentEnv(gymnasium.Env):
    """One agent's view of a ``ParallelEnv``; the other agents act by ``opponent``.

    ``reset(seed, options)`` resets the parallel env with the same arguments; ``step(action)``
    steps it with ``action`` for ``agent`` and ``opponent(env, other, its_observation,
    variant)`` for every other live agent, and returns ``agent``'s observation, reward and
    flags. The episode ends when ``agent``'s does.
    """

    def __init__(self, parallel_env: Any, agent: str, opponent: Opponent,
                 variant: Variant) -> None:
        if agent not in parallel_env.possible_agents:
            raise ValueError(f"{agent!r} is not an agent of this game "
                             f"({list(parallel_env.possible_agents)})")
        self.parallel_env = parallel_env
        self.agent = agent
        self.opponent = opponent
        self.variant = variant
        self.observation_space = parallel_env.observation_space(agent)
        self.action_space = parallel_env.action_space(agent)
        self.metadata = dict(getattr(parallel_env, "metadata", {}))
        self.render_mode = getattr(parallel_env, "render_mode", None)
        self._observations: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        observations, infos = self.parallel_env.reset(seed=seed, options=options)
        self._observations = dict(observations)
        return observations[self.agent], dict(infos.get(self.agent, {}))

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self.agent not in self.parallel_env.agents:
            raise RuntimeError("the episode has ended; call reset()")
        actions = {other: self.opponent(self.parallel_env, other, self._observations[other],
                                        self.variant)
                   for other in self.parallel_env.agents if other != self.agent}
        actions[self.agent] = action
        observations, rewards, terminations, truncations, infos = self.parallel_env.step(actions)
        self._observations.update(observations)
        return (observations[self.agent], float(rewards[self.agent]),
                bool(terminations[self.agent]), bool(truncations[self.agent]),
                dict(infos.get(self.agent, {})))

    def render(self) -> Any:
        return self.parallel_env.render()

    def close(self) -> None:
        self.parallel_env.close()


class ParallelVectorGame:
    """``len(variants) x envs_per_task`` parallel envs behind the BatchedGame protocol.

    Rows are the controlled ``agents`` of every env (``envs_per_task`` counts rows: envs
    times agents); see :class:`~gameadapt.game.BatchedGame`. Env ``i = m * E + e`` is reset
    with the seed of stream ``i``. A row ends when its agent terminates or is truncated, or
    after ``horizon`` steps; ended rows are frozen, and an env is no longer stepped once all
    its controlled agents have ended.
    """

    def __init__(self, spec: GameSpec, variants: Sequence[Variant], envs_per_task: int,
                 device: Any = "cpu", agents: Sequence[str] | None = None,
                 horizon: int | None = None) -> None:
        import torch

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
        self.device = torch.device(device)
        self._variant_of = [v for v in self.variants for _ in range(envs_per_task)]
        self._observations: list[dict[str, Any]] = []
        self._rows: np.ndarray | None = None
        self._done = np.zeros((len(self.envs), len(self.agents)), dtype=bool)
        self._steps = 0

    def reset(self, seed: int) -> torch.Tensor:
        """Reset env ``i`` with the seed of stream ``i`` under ``seed``."""
        self._observations = []
        for index, env in enumerate(self.envs):
            observations, _ = env.reset(seed=stream_key(seed, index) & 0x7FFF_FFFF_FFFF_FFFF)
            self._observations.append(dict(observations))
        self._rows = np.stack([np.stack([np.asarray(obs[a], dtype=np.float32)
                                         for a in self.agents]) for obs in self._observations])
        self._done[:] = False
        self._steps = 0
        return self._to_torch(self._rows)

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Step every env that has a live controlled agent; ended rows are frozen."""
        from .game import BatchedStep

        if self._rows is None:
            raise RuntimeError("call reset() before step()")
        chosen = action.detach().cpu().numpy().reshape(len(self.envs), len(self.agents),
                                                       *action.shape[2:])
        self._steps += 1
        shape = self._done.shape
        reward = np.zeros(shape, dtype=np.float32)
        terminated, truncated = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        for index, env in enumerate(self.envs):
            if self._done[index].all():
                continue
            actions = self._env_actions(index, env, chosen[index])
            observations, rewards, terms, truncs, _ = env.step(actions)
            self._observations[index].update(observations)
            for column, agent in enumerate(self.agents):
                if self._done[index, column]:
                    continue
                self._rows[index, column] = np.asarray(observations.get(
                    agent, self._rows[index, column]), dtype=np.float32)
                reward[index, column] = float(rewards.get(agent, 0.0))
                terminated[index, column] = bool(terms.get(agent, agent not in env.agents))
                truncated[index, column] = bool(truncs.get(agent, False))
        truncated = (truncated | (self._steps >= self.horizon)) & ~terminated & ~self._done
        terminated &= ~self._done
        self._done |= terminated | truncated
        return BatchedStep(self._to_torch(self._rows), self._to_torch(reward),
                           self._to_torch(terminated), self._to_torch(truncated))

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
        import torch

        return torch.as_tensor(array, device=self.device).reshape(
            self.num_tasks, self.envs_per_task, *array.shape[2:])


def check_shareable(spec: GameSpec, parallel_env: Any, agents: Sequence[str]) -> None:
    """Raise a one-line error unless one policy can drive all of ``agents``."""
    for agent in agents:
        if agent not in spec.agents:
            raise GameadaptError(f"game {spec.id!r} has no agent {agent!r} "
                                 f"(agents: {', '.join(spec.agents)})")
        for what, space, expected in (
                ("observation", parallel_env.observation_space(agent), spec.observation_space),
                ("action", parallel_env.action_space(agent), spec.action_space)):
            if space != expected:
                raise GameadaptError(f"game {spec.id!r}: agent {agent!r} has another {what} "
                                     f"space than the learner, so one policy cannot drive it")
