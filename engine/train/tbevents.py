"""A dependency-free writer of TensorBoard scalar event files.

TensorBoard reads ``events.out.tfevents.*`` files: TFRecord framing (length, masked CRC-32C,
payload, masked CRC-32C) around serialised ``tensorflow.Event`` protocol buffers. Scalars
need only a handful of protobuf fields, encoded here by hand, so training logs open in
TensorBoard without installing it. :func:`read_scalars` parses the files back (for tests).
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
    _CRC_TABLE.append(_crc)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None,
           scalars: dict[str, float] | None = None) -> bytes:
    data = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        data += _field(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field(1, _field(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value))
            for tag, value in scalars.items())
        data += _field(5, values)
    return data


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data))


FLOAT32_MAX = 3.4028234663852886e38


def _as_float32(value: float) -> float:
    """``value`` clamped to float32's finite range (NaN and infinities unchanged)."""
    value = float(value)
    if math.isfinite(value):
        return min(max(value, -FLOAT32_MAX), FLOAT32_MAX)
    return value


class ScalarWriter:
    """Appends scalar summaries to a new event file in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}"
        self.path = log_dir / name
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._file.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Write one event holding every scalar of ``scalars`` at ``step``.

        Scalars are float32 in the file: finite values beyond float32's range are clamped to
        its largest magnitude (``metrics.jsonl`` keeps them exact); NaN and infinities are
        written as they are.
        """
        clamped = {tag: _as_float32(value) for tag, value in scalars.items()}
        self._file.write(_record(_event(time.time(), step, scalars=clamped)))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_scalars(path: Path) -> Iterator[tuple[int, str, float]]:
    """Yield ``(step, tag, value)`` from an event file, checking every CRC."""
    data = Path(path).read_bytes()
    offset = 0
    while offset < len(data):
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
        payload = data[offset + 12:offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
        if header_crc != _masked_crc(header) or payload_crc != _masked_crc(payload):
            raise ValueError(f"bad CRC in {path} at byte {offset}")
        offset += 16 + length
        yield from _parse_event(payload)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, wire, value
        elif wire == 1:
            yield number, wire, data[pos:pos + 8]
            pos += 8
        elif wire == 5:
            yield number, wire, data[pos:pos + 4]
            pos += 4
        else:
            length, pos = _read_varint(data, pos)
            yield number, wire, data[pos:pos + length]
            pos += length


def _parse_event(payload: bytes) -> Iterator[tuple[int, str, float]]:
    step = 0
    summaries = []
    for number, _, value in _fields(payload):
        if number == 2:
            step = int(value)  # type: ignore[arg-type]
        elif number == 5:
            summaries.append(value)
    for summary in summaries:
        for _, _, raw_value in _fields(summary):  # type: ignore[arg-type]
            tag, scalar = "", 0.0
            for number, _, item in _fields(raw_value):  # type: ignore[arg-type]
                if number == 1:
                    tag = item.decode()  # type: ignore[union-attr]
                elif number == 2:
                    (scalar,) = struct.unpack("<f", item)  # type: ignore[arg-type]
            yield step, tag, scalar
