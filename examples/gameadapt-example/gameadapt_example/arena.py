"""Arena: a PettingZoo ``ParallelEnv`` factory turned into a multi-agent game, in a few lines.

``pettingzoo_game`` does the work, exactly as for any third-party PettingZoo environment:
the variant's ``level.size``, ``rules.opponent`` and ``rules.defender_speed`` become keyword
arguments of the factory, the policy drives the ``attacker``, and the ``defender`` acts by
``opponent(env, agent, observation, variant)``, here the style the environment scripts
itself. The factory below builds the built-in duel's ``ParallelEnv``; any
``parallel_env(**kwargs)`` factory works the same way. A wrapped game has no batched tensor
view, so the engine steps it in a Python loop (slower than the native ``duel``, same
algorithms).
"""

from __future__ import annotations

from typing import Any

from gameadapt.games.duel import DuelParallelEnv
from gameadapt.variants import Choice, FloatRange, IntRange, Param, Variant, VariantSpace
from gameadapt.wrappers import pettingzoo_game

STYLES = ("aggressive", "defensive_west", "defensive_east", "patrolling", "mirroring")


def arena_env(size: int = 9, opponent: str = "aggressive", defender_speed: float = 1.0,
              render_mode: str | None = None) -> DuelParallelEnv:
    """A ParallelEnv factory with keyword arguments, like PettingZoo's ``parallel_env``."""
    return DuelParallelEnv({"level": {"size": size},
                            "rules": {"opponent": opponent, "defender_speed": defender_speed}},
                           render_mode=render_mode)


def scripted_defender(env: DuelParallelEnv, agent: str, observation: Any,
                      variant: Variant) -> int:
    """The defender plays the style the environment was built with."""
    return env.scripted_action(agent)


VARIANT_SPACE = VariantSpace([
    Param("size", "level", IntRange(7, 11), 9, "side of the square arena, in cells"),
    Param("opponent", "rules", Choice(STYLES), "aggressive", "the defender's style",
          train=Choice(STYLES[:3]), test=Choice(STYLES[3:])),
    Param("defender_speed", "rules", FloatRange(0.2, 1.0), 1.0,
          "probability that the defender moves on a step"),
])

SPEC = pettingzoo_game(
    "arena", arena_env, VARIANT_SPACE,
    description="the duel's ParallelEnv wrapped like any third-party PettingZoo game: the "
                "attacker learns, the defender plays a style; held-out styles in the test split.",
    learner="attacker", opponent=scripted_defender, max_episode_steps=30,
    kwargs={"level.size": "size", "rules.opponent": "opponent",
            "rules.defender_speed": "defender_speed"},
)
