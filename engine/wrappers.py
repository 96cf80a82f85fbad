"""Turn any gymnasium environment or PettingZoo ``ParallelEnv`` into a gameadapt game.

Variant parameters reach the environment in two ways: as keyword arguments of its
constructor (``gymnasium.make`` or the ParallelEnv factory; ``kwargs``), or as attributes
set on ``env.unwrapped`` after it is built (``attributes``); ``after_apply`` can then
recompute derived attributes. Example::

    space = VariantSpace([Param("gravity", "rules", FloatRange(1.0, 20.0), 10.0, "g")])
    spec = gymnasium_game("pendulum", "Pendulum-v1", space, description="Swing up.",
                          kwargs={"rules.gravity": "g"})
    env = spec.make_env({"rules": {"gravity": 3.7}})

Parameter names may be written ``part.name`` or just ``name``. Wrapped games have no
batched tensor view: the engine steps them in a Python loop (``gymnasium.vector`` or
:class:`~gameadapt.multiagent.ParallelVectorGame`). No torch is imported here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import gymnasium

from .game import GameSpec, Opponent
from .multiagent import ControlledAgentEnv
from .variants import Param, Variant, VariantSpace

AfterApply = Callable[[Any, Variant], None]  # (env, variant) -> None


def gymnasium_game(id: str, env_id: str, variant_space: VariantSpace, *, description: str,
                   kwargs: Mapping[str, str] = {}, attributes: Mapping[str, str] = {},
                   after_apply: AfterApply | None = None,
                   make_kwargs: Mapping[str, Any] = {}) -> GameSpec:
    """A ``gymnasium``-api :class:`GameSpec` over the registered environment ``env_id``.

    ``kwargs`` maps a variant parameter to a ``gymnasium.make`` keyword, ``attributes`` maps
    one to an attribute of ``env.unwrapped``; ``after_apply(env, variant)`` runs after the
    attributes are set; ``make_kwargs`` are fixed keywords for every ``gymnasium.make``.
    ``make_env(variant=None, render_mode=None)`` validates the (partial) variant, raising
    :class:`~gameadapt.errors.VariantError`, and returns the made env. The spaces are read
    once, from an env made with the default variant.
    """
    mapping = VariantMapping(variant_space, kwargs, attributes, after_apply, make_kwargs)

    def make_env(variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> gymnasium.Env:
        return mapping.build(partial(gymnasium.make, env_id), variant, render_mode)

    probe = make_env()
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    return GameSpec(id=id, description=description, api="gymnasium",
                    observation_space=observation_space, action_space=action_space,
                    variant_space=variant_space, make_env=make_env, make_batched=None)


def pettingzoo_game(id: str, factory: Callable[..., Any], variant_space: VariantSpace, *,
                    description: str, learner: str, opponent: Opponent,
                    max_episode_steps: int, kwargs: Mapping[str, str] = {},
                    attributes: Mapping[str, str] = {}, after_apply: AfterApply | None = None,
                    factory_kwargs: Mapping[str, Any] = {}) -> GameSpec:
    """A ``pettingzoo``-api :class:`GameSpec` over a ``ParallelEnv`` factory.

    ``factory(**keywords)`` builds the parallel env; ``kwargs``, ``attributes``,
    ``after_apply`` and ``factory_kwargs`` map the variant as in :func:`gymnasium_game`.
    The policy drives ``learner`` (or, with parameter sharing, every agent: they must then
    have the learner's spaces); the other agents act by ``opponent(env, agent, observation,
    variant)``, which is where a variant's opponent style comes in. ``max_episode_steps``
    bounds the episodes the engine plays. ``make_env`` is the learner's gymnasium view
    (:class:`~gameadapt.multiagent.ControlledAgentEnv`).
    """
    mapping = VariantMapping(variant_space, kwargs, attributes, after_apply, factory_kwargs)

    def make_parallel_env(variant: Mapping[str, Any] | None = None,
                          render_mode: str | None = None) -> Any:
        return mapping.build(factory, variant, render_mode)

    def make_env(variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> gymnasium.Env:
        full = variant_space.validate(variant or {})
        return ControlledAgentEnv(make_parallel_env(full, render_mode), learner, opponent, full)

    probe = make_parallel_env()
    agents = tuple(probe.possible_agents)
    if learner not in agents:
        raise ValueError(f"learner {learner!r} is not an agent of {id!r} ({list(agents)})")
    observation_space, action_space = probe.observation_space(learner), probe.action_space(learner)
    probe.close()
    return GameSpec(id=id, description=description, api="pettingzoo",
                    observation_space=observation_space, action_space=action_space,
                    variant_space=variant_space, make_env=make_env, make_batched=None,
                    agents=agents, learner=learner, make_parallel_env=make_parallel_env,
                    opponent=opponent, max_episode_steps=max_episode_steps)


class VariantMapping:
    """How a validated variant becomes constructor keywords and attributes of an env."""

    def __init__(self, space: VariantSpace, kwargs: Mapping[str, str],
                 attributes: Mapping[str, str], after_apply: AfterApply | None,
                 fixed: Mapping[str, Any]) -> None:
        self.space = space
        self.by_kwarg = [(_param(space, key), kwarg) for key, kwarg in kwargs.items()]
        self.by_attribute = [(_param(space, key), attr) for key, attr in attributes.items()]
        self.after_apply = after_apply
        self.fixed = dict(fixed)

    def build(self, constructor: Callable[..., Any], variant: Mapping[str, Any] | None,
              render_mode: str | None) -> Any:
        """Validate ``variant`` (VariantError), construct the env and set its attributes."""
        full = self.space.validate(variant or {})
        keywords = dict(self.fixed)
        keywords.update({kwarg: full[p.part][p.name] for p, kwarg in self.by_kwarg})
        if render_mode is not None:
            keywords["render_mode"] = render_mode
        env = constructor(**keywords)
        target = getattr(env, "unwrapped", env)
        for param, attr in self.by_attribute:
            setattr(target, attr, full[param.part][param.name])
        if self.after_apply is not None:
            self.after_apply(env, full)
        return env


def _param(space: VariantSpace, key: str) -> Param:
    """The parameter named ``part.name`` or ``name``; ValueError if there is none."""
    part, dot, name = key.rpartition(".")
    param = space.by_name.get(name)
    if param is None or (dot and part != param.part):
        known = ", ".join(f"{p.part}.{p.name}" for p in space.params)
        raise ValueError(f"unknown variant parameter {key!r} (known: {known})")
    return param
