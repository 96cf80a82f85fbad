"""The batched torch view of Duel: ``[tasks, envs x controlled agents]`` in one step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from gameadapt.batched import batch_stream_keys, checked_actions, keep_ended
from gameadapt.game import BatchedStep

from . import dynamics
from .dynamics import AGENTS, ATTACKER, DEFENDER, LEARNER, VARIANT_SPACE


def agent_indices(agents: Sequence[str]) -> tuple[int, ...]:
    """Indices into AGENTS of the controlled ``agents``; ValueError unless a valid subset.

    ``agents`` must be non-empty, without repeats, drawn from AGENTS and include the
    attacker (only the defender has a scripted behaviour to fall back on).
    """
    agents = tuple(agents)
    if not agents or len(set(agents)) != len(agents) or not set(agents) <= set(AGENTS):
        raise ValueError(f"agents must be distinct names from {AGENTS}, got {agents!r}")
    if LEARNER not in agents:
        raise ValueError(f"agents must include {LEARNER!r} (it has no scripted policy)")
    return tuple(AGENTS.index(agent) for agent in agents)


class BatchedDuel:
    """``len(variants)`` Duel tasks x ``envs`` envs, stepped as tensors on ``device``.

    Follows the :class:`gameadapt.game.BatchedGame` protocol with one row per *controlled
    agent*: with ``C = len(agents)``, row ``e * C + c`` of a task is agent ``agents[c]`` of
    env ``e``, so observations are ``[M, E * C, 15]`` and actions, rewards and flags
    ``[M, E * C]``. The engine treats each row as an env, hence ``envs_per_task`` is
    ``E * C`` and the number of arenas per task is ``envs``. A defender not in ``agents``
    plays the variant's scripted style. Env ``(m, e)`` uses the stream
    ``stream_key(seed, (first_task + m) * E + e)``; envs whose episode ended are frozen until :meth:`reset`
    (all rows of an env end together). A row's ``success`` is its agent's win: a capture for
    the attacker, a tag for the defender.
    """

    def __init__(self, variants: Sequence[Mapping[str, Any]], envs_per_task: int, device: Any,
                 agents: Sequence[str] = (LEARNER,), first_task: int = 0) -> None:
        if not variants:
            raise ValueError("BatchedDuel needs at least one variant")
        if envs_per_task < 1:
            raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
        self._rows = agent_indices(agents)
        self.agents = tuple(agents)
        self.variants = [VARIANT_SPACE.validate(v) for v in variants]
        self.num_tasks = len(self.variants)
        self.envs = envs_per_task
        self.envs_per_task = envs_per_task * len(self.agents)
        self.first_task = first_task
        self.device = torch.device(device)
        tables = dynamics.build_params(self.variants)
        self.horizon = int(tables.time_limit.max())
        params = dynamics.Params(*(torch.as_tensor(t, device=self.device) for t in tables))
        self.params = params._replace(task=params.task[:, None])  # [M, 1]: broadcasts over envs
        self._index = torch.tensor(self._rows, dtype=torch.int64, device=self.device)
        self._state: dynamics.State | None = None
        self._done: torch.Tensor | None = None

    def reset(self, seed: int) -> torch.Tensor:
        """Start a new episode in every env; return observations ``[M, E * C, 15]``."""
        key = batch_stream_keys(seed, self.num_tasks, self.envs, self.device, self.first_task)
        self._state = dynamics.initial_state(torch, self.params, key)
        self._done = torch.zeros_like(key, dtype=torch.bool)
        return self._observe()

    def close(self) -> None:
        """Nothing to release (the protocol's ``close``)."""

    def step(self, action: torch.Tensor) -> BatchedStep:
        """Apply ``[M, E * C]`` long actions (ignored for ended envs); return the batch step."""
        if self._state is None or self._done is None:
            raise RuntimeError("call reset() before step()")
        action = checked_actions(action, (self.num_tasks, self.envs_per_task), self.device)
        alive = ~self._done
        attacker, defender = self._actions(action.reshape(self.num_tasks, self.envs, -1))
        attacker, defender = torch.where(alive, attacker, 0), torch.where(alive, defender, 0)
        new, *rewards, terminated, truncated = dynamics.step(
            torch, self.params, self._state, attacker, defender)
        self._state = keep_ended(alive, new, self._state)
        reward = torch.where(alive[..., None], torch.stack(rewards, -1), 0.0)
        terminated, truncated = terminated & alive, truncated & alive
        self._done = self._done | terminated | truncated
        success = torch.stack(dynamics.outcome(self.params, self._state, terminated), -1)
        return BatchedStep(self._observe(), self._rows_of(reward),
                           self._rows_of(terminated[..., None].expand_as(reward)),
                           self._rows_of(truncated[..., None].expand_as(reward)),
                           self._rows_of(success))

    def _actions(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attacker and defender actions ``[M, E]`` from the controlled rows ``[M, E, C]``."""
        attacker = action[..., self._rows.index(ATTACKER)]
        if DEFENDER in self._rows:
            return attacker, action[..., self._rows.index(DEFENDER)]
        assert self._state is not None
        return attacker, dynamics.scripted_defender_action(torch, self.params, self._state)

    def _rows_of(self, per_agent: torch.Tensor) -> torch.Tensor:
        """``[M, E, 2, ...]`` for both agents -> ``[M, E * C, ...]`` for the controlled ones."""
        rows = per_agent.index_select(2, self._index)
        return rows.reshape(self.num_tasks, self.envs_per_task, *rows.shape[3:])

    def _observe(self) -> torch.Tensor:
        assert self._state is not None
        return self._rows_of(dynamics.observe(torch, self.params, self._state))
