"""Checkpoints: written atomically, checksummed, validated, loaded without unpickling code.

A checkpoint is a dict of tensors and plain Python values saved with ``torch.save`` and
written with :func:`gameadapt.files.atomic_write_bytes`, so a crash never leaves a
half-written checkpoint. Loading uses ``torch.load(weights_only=True)``: no code from the
file is ever run. Format ``gameadapt-checkpoint/2`` carries the SHA-256 of its contents
(:func:`content_digest`: a canonical walk, sorted keys, tensors as dtype + shape + raw
bytes), verified on load; every checkpoint is then checked against its schema (the values
that must be there, their types, a sane iteration) and every floating tensor must be
finite. Checkpoints of format ``/1`` (no checksum) still load, checked by the schema only;
the next save writes ``/2``.
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import GameadaptError
from ..files import atomic_write_bytes

CHECKPOINT_FORMAT = "gameadapt-checkpoint/2"
OLD_FORMATS = ("gameadapt-checkpoint/1",)  # loaded without a checksum (schema only)
CHECKSUM_KEY = "checksum"
MAX_ITERATION = 10**9  # a checkpoint's iteration lies in [0, MAX_ITERATION]


class CheckpointError(GameadaptError):
    """A checkpoint is missing, corrupt, or belongs to something else."""


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Save a checkpoint dict (tensors and plain values) atomically, with its checksum.

    A non-finite floating tensor is refused (one line naming it): nothing is written.
    """
    content = {**payload, "format": CHECKPOINT_FORMAT}
    content.pop(CHECKSUM_KEY, None)
    _check_finite(content, f"cannot save checkpoint {path}")
    content[CHECKSUM_KEY] = content_digest(content)
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path, *, expect: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint safely; ``expect`` lists keys whose values must match (e.g. the game).

    Raises :class:`CheckpointError` (one line) for a missing, corrupt, ill-formed, non-finite
    or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about the odd pickle of a corrupt file
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure to parse means a bad file
        raise CheckpointError(f"checkpoint {path} is corrupt or not a gameadapt checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") not in (CHECKPOINT_FORMAT,
                                                                      *OLD_FORMATS):
        raise CheckpointError(f"{path} is not a gameadapt checkpoint")
    if payload["format"] == CHECKPOINT_FORMAT:
        _verify_checksum(path, payload)
    check_schema(payload, f"checkpoint {path}")
    _check_finite(payload, f"checkpoint {path}")
    for key, value in (expect or {}).items():
        if payload.get(key) != value:
            raise CheckpointError(f"checkpoint {path} is for {key} {payload.get(key)!r}, "
                                  f"not {value!r}")
    return payload


def content_digest(payload: Mapping[str, Any], where: str = "checkpoint") -> str:
    """``sha256:HEX`` of a checkpoint's contents but its checksum (a canonical walk)."""
    digest = hashlib.sha256()
    try:
        _feed(digest.update, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    except RecursionError:
        raise CheckpointError(f"{where} is nested too deeply to be a checkpoint") from None
    return f"sha256:{digest.hexdigest()}"


def _feed(update: Callable[[bytes], Any], value: Any) -> None:
    """Feed ``value``'s canonical bytes to ``update`` (sorted keys; tensors by their bytes)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        update(f"T{tensor.dtype}{list(value.shape)}".encode())
        update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        update(b"{")
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            update(json.dumps(key).encode() + b":")
            _feed(update, value[key])
        update(b"}")
    elif isinstance(value, (list, tuple)):
        update(b"[")
        for item in value:
            _feed(update, item)
            update(b",")
        update(b"]")
    else:
        update(b"V" + json.dumps(value).encode() if _plain(value)
               else f"R{type(value).__name__}:{value!r}".encode())


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _verify_checksum(path: Path, payload: dict[str, Any]) -> None:
    recorded = payload.get(CHECKSUM_KEY)
    if not isinstance(recorded, str) or recorded != content_digest(payload, f"checkpoint {path}"):
        raise CheckpointError(f"checkpoint {path} is corrupt (checksum mismatch): it changed "
                              f"after it was written; use an earlier copy or train again")


def _named_tensors(value: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside ``value`` with a path name like ``policy['body.0.weight']``
    (walked without recursion: a deep file cannot exhaust the stack)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        name, item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield name, item
        elif isinstance(item, Mapping):
            stack.extend((f"{name}[{key!r}]" if name else str(key), child)
                         for key, child in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{name}[{index}]", child) for index, child in enumerate(item))


def _check_finite(payload: Mapping[str, Any], where: str) -> None:
    """Every floating tensor must be finite (one line naming the first that is not)."""
    for name, tensor in _named_tensors(payload):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: tensor {name} holds NaN or infinite values; the "
                                  f"training diverged (train again, e.g. with a smaller "
                                  f"learning rate)")


def check_schema(payload: Mapping[str, Any], where: str) -> None:
    """The values a run checkpoint (or, ``kind: adapted``, an adapted one) must hold."""
    for key in ("game", "algorithm"):
        _require(payload, key, str, "a string", where)
    if payload.get("kind") == "adapted":
        _check_adapted(payload, where)
        return
    iteration = payload.get("iteration")
    if isinstance(iteration, bool) or not isinstance(iteration, int) \
            or not 0 <= iteration <= MAX_ITERATION:
        raise CheckpointError(f"{where}: iteration must be an integer from 0 to {MAX_ITERATION}, "
                              f"got {iteration!r}")
    _require(payload, "engine_version", str, "a string", where)
    _check_policy(payload, where)
    optimizer = _require(payload, "optimizer", dict, "an object", where)
    if not isinstance(optimizer.get("state"), dict) or not isinstance(
            optimizer.get("param_groups"), list):
        raise CheckpointError(f"{where}: optimizer must hold 'state' (an object) and "
                              f"'param_groups' (a list)")


def _check_adapted(payload: Mapping[str, Any], where: str) -> None:
    _check_policy(payload, where)
    for key in ("train", "variant", "provenance"):
        _require(payload, key, dict, "an object", where)
    for key in ("game", "algorithm"):
        if payload["train"].get(key) != payload[key]:
            raise CheckpointError(f"{where}: {key} {payload[key]!r} differs from train.{key} "
                                  f"{payload['train'].get(key)!r}")
    if payload.get("providers") is not None:
        _require(payload, "providers", dict, "an object", where)


def _check_policy(payload: Mapping[str, Any], where: str) -> None:
    policy = _require(payload, "policy", dict, "an object", where)
    for key, value in policy.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: policy must map parameter names to tensors, got "
                                  f"{key!r}: {type(value).__name__}")


def _require(payload: Mapping[str, Any], key: str, kind: type, described: str,
             where: str) -> Any:
    value = payload.get(key)
    if not isinstance(value, kind):
        shown = "missing" if key not in payload else f"got {type(value).__name__}"
        raise CheckpointError(f"{where}: {key} must be {described} ({shown})")
    return value
