"""Reading the text files the engine takes in: bounded, UTF-8, shallow, finite.

Every config TOML, variant file, ``config.json`` and ``metrics.jsonl`` goes through here.
A file larger than :data:`~gameadapt.limits.MAX_TEXT_BYTES`, text that is not UTF-8 (a UTF-8
BOM is accepted), a syntax error, nesting deeper than :data:`~gameadapt.limits.MAX_NESTING`
or (unless the caller allows them) JSON ``NaN``/``Infinity`` is one line: the raised
:class:`~gameadapt.errors.GameadaptError` (or the caller's subclass) names the file.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from .errors import GameadaptError
from .limits import MAX_NESTING, MAX_TEXT_BYTES

ErrorType = type[GameadaptError]


def read_text(path: Path, what: str, error: ErrorType = GameadaptError) -> str:
    """The UTF-8 text of ``path`` (``what``: how messages name it, e.g. ``"config file"``)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TEXT_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise error(f"{what} {path} is larger than the limit of {MAX_TEXT_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:  # a NUL: UTF-16 or binary, never a text file
        raise error(f"{what} {path} is not UTF-8 text (save it as UTF-8)")
    return text


def check_nesting(value: Any, where: str, error: ErrorType = GameadaptError) -> None:
    """Refuse lists/objects nested deeper than :data:`MAX_NESTING` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= MAX_NESTING:
            raise error(f"{where} is nested deeper than the limit of {MAX_NESTING} levels")
        stack.extend((child, depth + 1) for child in children)


def parse_json(text: str, where: str, error: ErrorType = GameadaptError, *,
               allow_nonfinite: bool = False, language: str = "JSON") -> Any:
    """Parse JSON ``text`` (``where`` names it, ``language`` its syntax in messages);
    ``NaN``/``Infinity`` only if allowed."""
    def refuse(constant: str) -> float:
        if not allow_nonfinite:
            raise error(f"{where} holds the non-finite number {constant}; only finite numbers "
                        f"are allowed")
        return float(constant)

    def finite(literal: str) -> float:
        number = float(literal)
        return refuse(literal) if math.isinf(number) else number

    try:
        value = json.loads(text, parse_constant=refuse, parse_float=finite)
    except RecursionError:
        raise error(f"{where} is nested deeper than the limit of {MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid {language}: {exc}") from None
    check_nesting(value, where, error)
    return value


def load_json(path: Path, what: str, error: ErrorType = GameadaptError, *,
              allow_nonfinite: bool = False, language: str = "JSON") -> Any:
    """Read and parse a JSON file (see :func:`read_text` and :func:`parse_json`)."""
    text = read_text(path, what, error)
    return parse_json(text, f"{what} {path}", error, allow_nonfinite=allow_nonfinite,
                      language=language)


def parse_toml(text: str, where: str, error: ErrorType = GameadaptError,
               language: str = "TOML") -> dict[str, Any]:
    """Parse TOML ``text`` (``where`` names it); nesting bounded as for JSON."""
    try:
        value = tomllib.loads(text)
    except RecursionError:
        raise error(f"{where} is nested deeper than the limit of {MAX_NESTING} levels") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where} is not valid {language}: {' '.join(str(exc).split())}") from None
    check_nesting(value, where, error)
    return value


def load_toml(path: Path, what: str, error: ErrorType = GameadaptError,
              language: str = "TOML") -> dict[str, Any]:
    """Read and parse a TOML file (see :func:`read_text` and :func:`parse_toml`)."""
    return parse_toml(read_text(path, what, error), f"{what} {path}", error, language)
