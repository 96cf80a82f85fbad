"""Where training writes each iteration's metrics: ``metrics.jsonl`` and TensorBoard scalars.

:class:`MetricsSink` is the one writer :func:`~gameadapt.train.trainer.train` calls, once per
iteration. ``metrics.jsonl`` keeps every value exactly (JSON, ``NaN``/``Infinity`` included);
TensorBoard's event files are written by ``tensorboardX`` (small; its dependencies come with
onnx). A resumed run passes TensorBoard its first iteration as ``purge_step``: the event file
then starts with a restart record, and TensorBoard's loaders drop the steps from that one on
that an earlier, killed process had logged, so no step appears twice. TensorBoard stores
scalars as float32: finite values beyond its range are clamped to its largest magnitude, NaN
and infinities are written as they are.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

from tensorboardX import SummaryWriter

from .runs import RunDir

FLOAT32_MAX = 3.4028234663852886e38


class MetricsSink:
    """The metrics of a run from iteration ``start`` on (rows of later iterations are cut)."""

    def __init__(self, run: RunDir, start: int, config: dict[str, Any] | None = None) -> None:
        self.run = run
        run.truncate_metrics(start)
        # the suffix keeps two processes in the same second from sharing one event file
        self._writer = SummaryWriter(logdir=str(run.tensorboard_dir),
                                     purge_step=start if start > 0 else None,
                                     filename_suffix=f".{os.getpid()}.{time.time_ns()}")
        if config is not None and start == 0:
            self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def write(self, row: dict[str, Any]) -> None:
        """Append one iteration's row (its ``iteration`` is the TensorBoard step)."""
        self.run.append_metrics([row])
        step = int(row["iteration"])
        for name, value in row.items():
            if name != "iteration":
                self._writer.add_scalar(f"train/{name}", as_float32(value), step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def as_float32(value: Any) -> float:
    """``value`` clamped to float32's finite range (NaN and infinities unchanged)."""
    value = float(value)
    if math.isfinite(value):
        return min(max(value, -FLOAT32_MAX), FLOAT32_MAX)
    return value
