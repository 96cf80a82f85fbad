"""The exported file as a game runs it: an export folder played with ONNX Runtime only.

Plays ``EPISODES`` episodes of each of 40 held-out variants per evaluation seed (0, 1, 2)
with ``gameadapt.ship.play`` (the `action` output as the export defines it, the memory of
a recurrent export, or the posterior sums of a context export, carried across the episodes
of a level and reset at a new one) and prints the mean return of each episode of a level::

    python bench/shipped_returns.py exports/grid-rl2 gridnav 3
    python bench/shipped_returns.py exports/grid-context gridnav 3
"""

from __future__ import annotations

import sys

import numpy as np
from gameadapt.host.registry import get_registry
from gameadapt.ship.play import load_policy, play


def main() -> None:
    folder, game, episodes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = get_registry().game(game)
    policy = load_policy(folder)
    returns = []
    for seed in (0, 1, 2):
        for index, variant in enumerate(spec.variant_space.sample("test", 40, seed)):
            played = play(policy, spec, variant, episodes=episodes,
                          seed=1000 * seed + 10 * index, echo=lambda line: None)
            returns.append([episode.total for episode in played])
    means = np.array(returns).mean(0)
    latent = (f", latent {policy.latent_mode}, z_update {policy.z_update}" if policy.context
              else "")
    print(f"{folder}: {len(returns)} held-out variants, ONNX Runtime, "
          f"{policy.manifest.get('action_mode', 'greedy')} action{latent}; mean return per "
          f"episode of the level: " + " ".join(f"ep{k + 1} {v:.2f}" for k, v in enumerate(means)))


if __name__ == "__main__":
    main()
