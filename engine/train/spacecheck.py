"""Check a game plugin's declared spaces against what its views really return.

Training and evaluation trust ``GameSpec.observation_space`` and ``action_space``: they size
the policy and shape every tensor. A plugin whose env returns something else used to fail
deep inside torch or gymnasium with a traceback that did not name it. :func:`check_game_views`
runs one reset and one step of the single-instance view on the first variant a job uses (and
of the native batched view, for its shapes) and raises one :class:`PluginError` line naming
the plugin, the game and both spaces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
import torch

from ..errors import PluginError
from ..game import GameSpec, flat_size, space_to_json
from ..host.registry import describe_failure, get_registry
from ..learn.vector import make_batched_game
from ..variants import Variant


def check_game_views(spec: GameSpec, variant: Variant, device: Any = "cpu",
                     agents: Sequence[str] = ()) -> None:
    """Raise :class:`PluginError` unless ``spec``'s views return what its spaces declare."""
    where = _where(spec)
    observations = _observation_box(spec, where)
    _check_action_space(spec, where)
    env = _call(where, "make_env", lambda: spec.make_env(variant))
    try:
        for what, declared, actual in (("observation", spec.observation_space,
                                        env.observation_space),
                                       ("action", spec.action_space, env.action_space)):
            if not same_space(declared, actual):
                raise PluginError(f"{where} declares the {what} space {describe_space(declared)}"
                                  f" but its env has {describe_space(actual)}")
        observation, _ = _call(where, "reset()", lambda: env.reset(seed=0))
        _check_value(where, "reset()", observations, observation)
        action = fixed_action(spec.action_space)
        observation, *_ = _call(where, "step()", lambda: env.step(action))
        _check_value(where, "step()", observations, observation)
    finally:
        env.close()
    if spec.make_batched is not None:
        _check_batched(spec, variant, device, tuple(agents), where, observations.shape[0])


def _where(spec: GameSpec) -> str:
    provider = get_registry().provider("game", spec.id)
    owner = f"plugin {provider.plugin!r} ({provider.distribution})" if provider else "an unregistered plugin"
    return f"game {spec.id!r} of {owner}"


def _observation_box(spec: GameSpec, where: str) -> gymnasium.spaces.Box:
    """The declared observation space, if policies can take it (a flat float Box)."""
    obs = spec.observation_space
    if not (isinstance(obs, gymnasium.spaces.Box) and len(obs.shape) == 1
            and np.issubdtype(obs.dtype, np.floating)):
        raise PluginError(f"{where} declares the observation space {describe_space(obs)}; "
                          f"gameadapt policies take a flat float Box of shape (n,) (flatten "
                          f"or encode images and dicts in the plugin)")
    return obs


def _check_action_space(spec: GameSpec, where: str) -> None:
    act = spec.action_space
    if not (isinstance(act, gymnasium.spaces.Discrete)
            or (isinstance(act, gymnasium.spaces.Box) and len(act.shape) == 1)):
        raise PluginError(f"{where} declares the action space {describe_space(act)}; gameadapt "
                          f"policies act in a Discrete space or a flat Box of shape (n,)")


def fixed_action(space: gymnasium.spaces.Space) -> Any:
    """A valid action that draws no randomness (the spec's space is shared)."""
    if isinstance(space, gymnasium.spaces.Box):
        return np.clip(np.zeros(space.shape, space.dtype), space.low, space.high)
    assert isinstance(space, gymnasium.spaces.Discrete)  # (checked before)
    return int(space.start)


def _check_value(where: str, call: str, space: gymnasium.spaces.Box, value: Any) -> None:
    array = np.asarray(value)
    if array.shape != space.shape or not np.can_cast(array.dtype, space.dtype) \
            or not space.contains(array):
        raise PluginError(f"{where} declares the observation space {describe_space(space)} "
                          f"but {call} returned {describe_array(array)}")


def _check_batched(spec: GameSpec, variant: Variant, device: Any, agents: tuple[str, ...],
                   where: str, obs_dim: int) -> None:
    rows = len(agents) if spec.is_multi_agent else 1
    game = _call(where, "make_batched", lambda: make_batched_game(spec, [variant], 1, device,
                                                                  agents or None))
    try:
        observation = _call(where, "the batched reset()", lambda: game.reset(0))
        _check_tensor(where, "the batched reset()", "observation", observation,
                      (1, rows, obs_dim), torch.float32)
        if spec.is_discrete:
            action = torch.zeros((1, rows), dtype=torch.long, device=device)
        else:
            action = torch.zeros((1, rows, flat_size(spec.action_space)), device=device)
        result = _call(where, "the batched step()", lambda: game.step(action))
        _check_tensor(where, "the batched step()", "observation", result.observation,
                      (1, rows, obs_dim), torch.float32)
        for name, dtype in (("reward", torch.float32), ("terminated", torch.bool),
                            ("truncated", torch.bool)):
            _check_tensor(where, "the batched step()", name, getattr(result, name), (1, rows),
                          dtype)
    finally:
        game.close()


def _check_tensor(where: str, call: str, name: str, value: Any, shape: tuple[int, ...],
                  dtype: Any) -> None:
    got_shape = tuple(getattr(value, "shape", ()))
    got_dtype = getattr(value, "dtype", type(value).__name__)
    if got_shape != shape or got_dtype != dtype:
        raise PluginError(f"{where}: {call} returned {name} of shape {got_shape} and dtype "
                          f"{got_dtype}; the batched view must return shape {shape} and "
                          f"{dtype} for 1 task x 1 env (see BatchedGame)")


def _call(where: str, what: str, function: Callable[[], Any]) -> Any:
    try:
        return function()
    except PluginError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raises, name the plugin
        raise PluginError(f"{where}: {what} raised {describe_failure(exc)}") from exc


def same_space(a: gymnasium.spaces.Space, b: gymnasium.spaces.Space) -> bool:
    """Same type, shape, dtype and bounds (or number of actions)."""
    return space_to_json(a) == space_to_json(b) and type(a) is type(b)


def describe_space(space: gymnasium.spaces.Space) -> str:
    """A short text: ``Box(-1.0..1.0, (9,), float32)`` or ``Discrete(4)``."""
    if isinstance(space, gymnasium.spaces.Box):
        return (f"Box({_range(space.low, space.high)}, {tuple(space.shape)}, "
                f"{space.dtype})")
    if isinstance(space, gymnasium.spaces.Discrete):
        return f"Discrete({int(space.n)})" if int(space.start) == 0 else \
            f"Discrete({int(space.n)}, start={int(space.start)})"
    return repr(space)


def describe_array(array: np.ndarray) -> str:
    """A short text: shape, dtype and value range of an array."""
    values = array.astype(np.float64, copy=False) if array.size and \
        np.issubdtype(array.dtype, np.number) else None
    value_range = f", values {_range(values, values)}" if values is not None else ""
    return f"an array of shape {tuple(array.shape)} and dtype {array.dtype}{value_range}"


def _range(low: np.ndarray, high: np.ndarray) -> str:
    return f"{float(np.min(low)):.4g}..{float(np.max(high)):.4g}"
