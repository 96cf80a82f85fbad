"""Run folders: the resolved config, metrics, TensorBoard scalars and the checkpoint.

A run folder holds::

    config.json       the resolved training config (what --resume continues), the plugins'
                      distributions, and the completed iterations
    metrics.jsonl     one JSON object per meta-iteration
    tb/               TensorBoard event files (scalars)
    checkpoint.pt     the latest checkpoint (atomic, loaded with weights_only=True)
    .lock             while a process trains it: the holder's PID and command (see locks)

``metrics.jsonl`` rows are fsynced as they are appended (before the iteration's checkpoint);
a torn last line is dropped when a run resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GameadaptError, warn
from ..files import atomic_write_json, atomic_write_text, created_folders
from ..locks import RUN_LOCK_FILE, folder_lock
from ..textfiles import load_json

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
TENSORBOARD_DIR = "tb"
RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE, TENSORBOARD_DIR)


class RunError(GameadaptError):
    """A run folder is missing, in use for something else, or unreadable."""


RUN_FORMAT = "gameadapt-run/1"
OPTIONAL_OBJECTS = ("algorithm_config", "providers", "progress")  # objects when present


def check_run_config(data: dict[str, Any], where: str) -> None:
    """The schema of ``config.json`` but the fields of ``train`` (one line naming a field)."""
    if data.get("format") != RUN_FORMAT:
        raise RunError(f"{where} is not a gameadapt run config (format {data.get('format')!r}, "
                       f"expected {RUN_FORMAT!r})")
    train = data.get("train")
    if not isinstance(train, dict):
        raise RunError(f"{where}: train must be an object (the training config), got "
                       f"{'nothing' if train is None else type(train).__name__}")
    for key in ("game", "algorithm"):
        if not isinstance(data.get(key), str):
            raise RunError(f"{where}: {key} must be a string, got {data.get(key)!r}")
        if key in train and train[key] != data[key]:
            raise RunError(f"{where}: {key} {data[key]!r} differs from train.{key} "
                           f"{train[key]!r}; the file was edited or is corrupt")
    for key in OPTIONAL_OBJECTS:
        if key in data and not isinstance(data[key], dict):
            raise RunError(f"{where}: {key} must be an object, got {type(data[key]).__name__}")


@dataclass(frozen=True)
class RunDir:
    """Paths of one training run."""

    path: Path

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / RUN_LOCK_FILE

    @contextlib.contextmanager
    def locked(self, command: str = "gameadapt train", create: bool = False) -> Iterator[None]:
        """Own the run folder for the block (a one-line error if another process does).

        ``create``: make the folder first; if the block fails, folders it made that are
        still empty are removed again. Re-entrant within a process.
        """
        if not create and not self.path.is_dir():
            raise RunError(f"{self.path} is not a gameadapt run (no {CONFIG_FILE})")
        with created_folders(self.path) if create else contextlib.nullcontext(self.path):
            with folder_lock(self.lock_path, self.path, command):
                yield

    def create(self, config: dict[str, Any]) -> None:
        """Make a new run folder; refuse one that already holds any run file."""
        present = [name for name in RUN_FILES if (self.path / name).exists()]
        if present:
            raise RunError(f"{self.path} already holds a run ({present[0]}); continue it with "
                           f"`gameadapt train --resume {self.path}` or choose another --run-dir")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        """The run's saved config, checked (a one-line :class:`RunError` naming the field).

        ``format``, ``game`` and ``algorithm`` are strings, ``game``/``algorithm`` equal
        ``train.game``/``train.algorithm``; ``train`` is an object (its fields are checked by
        :func:`~gameadapt.train.session.run_train_config`); ``algorithm_config``, ``providers``
        and ``progress`` are objects when present.
        """
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a gameadapt run (no {CONFIG_FILE})")
        data = load_json(self.config_path, "run config", RunError)
        if not isinstance(data, dict):
            raise RunError(f"{self.config_path} is not a gameadapt run config (not an object)")
        check_run_config(data, str(self.config_path))
        return data

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def record_progress(self, iterations: int, stopped: str | None) -> None:
        """Note in ``config.json`` how many iterations are done, and why training stopped early."""
        config = self.read_config()
        config["progress"] = {"completed_iterations": iterations, "stopped": stopped}
        self.write_config(config)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every logged iteration (an empty list before the first one).

        A torn last line (a write cut short) is left out; any other bad line is a
        :class:`RunError`.
        """
        return self._read_metrics()[0]

    def _read_metrics(self) -> tuple[list[dict[str, Any]], bool]:
        """The rows, and whether a torn last line was left out."""
        if not self.metrics_path.exists():
            return [], False
        try:
            text = self.metrics_path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RunError(f"{self.metrics_path} is not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})") from None
        except OSError as exc:
            raise RunError(f"cannot read {self.metrics_path}: {exc.strerror}") from None
        lines = text.split("\n")
        last = lines.pop()  # "" when the file ends with a newline, else a torn line
        rows = [self._metrics_row(line, number)
                for number, line in enumerate(lines, 1) if line.strip()]
        return rows, bool(last.strip())

    def _metrics_row(self, line: str, number: int) -> dict[str, Any]:
        """One line of ``metrics.jsonl`` as a row with an integer ``iteration`` >= 0."""
        where = f"{self.metrics_path} line {number}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise RunError(f"{where} is not valid JSON ({reason}); the file is corrupt") from None
        iteration = row.get("iteration") if isinstance(row, dict) else None
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise RunError(f"{where} is not a metrics row (an object with an integer "
                           f"'iteration' >= 0)")
        return row

    def truncate_metrics(self, iterations: int) -> None:
        """Keep the metrics of the first ``iterations`` iterations (those a checkpoint covers).

        A torn last line is dropped with a warning. Call it only once the checkpoint that
        covers ``iterations`` has loaded.
        """
        if iterations < 0:
            raise RunError(f"cannot keep the metrics of {iterations} iterations")
        rows, torn = self._read_metrics()
        if torn:
            warn(f"{self.metrics_path}: dropped a torn last line (a write cut short)")
        kept = [m for m in rows if m["iteration"] < iterations]
        if torn or len(kept) < len(rows):
            atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept))

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append rows, flushed and fsynced (so they are on disk before the checkpoint)."""
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
            handle.flush()
            os.fsync(handle.fileno())
