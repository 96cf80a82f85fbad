"""Click options and small parsers shared by several commands."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import GameadaptError
from ..limits import MAX_LIST_ITEMS, MEMORY_FLAG, SEED_MAX, SEED_MIN, ignore_memory_limit
from ..tables import to_json
from ..variants import Variant, VariantSpace


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON (the ``--json`` form of every listing)."""
    click.echo(to_json(data))


def int_list(text: str, name: str, low: int | None = SEED_MIN, high: int = SEED_MAX
             ) -> tuple[int, ...]:
    """At most MAX_LIST_ITEMS comma-separated integers in [low, high] of option ``--name``
    (one-line error otherwise; ``low`` None: the command checks the lower bound)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise GameadaptError(f"--{name} must be comma-separated integers, got {text!r}") from None
    if len(values) > MAX_LIST_ITEMS:
        raise GameadaptError(f"--{name} lists {len(values)} values; at most {MAX_LIST_ITEMS}")
    for value in values:
        if value > high or (low is not None and value < low):
            raise GameadaptError(f"--{name}: {value} is not from {low or 0} to {high}")
    return values


class SeedType(click.ParamType):
    """A seed: an integer from SEED_MIN to SEED_MAX, the same range for every command."""

    name = "seed"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not an integer seed", param, ctx)
        if not SEED_MIN <= number <= SEED_MAX:
            self.fail(f"{number} is not from {SEED_MIN} to {SEED_MAX}", param, ctx)
        return number


SEED = SeedType()


class InputPath(click.Path):
    """A path the command reads (a run, a policy, a file); the empty string is refused
    (``Path("")`` would be the current folder)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("the empty string is not a path", param, ctx)
        if isinstance(value, str) and "\0" in value:
            self.fail(f"{value!r} is not a path: it holds a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class OutputPath(InputPath):
    """A folder (``dir_okay``) or file (``suffix`` required) the command will write, checked
    at parse time, before any work: see :func:`check_output_path`."""

    def __init__(self, folder: bool, suffix: str | None = None) -> None:
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=Path)
        self.folder = folder
        self.suffix = suffix

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        path = super().convert(value, param, ctx)
        try:
            check_output_path(Path(path), self.folder, self.suffix)
        except GameadaptError as exc:
            self.fail(str(exc), param, ctx)
        return path


def check_output_path(path: Path, folder: bool, suffix: str | None = None) -> None:
    """Raise a one-line :class:`GameadaptError` unless ``path`` can be written as a folder
    (``folder``) or a file ending in ``suffix``: not a file where a folder goes (or a
    folder where a file goes), no file among its parents, its first existing ancestor a
    folder this process may write in."""
    if not str(path).strip():
        raise GameadaptError("the empty string is not a path")
    if suffix is not None and path.suffix.lower() != suffix:
        raise GameadaptError(f"{path} must end in {suffix}")
    if path.exists() and path.is_dir() != folder:
        raise GameadaptError(f"{path} is {'a file' if folder else 'a folder'}, not "
                             f"{'a folder' if folder else 'a file'}")
    ancestor = path if folder and path.is_dir() else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GameadaptError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise GameadaptError(f"cannot write {path}: no permission to write in {ancestor}")


def _set_ignore_memory_limit(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Set the contextvar for this command's run only (reset when its context closes)."""
    token = ignore_memory_limit.set(bool(value))
    ctx.call_on_close(lambda: ignore_memory_limit.reset(token))


memory_option = click.option(
    MEMORY_FLAG, is_flag=True, expose_value=False, callback=_set_ignore_memory_limit,
    is_eager=True, help="Run even when the estimated memory exceeds the limit (half of the "
                        "available memory).")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
variant_options = [
    click.option("--variant", "-v", "assignments", multiple=True, metavar="KEY=VALUE",
                 help="Set a variant parameter (repeatable), e.g. -v slip=0.1 -v level.seed=3."),
    click.option("--variant-file", type=InputPath(dir_okay=False, path_type=Path),
                 help="Read the variant from a JSON or TOML file; --variant values override it."),
]


def with_variant_options(func: Any) -> Any:
    """Add ``--variant`` and ``--variant-file`` to a command."""
    for option in reversed(variant_options):
        func = option(func)
    return func


def resolve_variant(space: VariantSpace, assignments: Sequence[str], variant_file: Path | None
                    ) -> Variant:
    """The variant given by an optional file plus ``key=value`` overrides."""
    base = space.load_file(variant_file) if variant_file is not None else None
    return space.parse_assignments(assignments, base)
