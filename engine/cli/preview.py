"""Random play of one variant, rendered as text (``gameadapt games play``)."""

from __future__ import annotations

from collections.abc import Callable

from ..game import GameSpec, as_text, frame
from ..variants import Variant


def play_random(spec: GameSpec, variant: Variant, *, seed: int, steps: int,
                echo: Callable[[str], None] = print) -> float:
    """Play up to ``steps`` seeded random actions, echo each frame as text; return the return."""
    probe = spec.make_env(variant)
    text_mode = "ansi" in probe.metadata.get("render_modes", [])
    probe.close()
    env = spec.make_env(variant, render_mode="ansi" if text_mode else None)
    try:
        observation, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        echo(f"{spec.id} variant: {variant}")
        echo(frame(env, observation, text_mode))
        total = 0.0
        for step in range(1, steps + 1):
            action = env.action_space.sample()
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            echo(f"step {step}: action {as_text(action)}  reward {float(reward):+.3f}  "
                 f"return {total:+.3f}")
            echo(frame(env, observation, text_mode))
            if terminated or truncated:
                echo("episode ended: " + ("terminated" if terminated else "truncated"))
                break
        return total
    finally:
        env.close()
