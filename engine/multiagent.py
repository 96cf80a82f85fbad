"""Multi-agent (PettingZoo) games seen by a single-agent learner.

A multi-agent game is a PettingZoo ``ParallelEnv``. The engine's policy drives the
*controlled* agents: the game's ``learner``, or with parameter sharing every agent (one
policy, one set of weights, each agent acting on its own observation). Every other agent
acts by the game's ``opponent(env, agent, observation, variant)`` function: its scripted
behaviour, chosen by the variant's rules (e.g. an opponent style).

- :class:`ControlledAgentEnv` is the single-agent ``gymnasium.Env`` view of one agent (the
  learner): what ``check_env``, previews, export checks and ``gameadapt play`` use.
- :func:`check_shareable` says whether one policy can drive several agents.

(The Python-loop batched view of parallel envs, one row per controlled agent, is
:class:`gameadapt.learn.vector.ParallelVectorGame`.) Numpy only: importing this module
never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gymnasium

from .errors import GameadaptError
from .variants import Variant

if TYPE_CHECKING:
    from .game import GameSpec, Opponent


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
