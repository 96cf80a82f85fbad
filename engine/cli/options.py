"""Click options and small parsers shared by several commands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import GameadaptError
from ..tables import to_json
from ..variants import Variant, VariantSpace


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON (the ``--json`` form of every listing)."""
    click.echo(to_json(data))


def int_list(text: str, name: str) -> tuple[int, ...]:
    """Comma-separated integers of option ``--name`` (one-line error otherwise)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise GameadaptError(f"--{name} must be comma-separated integers, got {text!r}") from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
variant_options = [
    click.option("--variant", "-v", "assignments", multiple=True, metavar="KEY=VALUE",
                 help="Set a variant parameter (repeatable), e.g. -v slip=0.1 -v level.seed=3."),
    click.option("--variant-file", type=click.Path(dir_okay=False, path_type=Path),
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
