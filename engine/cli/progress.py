"""The training progress line of ``gameadapt train`` (and of baselines ``evaluate`` trains).

On a terminal one line is redrawn in place after every iteration, cut to the terminal's
width (80 columns fit everything; narrower terminals drop the bar, then the time left,
then truncate). Without a terminal (CI logs, ``nohup``) a plain line is printed at a
steady rate: for the first iteration, then every ``GAMEADAPT_PROGRESS_SECONDS`` seconds
(default 10), and for the last one.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import IO, Any

SECONDS_ENV = "GAMEADAPT_PROGRESS_SECONDS"
DEFAULT_SECONDS = 10.0
BAR_WIDTH = 10


class TrainProgress:
    """Shows ``iterations`` meta-iterations from ``start`` as they complete (the time left is
    capped by a time budget of ``budget_seconds``, if any)."""

    def __init__(self, start: int, iterations: int, stream: IO[str] | None = None,
                 interactive: bool | None = None, every_seconds: float | None = None,
                 budget_seconds: float | None = None) -> None:
        self.start, self.iterations = start, iterations
        self.budget_seconds = budget_seconds
        self.stream = stream or sys.stderr
        self.interactive = _is_terminal(self.stream) if interactive is None else interactive
        self.every_seconds = every_seconds if every_seconds is not None else _interval()
        self._started = time.monotonic()
        self._last_print = -float("inf")
        self._drawn = False

    def __call__(self, row: dict[str, Any]) -> None:
        """Report a completed iteration's metrics row."""
        done = row["iteration"] + 1
        now = time.monotonic()
        if self.interactive:
            width = shutil.get_terminal_size((80, 24)).columns
            self.stream.write("\r" + fit_line(self._fields(row, done, now), width - 1) + "\x1b[K")
            self._drawn = True
        elif done == self.start + 1 or done >= self.iterations or \
                now - self._last_print >= self.every_seconds:
            self.stream.write(plain_line(self._fields(row, done, now)) + "\n")
            self._last_print = now
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line (call once, after the last iteration or an interruption)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _fields(self, row: dict[str, Any], done: int, now: float) -> dict[str, str]:
        elapsed = now - self._started
        per_iteration = elapsed / max(done - self.start, 1)
        left = per_iteration * (self.iterations - done)
        if self.budget_seconds is not None:
            left = max(0.0, min(left, self.budget_seconds - elapsed))
        filled = round(BAR_WIDTH * done / max(self.iterations, 1))
        return {
            "iteration": f"it {done}/{self.iterations}",
            "bar": "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]",
            "returns": f"pre {row['pre_return']:.2f} post {row['post_return']:.2f}",
            "speed": f"{_si(row.get('env_steps_per_s', 0.0))} steps/s",
            "left": f"{_clock(left)} left",
        }


def fit_line(fields: dict[str, str], width: int) -> str:
    """The redrawn line, dropping the bar and then the time left to fit ``width``."""
    for drop in ((), ("bar",), ("bar", "left"), ("bar", "left", "speed")):
        line = " ".join(text for name, text in fields.items() if name not in drop)
        if len(line) <= width:
            return line
    return line[:max(width, 0)]


def plain_line(fields: dict[str, str]) -> str:
    """The line printed without a terminal."""
    return "meta-training: " + ", ".join(text for name, text in fields.items() if name != "bar")


def _si(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _interval() -> float:
    text = os.environ.get(SECONDS_ENV, "")
    try:
        value = float(text) if text else DEFAULT_SECONDS
    except ValueError:
        return DEFAULT_SECONDS
    return value if value >= 0 else DEFAULT_SECONDS
