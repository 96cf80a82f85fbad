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


LR_MAX = 10.0  # learning rates lie in (0, LR_MAX]
LOG_STD_RANGE = (-20.0, 2.0)  # init_log_std
COEF_MAX = 1000.0  # loss weights (value, entropy, KL) lie in [0, COEF_MAX]
NORM_MAX = 1e6  # max_grad_norm, target_kl, baseline_ridge lie in [0, NORM_MAX]
MAX_EPOCHS = 1000  # (outer_)epochs
MAX_MINIBATCHES = 10_000  # (outer_)minibatches


def learning_rate(name: str, value: float) -> Check:
    """The rule of a learning rate: in (0, LR_MAX]."""
    return (name, 0 < value <= LR_MAX, f"must be in (0, {LR_MAX:g}]")


def within(name: str, value: float, low: float, high: float) -> Check:
    """The rule of a bounded number: in [low, high]."""
    return (name, low <= value <= high, f"must be from {low:g} to {high:g}")


def common_checks(config: Any, epochs: str, minibatches: str) -> list[Check]:
    """The rules every family shares: init_log_std, the epochs and minibatches options
    (named ``epochs`` / ``minibatches``), max_grad_norm, gamma and gae_lambda."""
    return [
        within("init_log_std", config.init_log_std, *LOG_STD_RANGE),
        within(epochs, getattr(config, epochs), 1, MAX_EPOCHS),
        within(minibatches, getattr(config, minibatches), 1, MAX_MINIBATCHES),
        ("clip", 0 < config.clip < 1, "must be in (0, 1)"),
        within("max_grad_norm", config.max_grad_norm, 0, NORM_MAX),
        ("gamma", 0 < config.gamma <= 1, "must be in (0, 1]"),
        within("gae_lambda", config.gae_lambda, 0, 1),
    ]


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
            return tuple(_integer(item) for item in items if str(item).strip())
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise ValueError
        converted = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise GameadaptError(f"invalid algorithm option {name}={value!r}: "
                             f"expected {kind.__name__}") from None
    if isinstance(converted, float) and not math.isfinite(converted):
        raise GameadaptError(f"invalid algorithm option {name}={value!r}: must be a finite "
                             f"number")
    return converted


def _integer(item: Any) -> int:
    """An int from an int or its text (``2.0``, a bool or a float is refused)."""
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise ValueError(item)
    return int(item)
