"""Grid-navigation levels (numpy only): walls, a start and a goal, always solvable.

Cells are addressed as ``(x, y)``: ``x`` is the column, ``y`` the row (row 0 at the top);
``walls`` is indexed ``walls[y, x]``. A generated level is a pure function of ``(seed, size,
wall_density)``: candidates are drawn from a generator seeded with those values and an
attempt number, and the first candidate that BFS can solve is kept. A *layout* is a level
written out as text (``level.layout``): rows joined by ``/``, ``.`` floor, ``#`` wall,
``A`` the start, ``G`` the goal, e.g. ``A..../.###./...../.#.#./....G``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gameadapt.grids import Cell, distance_map, shortest_path, shortest_path_length

MAX_ATTEMPTS = 1000
MIN_SIZE, MAX_SIZE = 5, 9
LAYOUT_ROW_SEPARATOR = "/"
LAYOUT_CHARACTERS = ".#AG"  # floor, wall, start, goal
MAX_LAYOUT_LENGTH = MAX_SIZE * (MAX_SIZE + 1) - 1
__all__ = ["Cell", "Level", "check_layout", "distance_map", "generate_level", "layout_of",
           "level_of", "parse_layout", "shortest_path", "shortest_path_length"]


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


def level_of(level: Mapping[str, Any]) -> Level:
    """The level of a validated variant's ``level`` part: its layout if it has one, else the
    one generated from ``seed``, ``size`` and ``wall_density``."""
    if level.get("layout"):
        return parse_layout(level["layout"])
    return generate_level(level["seed"], level["size"], level["wall_density"])


def parse_layout(text: str) -> Level:
    """The level a layout describes; a :class:`ValueError` naming the first problem."""
    rows = text.split(LAYOUT_ROW_SEPARATOR)
    size = len(rows)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"a layout has {MIN_SIZE} to {MAX_SIZE} rows separated by "
                         f"{LAYOUT_ROW_SEPARATOR!r}, got {size}")
    for y, row in enumerate(rows):
        if len(row) != size:
            raise ValueError(f"a layout is square: row {y} has {len(row)} cells, "
                             f"there are {size} rows")
        bad = [c for c in row if c not in LAYOUT_CHARACTERS]
        if bad:
            raise ValueError(f"row {y} has {bad[0]!r}: use . floor, # wall, A start, G goal")
    cells = {mark: [(x, y) for y, row in enumerate(rows) for x, c in enumerate(row) if c == mark]
             for mark in "AG"}
    for mark, what in (("A", "start"), ("G", "goal")):
        if len(cells[mark]) != 1:
            raise ValueError(f"a layout has exactly one {mark} (the {what}), got "
                             f"{len(cells[mark])}")
    walls = np.array([[c == "#" for c in row] for row in rows], dtype=bool)
    start, goal = cells["A"][0], cells["G"][0]
    if shortest_path(walls, start, goal) is None:
        raise ValueError("the goal G cannot be reached from the start A")
    return Level(walls, start, goal)


def check_layout(text: str) -> str:
    """``text`` if it is a valid layout (the ``level.layout`` domain's rule)."""
    parse_layout(text)
    return text


def layout_of(level: Level) -> str:
    """A level written as a layout (:func:`parse_layout` reads it back)."""
    rows = [["#" if wall else "." for wall in row] for row in level.walls]
    rows[level.start[1]][level.start[0]] = "A"
    rows[level.goal[1]][level.goal[0]] = "G"
    return LAYOUT_ROW_SEPARATOR.join("".join(row) for row in rows)
