"""Built-in plugin: ``pointnav``, the 2D navigation task of MAML (Finn et al., 2017).

Importing this module is cheap and never imports torch; the batched view is imported when
it is first made. It also registers the single view with gymnasium as
``gameadapt/PointNav-v0`` (``gymnasium.make("gameadapt/PointNav-v0", variant=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium
from gameadapt import hookimpl
from gameadapt.game import GameSpec, TaskLabel
from gameadapt.variants import Variant

from .dynamics import VARIANT_SPACE
from .env import PointNavEnv

if TYPE_CHECKING:
    from .batched import BatchedPointNav

GYM_ID = "gameadapt/PointNav-v0"

if GYM_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ID, entry_point="gameadapt.games.pointnav.env:PointNavEnv")


def make_env(variant: Variant | None = None, render_mode: str | None = None) -> PointNavEnv:
    """The single-instance view (numpy only)."""
    return PointNavEnv(variant, render_mode=render_mode)


def make_batched(variants: Sequence[Variant], envs_per_task: int, device: Any = "cpu",
                 first_task: int = 0) -> BatchedPointNav:
    """The batched torch view (imports torch); ``first_task``: global index of the first task."""
    from .batched import BatchedPointNav

    return BatchedPointNav(variants, envs_per_task, device, first_task)


def reference(env: Any, observation: Any, variant: Variant) -> Any:
    """The upper-bound policy: every step, the move that ends nearest the (hidden) goal.

    Full speed towards the goal on every axis still short of it, onto it once it is in reach,
    the variant's drift compensated (:func:`~.dynamics.nearest_action`); deterministic given
    the env's position.
    """
    return env.unwrapped.reference_action()


def goal_angle(variant: Variant) -> float:
    """The goal's direction from the start (the origin), in degrees."""
    level = variant["level"]
    return math.degrees(math.atan2(level["goal_y"], level["goal_x"]))


def _spec() -> GameSpec:
    probe = PointNavEnv()
    assert isinstance(probe.observation_space, gymnasium.spaces.Box)
    return GameSpec(
        id="pointnav",
        description="MAML's 2D navigation: move a point to an unseen goal in [-0.5, 0.5]^2 "
                    "from distance rewards; rules change speed, drift and horizon.",
        api="native",
        observation_space=probe.observation_space,
        action_space=probe.action_space,
        variant_space=VARIANT_SPACE,
        make_env=make_env,
        make_batched=make_batched,
        gym_id=GYM_ID,
        success="reached the goal",
        reference=reference,
        task_label=TaskLabel("goal angle (degrees)", goal_angle, "angle"),
    )


@hookimpl
def register_games(register: Callable[[GameSpec], None]) -> None:
    """Register the ``pointnav`` game."""
    register(_spec())
