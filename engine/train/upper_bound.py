"""The reference row of an evaluation: a game's scripted upper-bound policy, played.

A game may name a ``reference(env, observation, variant)`` policy that sees the hidden
variant (``GameSpec.reference``); :func:`reference_returns` plays it in the game's gymnasium
view and returns what it earns, an upper bound for the adapted policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..errors import GameadaptError
from ..game import GameSpec
from ..hashrandom import derive_seed
from ..variants import Variant


def reference_returns(spec: GameSpec, variants: Sequence[Variant], episodes: int, seed: int
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Returns ``[M, episodes]`` (float32) and successes (bool; None if the game defines no
    success) of the reference on each variant; episode ``i`` of variant ``m`` is reset with
    ``seed=derive_seed(seed, m * episodes + i)``."""
    if spec.reference is None:
        raise GameadaptError(f"game {spec.id!r} has no reference policy to compare with")
    returns = torch.zeros(len(variants), episodes, dtype=torch.float32)
    success = torch.zeros(len(variants), episodes, dtype=torch.bool)
    for m, variant in enumerate(variants):
        full = spec.variant_space.validate(variant)
        env = spec.make_env(full)
        try:
            for i in range(episodes):
                returns[m, i], success[m, i] = play_reference(
                    spec, env, full, derive_seed(seed, m * episodes + i))
        finally:
            env.close()
    return returns, (success if spec.success is not None else None)


def play_reference(spec: GameSpec, env: Any, variant: Variant, seed: int) -> tuple[float, bool]:
    """One episode of ``spec.reference`` in ``env``: its return and ``info["is_success"]`` at
    the end (episodes stop at ``spec.max_episode_steps`` too, where the game sets one)."""
    assert spec.reference is not None
    observation, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        observation, reward, terminated, truncated, info = env.step(
            spec.reference(env, observation, variant))
        total, steps = total + float(reward), steps + 1
        if terminated or truncated or steps == spec.max_episode_steps:
            return total, bool(info.get("is_success", False))
