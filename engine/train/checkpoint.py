"""Checkpoints: written atomically, loaded without unpickling code.

A checkpoint is a dict of tensors and plain Python values saved with ``torch.save`` and
written with :func:`gameadapt.files.atomic_write_bytes`, so a crash never leaves a
half-written checkpoint. Loading uses ``torch.load(weights_only=True)``:
no code from the file is ever run.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError
from ..files import atomic_write_bytes

CHECKPOINT_FORMAT = "gameadapt-checkpoint/1"


class CheckpointError(GameadaptError):
    """A checkpoint is missing, corrupt, or belongs to something else."""


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Save a checkpoint dict (tensors and plain values) atomically."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path, *, expect: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; ``expect`` lists keys whose values must match (e.g. the game).

    Raises :class:`CheckpointError` (one line) for a missing, corrupt or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure to parse means a bad file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a gameadapt checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gameadapt checkpoint")
    for key, value in (expect or {}).items():
        if payload.get(key) != value:
            raise CheckpointError(f"checkpoint {path} is for {key} {payload.get(key)!r}, "
                                  f"not {value!r}")
    return payload
