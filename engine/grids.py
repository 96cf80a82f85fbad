"""Path-finding on 4-connected grids (numpy only), shared by the grid games.

Cells are ``(x, y)``: ``x`` the column, ``y`` the row (row 0 at the top); ``walls`` is a bool
array indexed ``walls[y, x]``. gridnav shapes its rewards and checks that levels are
solvable with these, and the duel measures every cell's distance to the flags with them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

Cell = tuple[int, int]


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
