"""Built-in plugin: ``cartpole``, gymnasium's ``CartPole-v1`` with variable physics.

The rules change gymnasium's own physics attributes (gravity, masses, half pole length,
push force); the held-out split uses heavier gravity, longer poles, heavier parts and
stronger pushes than training. ``level.max_steps`` sets the time limit. The single view is
also registered with gymnasium as ``gameadapt/CartPole-v0``. Success is CartPole's own goal,
keeping the pole up until the time limit: ``info["is_success"]`` on the last step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
from gameadapt import hookimpl
from gameadapt.game import GameSpec
from gameadapt.variants import FloatRange, IntRange, Param, Variant, VariantSpace
from gameadapt.wrappers import gymnasium_game

GYM_ID = "gameadapt/CartPole-v0"
PHYSICS = ("gravity", "masscart", "masspole", "length", "force_mag")


def _rule(name: str, low: float, high: float, default: float, train: tuple[float, float],
          test: tuple[float, float], what: str) -> Param:
    return Param(name, "rules", FloatRange(low, high), default,
                 f"{what} (default {default:g}; train {train[0]:g}..{train[1]:g}, "
                 f"held out {test[0]:g}..{test[1]:g})",
                 train=FloatRange(*train), test=FloatRange(*test))


VARIANT_SPACE = VariantSpace([
    Param("max_steps", "level", IntRange(50, 500), 500,
          "time limit of an episode, in steps (gymnasium's max_episode_steps)"),
    _rule("gravity", 5.0, 15.0, 9.8, (8.0, 11.0), (11.0, 13.0), "gravity, m/s^2"),
    _rule("masscart", 0.5, 2.0, 1.0, (0.5, 1.2), (1.2, 2.0), "mass of the cart, kg"),
    _rule("masspole", 0.05, 0.5, 0.1, (0.05, 0.2), (0.2, 0.35), "mass of the pole, kg"),
    _rule("length", 0.25, 1.0, 0.5, (0.3, 0.6), (0.6, 0.9), "half the pole's length, m"),
    _rule("force_mag", 5.0, 15.0, 10.0, (8.0, 12.0), (12.0, 15.0), "push force, N"),
])


def _update_derived(env: gymnasium.Env, variant: Variant) -> None:
    """Recompute the quantities CartPoleEnv derives from its masses and length."""
    cartpole: Any = env.unwrapped  # gymnasium's CartPoleEnv
    cartpole.total_mass = cartpole.masspole + cartpole.masscart
    cartpole.polemass_length = cartpole.masspole * cartpole.length


class BalancedUntilTimeLimit(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Adds ``info["is_success"]``: True on the step the time limit ends an episode whose pole
    is still up (False on every other step)."""

    def __init__(self, env: gymnasium.Env) -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        success = bool(truncated) and not terminated
        return observation, reward, terminated, truncated, {**info, "is_success": success}


_GAME = gymnasium_game(
    "cartpole", "CartPole-v1", VARIANT_SPACE,
    description="gymnasium's CartPole-v1 with variable gravity, masses, pole length and "
                "push force; held-out physics lie outside the training ranges.",
    kwargs={"level.max_steps": "max_episode_steps"},
    attributes={f"rules.{name}": name for name in PHYSICS},
    after_apply=_update_derived,
)


def _balanced_env(variant: Mapping[str, Any] | None = None,
                  render_mode: str | None = None) -> gymnasium.Env:
    """The wrapped game's env, with ``info["is_success"]``."""
    return BalancedUntilTimeLimit(_GAME.make_env(variant, render_mode=render_mode))


SPEC = dataclasses.replace(_GAME, gym_id=GYM_ID, make_env=_balanced_env,
                           success="balanced until the time limit")


def make_env(variant: Mapping[str, Any] | None = None,
             render_mode: str | None = None) -> gymnasium.Env:
    """The single view (a made ``CartPole-v1`` with the variant applied); gymnasium entry point."""
    return SPEC.make_env(variant, render_mode=render_mode)


if GYM_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ID, entry_point="gameadapt.games.cartpole:make_env")


@hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register the ``cartpole`` game."""
    register(SPEC)
