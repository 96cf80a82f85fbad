"""Run folders: the resolved config, metrics, TensorBoard scalars and the checkpoint.

A run folder holds::

    config.json       the resolved training config (what --resume continues), the plugins'
                      distributions, and the completed iterations
    metrics.jsonl     one JSON object per meta-iteration
    tb/               TensorBoard event files (scalars)
    checkpoint.pt     the latest checkpoint (atomic, loaded with weights_only=True)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GameadaptError
from ..files import atomic_write_json, atomic_write_text

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
TENSORBOARD_DIR = "tb"


class RunError(GameadaptError):
    """A run folder is missing, in use for something else, or unreadable."""


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

    def create(self, config: dict[str, Any]) -> None:
        """Make a new run folder; refuse one that already holds a run."""
        if self.config_path.exists() or self.checkpoint_path.exists():
            raise RunError(f"{self.path} already holds a run; continue it with "
                           f"`gameadapt train --resume {self.path}` or choose another --run-dir")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        """The run's saved config (a :class:`RunError` if there is none or it is unreadable)."""
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a gameadapt run (no {CONFIG_FILE})")
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"cannot read {self.config_path}: {exc}") from None
        if not isinstance(data, dict) or "game" not in data or "algorithm" not in data:
            raise RunError(f"{self.config_path} is not a gameadapt run config")
        return data

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def record_progress(self, iterations: int, stopped: str | None) -> None:
        """Note in ``config.json`` how many iterations are done, and why training stopped early."""
        config = self.read_config()
        config["progress"] = {"completed_iterations": iterations, "stopped": stopped}
        self.write_config(config)

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every logged iteration (an empty list before the first one)."""
        if not self.metrics_path.exists():
            return []
        lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def truncate_metrics(self, iterations: int) -> None:
        """Keep the metrics of the first ``iterations`` iterations (those a checkpoint covers)."""
        kept = [m for m in self.read_metrics() if m["iteration"] < iterations]
        atomic_write_text(self.metrics_path, "".join(json.dumps(m) + "\n" for m in kept))

    def append_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
