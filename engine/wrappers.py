"""Turn any registered gymnasium environment into a gameadapt game (no torch imported).

Variant parameters reach the environment in two ways: as keyword arguments of
``gymnasium.make`` (``kwargs``), or as attributes set on ``env.unwrapped`` after it is built
(``attributes``); ``after_apply`` can then recompute derived attributes. Example::

    space = VariantSpace([Param("gravity", "rules", FloatRange(1.0, 20.0), 10.0, "g")])
    spec = gymnasium_game("pendulum", "Pendulum-v1", space, description="Swing up.",
                          kwargs={"rules.gravity": "g"})
    env = spec.make_env({"rules": {"gravity": 3.7}})

Parameter names may be written ``part.name`` or just ``name``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium

from .game import GameSpec
from .variants import Param, Variant, VariantSpace

AfterApply = Callable[[gymnasium.Env, Variant], None]


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
    by_kwarg = [(_param(variant_space, key), kwarg) for key, kwarg in kwargs.items()]
    by_attribute = [(_param(variant_space, key), attr) for key, attr in attributes.items()]
    fixed = dict(make_kwargs)

    def make_env(variant: Mapping[str, Any] | None = None,
                 render_mode: str | None = None) -> gymnasium.Env:
        full = variant_space.validate(variant or {})
        env_kwargs = dict(fixed)
        env_kwargs.update({kwarg: full[p.part][p.name] for p, kwarg in by_kwarg})
        if render_mode is not None:
            env_kwargs["render_mode"] = render_mode
        env = gymnasium.make(env_id, **env_kwargs)
        for param, attr in by_attribute:
            setattr(env.unwrapped, attr, full[param.part][param.name])
        if after_apply is not None:
            after_apply(env, full)
        return env

    probe = make_env()
    observation_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    return GameSpec(id=id, description=description, api="gymnasium",
                    observation_space=observation_space, action_space=action_space,
                    variant_space=variant_space, make_env=make_env, make_batched=None)


def _param(space: VariantSpace, key: str) -> Param:
    """The parameter named ``part.name`` or ``name``; ValueError if there is none."""
    part, dot, name = key.rpartition(".")
    param = space.by_name.get(name)
    if param is None or (dot and part != param.part):
        known = ", ".join(f"{p.part}.{p.name}" for p in space.params)
        raise ValueError(f"unknown variant parameter {key!r} (known: {known})")
    return param
