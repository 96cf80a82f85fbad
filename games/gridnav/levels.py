"""Grid-navigation level generation (numpy only): walls, a start and a goal, always solvable.

Cells are addressed as ``(x, y)``: ``x`` is the column, ``y`` the row (row 0 at the top);
``walls`` is indexed ``walls[y, x]``. A level is a pure function of ``(seed, size,
wall_density)``: candidates are drawn from a generator seeded with those values and an
attempt number, and the first candidate that BFS can solve is kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

MAX_ATTEMPTS = 1000
Cell = tuple[int, int]


@dataclass(frozen=True, eq=False)
class Level:
    """A generated level: ``walls`` bool ``[size, size]`` (indexed ``[y, x]``), start and goal."""

    walls: np.ndarray
    start: Cell
    goal: Cell

    @property
    def size(self) -> int:
        return int(self.walls.shape[0])


def shortest_path(walls: np.ndarray, start: Cell, goal: Cell) -> list[Cell] | None:
    """The cells of a shortest 4-connected path from ``start`` to ``goal`` (both included).

    Returns None when the goal cannot be reached (or either end is a wall).
    """
    height, width = walls.shape
    if walls[start[1], start[0]] or walls[goal[1], goal[0]]:
        return None
    previous: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            path = [cell]
            while (step := previous[path[-1]]) is not None:
                path.append(step)
            return path[::-1]
        x, y = cell
        for nx, ny in ((x, y - 1), (x, y + 1), (x - 1, y), (x + 1, y)):
            if 0 <= nx < width and 0 <= ny < height and not walls[ny, nx] \
                    and (nx, ny) not in previous:
                previous[(nx, ny)] = cell
                queue.append((nx, ny))
    return None


def shortest_path_length(walls: np.ndarray, start: Cell, goal: Cell) -> int | None:
    """The number of moves on a shortest path from ``start`` to ``goal``, or None if unsolvable."""
    path = shortest_path(walls, start, goal)
    return None if path is None else len(path) - 1


def distance_map(walls: np.ndarray, goal: Cell) -> np.ndarray:
    """Moves on a shortest path from every cell to ``goal`` (int64 ``[y, x]``; -1: unreachable).

    One breadth-first search from the goal; walls and cells cut off from it are -1.
    """
    height, width = walls.shape
    distance = np.full((height, width), -1, dtype=np.int64)
    if walls[goal[1], goal[0]]:
        return distance
    distance[goal[1], goal[0]] = 0
    queue = deque([goal])
    while queue:
        x, y = queue.popleft()
        for nx, ny in ((x, y - 1), (x, y + 1), (x - 1, y), (x + 1, y)):
            if 0 <= nx < width and 0 <= ny < height and not walls[ny, nx] \
                    and distance[ny, nx] < 0:
                distance[ny, nx] = distance[y, x] + 1
                queue.append((nx, ny))
    return distance


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
