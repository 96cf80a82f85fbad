"""Errors that the CLI turns into one clear line, warnings it prints as one line, the debug switch.

Library code raises a :class:`GameadaptError` for bad input and calls :func:`warn` or
:func:`note` for something the user should know but that does not stop the work; the CLI
prints each as one ``Error:`` / ``Warning:`` / ``Note:`` line. ``GAMEADAPT_DEBUG=1`` makes
the CLI (and the plugin host) show full tracebacks as well.
"""

from __future__ import annotations

import os
import warnings

DEBUG_ENV = "GAMEADAPT_DEBUG"


class GameadaptError(Exception):
    """Base class of every error caused by bad input (not by a bug)."""


class VariantError(GameadaptError, ValueError):
    """A variant, a variant parameter or a variant file is invalid."""


class UnknownIdError(GameadaptError, LookupError):
    """An unknown (or contested) game or algorithm id was asked for."""


class PluginError(GameadaptError):
    """A plugin could not be loaded or registered, or does not do what it declares."""


class GameadaptWarning(UserWarning):
    """Something the user should know that does not stop the work (printed as ``Warning:``)."""


class GameadaptNote(GameadaptWarning):
    """An informational line (printed as ``Note:``)."""


def debug_enabled() -> bool:
    """True when ``GAMEADAPT_DEBUG`` is set to anything but ``""`` or ``0``."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def exception_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (the type alone for an empty message)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def warn(message: str) -> None:
    """Tell the user something that does not stop the work (one ``Warning:`` line)."""
    warnings.warn(message, GameadaptWarning, stacklevel=2)


def note(message: str) -> None:
    """Tell the user something informational (one ``Note:`` line)."""
    warnings.warn(message, GameadaptNote, stacklevel=2)
