"""MountainCar: gymnasium's ``MountainCar-v0`` as a gameadapt game, in a few lines.

``gymnasium_game`` does the work: ``level.max_steps`` becomes the ``max_episode_steps``
keyword of ``gymnasium.make``, and the rules ``force`` and ``gravity`` are set as attributes
of the made ``MountainCarEnv`` (which reads them on every step). The held-out split uses a
weaker engine and stronger gravity than training.
"""

from __future__ import annotations

from gameadapt.variants import FloatRange, IntRange, Param, VariantSpace
from gameadapt.wrappers import gymnasium_game

VARIANT_SPACE = VariantSpace([
    Param("max_steps", "level", IntRange(100, 1000), 200, "time limit of an episode, in steps"),
    Param("force", "rules", FloatRange(0.0005, 0.002), 0.001, "engine force per step",
          train=FloatRange(0.0009, 0.0015), test=FloatRange(0.0007, 0.0009)),
    Param("gravity", "rules", FloatRange(0.001, 0.004), 0.0025, "gravity per step",
          train=FloatRange(0.002, 0.0028), test=FloatRange(0.0028, 0.0032)),
])

SPEC = gymnasium_game(
    "mountaincar", "MountainCar-v0", VARIANT_SPACE,
    description="gymnasium's MountainCar-v0 with variable engine force and gravity; held-out "
                "variants have a weaker engine and stronger gravity than training.",
    kwargs={"level.max_steps": "max_episode_steps"},
    attributes={"rules.force": "force", "rules.gravity": "gravity"},
)
