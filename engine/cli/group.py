"""The ``gameadapt`` click group class: bad input as one line, warnings as one line, help on bare groups."""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import click

from ..errors import GameadaptError, GameadaptNote, GameadaptWarning, debug_enabled, warn
from ..host.registry import get_registry
from ..train.stopping import EXIT_INTERRUPTED


class OneLineErrorGroup(click.Group):
    """A click group that reports bad input as a single line instead of usage or a traceback.

    Bare ``gameadapt`` or ``gameadapt GROUP`` prints the group's help and exits 0 (click
    8.2+ would exit 2). :func:`gameadapt.errors.warn` / ``note`` lines are printed once each
    as ``Warning:`` / ``Note:``. With ``GAMEADAPT_DEBUG=1`` errors also show their traceback.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        _refuse_version_with_arguments(sys.argv[1:] if args is None else list(args))
        with warnings.catch_warnings():
            _print_warnings_as_lines()
            for line in get_registry().refused_commands:
                warn(line)
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                      **extra)
            except _NoArgsIsHelp as exc:
                ctx = getattr(exc, "ctx", None)
                click.echo(ctx.get_help() if ctx else self.get_help(click.Context(self)))
                sys.exit(0)
            except GameadaptError as exc:
                _fail(str(exc), getattr(exc, "exit_code", 1))
            except click.ClickException as exc:
                _fail(exc.format_message(), exc.exit_code)
            except (click.Abort, EOFError, KeyboardInterrupt) as exc:
                ctrl_c = isinstance(exc, KeyboardInterrupt) or \
                    isinstance(exc.__cause__, KeyboardInterrupt)
                _fail("aborted", EXIT_INTERRUPTED if ctrl_c else 1)
        sys.exit(result if isinstance(result, int) else 0)


# click 8.2+ raises this for a group called without a subcommand; older clicks print the help.
_NoArgsIsHelp: type[click.ClickException] = getattr(click.exceptions, "NoArgsIsHelpError",
                                                    type("_Never", (click.ClickException,), {}))


def _print_warnings_as_lines() -> None:
    """Show gameadapt's warnings and notes as one line each, each message once."""
    shown: set[str] = set()
    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if not issubclass(category, GameadaptWarning):
            original(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            label = "Note" if issubclass(category, GameadaptNote) else "Warning"
            click.echo(f"{label}: {text}", err=True)

    warnings.showwarning = show
    warnings.simplefilter("always", GameadaptWarning)


def _refuse_version_with_arguments(args: list[str]) -> None:
    """``--version`` prints the version only: anything else given with it is a usage error
    (click's eager option would print the version and exit 0)."""
    if "--version" in args[:1] and len(args) > 1:
        _fail(f"--version takes no other arguments, got {' '.join(args[1:])!r}", 2)


def _fail(message: str, code: int) -> None:
    if debug_enabled() and sys.exc_info()[0] is not None:
        traceback.print_exc()
    first_line = " ".join(message.split("\n")).strip()
    click.echo(f"Error: {first_line}", err=True)
    sys.exit(code)
