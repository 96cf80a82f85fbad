"""Grid-navigation level generation (numpy only): walls, a start and a goal, always solvable.

Cells are addressed as ``(x, y)``: ``x`` is the column, ``y`` the row (row 0 at the top);
``walls`` is indexed ``walls[y, x]``. A level is a pure function of ``(seed, size,
wall_density)``: candidates are drawn from a generator seeded with those values and an
attempt number, and the first candidate that BFS can solve is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gameadapt.grids import Cell, distance_map, shortest_path, shortest_path_length

MAX_ATTEMPTS = 1000
__all__ = ["Cell", "Level", "distance_map", "generate_level", "shortest_path",
           "shortest_path_length"]


@dataclass(frozen=True, eq=False)
class Level:
    """A generated level: ``walls`` bool ``[size, size]`` (indexed ``[y, x]``), start and goal."""

    walls: np.ndarray
    start: Cell
    goal: Cell

    @property
    def size(self) -> int:
        return int(self.walls.shape[0])


def generate_level(seed: int, size: int, wall_density: float) -> Level:
    """The level for ``(seed, size, wall_density)``; deterministic and always solvable.

    Walls are placed independently with probability ``wall_density``; the start is uniform
    and the goal uniform among cells at Manhattan distance ``>= size - 1`` from it. Unsolvable
    candidates are redrawn with a derived seed; after :data:`MAX_ATTEMPTS` the level falls back
    to an open grid with start and goal in opposite corners.
    """
    density_key = int(round(wall_density * 1_000_000))
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, size, density_key, attempt])
        walls = rng.random((size, size)) < wall_density
        start = (int(rng.integers(size)), int(rng.integers(size)))
        ys, xs = np.mgrid[0:size, 0:size]
        far = np.abs(xs - start[0]) + np.abs(ys - start[1]) >= size - 1
        candidates = np.flatnonzero(far.ravel())
        index = int(candidates[rng.integers(len(candidates))])
        goal = (index % size, index // size)
        walls[start[1], start[0]] = walls[goal[1], goal[0]] = False
        if shortest_path(walls, start, goal) is not None:
            return Level(walls, start, goal)
    return Level(np.zeros((size, size), dtype=bool), (0, 0), (size - 1, size - 1))
