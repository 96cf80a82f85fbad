"""Algorithm options: a frozen dataclass of hyper-parameters, parsed from ``-o key=value``.

Every algorithm's config is a dataclass whose defaults give each option's type;
:func:`options_from_mapping` builds one from strings or values (one-line errors for an
unknown key or a bad value) and :func:`check_options` applies its rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from ..errors import GameadaptError


class Options(Protocol):
    """A config dataclass with a ``validate()`` that raises :class:`GameadaptError`."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def validate(self) -> None: ...


ConfigT = TypeVar("ConfigT", bound=Options)
Check = tuple[str, bool, str]  # (option name, whether it holds, the rule in words)


def options_from_mapping(cls: type[ConfigT], values: Mapping[str, Any] | None = None,
                         **overrides: Any) -> ConfigT:
    """A validated ``cls`` from ``values`` (strings are parsed) and keyword overrides."""
    merged = {**(values or {}), **overrides}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(merged) - set(fields))
    if unknown:
        raise GameadaptError(f"unknown algorithm option {unknown[0]!r} "
                             f"(known: {', '.join(fields)})")
    defaults = cls()
    parsed = {name: coerce_option(name, value, type(getattr(defaults, name)))
              for name, value in merged.items()}
    config = cls(**parsed)
    config.validate()  # Literal fields hold one of their values from here on
    return config


def check_options(config: object, checks: Sequence[Check]) -> None:
    """Raise :class:`GameadaptError` naming the first option that breaks its rule (or is
    a non-finite float)."""
    for name, ok, rule in checks:
        value = getattr(config, name)
        finite = not isinstance(value, float) or math.isfinite(value)
        if not (ok and finite):
            raise GameadaptError(f"invalid algorithm option {name}={value!r}: {rule}")


def coerce_option(name: str, value: Any, kind: type) -> Any:
    """``value`` as the option's type (``bool``, ``int``, ``float``, ``str`` or int tuple)."""
    try:
        if kind is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(int(item) for item in items if str(item).strip())
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise GameadaptError(f"invalid algorithm option {name}={value!r}: "
                             f"expected {kind.__name__}") from None
