"""Duel arena generation (numpy only): walls, two flags and two starts, always playable.

Cells are ``(x, y)`` with ``x`` the column and ``y`` the row (row 0 at the top), and
``walls`` is indexed ``walls[y, x]``, as in GridNav. The flags sit in the top corners, the
attacker starts at the bottom centre and the defender a little above the middle. An arena is
a pure function of ``(seed, size, wall_density)``; candidates are redrawn until both agents
can reach both flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gameadapt.grids import Cell, distance_map

MAX_ATTEMPTS = 1000


def west_flag(size: int) -> Cell:
    """The flag in the top-left corner."""
    return (0, 0)


def east_flag(size: int) -> Cell:
    """The flag in the top-right corner."""
    return (size - 1, 0)


def attacker_start(size: int) -> Cell:
    """The attacker's start: bottom centre."""
    return (size // 2, size - 1)


def defender_start(size: int) -> Cell:
    """The defender's start: centre column, a quarter of the way down (plus one)."""
    return (size // 2, 1 + size // 4)


@dataclass(frozen=True, eq=False)
class Arena:
    """A generated arena: ``walls`` bool ``[size, size]`` (indexed ``[y, x]``) and BFS maps."""

    walls: np.ndarray

    @property
    def size(self) -> int:
        return int(self.walls.shape[0])

    @property
    def flags(self) -> tuple[Cell, Cell]:
        """``(west flag, east flag)``."""
        return west_flag(self.size), east_flag(self.size)

    @property
    def starts(self) -> tuple[Cell, Cell]:
        """``(attacker start, defender start)``."""
        return attacker_start(self.size), defender_start(self.size)

    def flag_distances(self) -> np.ndarray:
        """int64 ``[2, size, size]``: BFS moves to the west and the east flag (-1: unreachable)."""
        return np.stack([distance_map(self.walls, flag) for flag in self.flags])


def _free_cells(size: int) -> list[Cell]:
    """Flags, starts and their 4-neighbourhoods, clipped to the arena."""
    centres = [west_flag(size), east_flag(size), attacker_start(size), defender_start(size)]
    cells = [(x + dx, y + dy) for x, y in centres
             for dx, dy in ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))]
    return [(x, y) for x, y in cells if 0 <= x < size and 0 <= y < size]


def is_playable(arena: Arena) -> bool:
    """True if both agents can reach both flags."""
    distances = arena.flag_distances()
    return all(distances[:, y, x].min() >= 0 for x, y in arena.starts)


def generate_arena(seed: int, size: int, wall_density: float) -> Arena:
    """The arena for ``(seed, size, wall_density)``; deterministic and always playable.

    Walls are placed independently with probability ``wall_density``, then the flags, the
    starts and their neighbours are cleared. Unplayable candidates are redrawn with a derived
    seed; after :data:`MAX_ATTEMPTS` the arena falls back to an open one.
    """
    density_key = int(round(wall_density * 1_000_000))
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, size, density_key, attempt])
        walls = rng.random((size, size)) < wall_density
        for x, y in _free_cells(size):
            walls[y, x] = False
        arena = Arena(walls)
        if is_playable(arena):
            return arena
    return Arena(np.zeros((size, size), dtype=bool))
