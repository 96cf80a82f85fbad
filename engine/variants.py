"""Variant spaces: the levels and rules a game can be played with.

A *variant* is a JSON-safe dict with two parts::

    {"level": {"seed": 12, "size": 7}, "rules": {"slip": 0.1, "controls": "mirrored"}}

Each parameter has a domain (:class:`Choice`, :class:`IntRange`, :class:`FloatRange`,
:class:`Text`), a default and a description. A parameter may declare a *train* and a *test*
sub-domain: these define the reproducible train / held-out split that sampling draws from.
Parameters without a split are held at their default when sampling (they can still be set
explicitly).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import VariantError
from .textfiles import load_json, load_toml, parse_json

Variant = dict[str, dict[str, Any]]
Part = Literal["level", "rules"]
PARTS: tuple[Part, ...] = ("level", "rules")
Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")


def as_split(text: str) -> Split:
    """``text`` as a :data:`Split` (a one-line :class:`VariantError` for anything else)."""
    for split in SPLITS:
        if text == split:
            return split
    raise VariantError(f"invalid split {text!r}: use train or test")


class Domain:
    """The set of values a variant parameter may take."""

    def check(self, value: Any, name: str) -> Any:
        """Return ``value`` normalised to this domain, or raise :class:`VariantError`."""
        raise NotImplementedError

    def parse(self, text: str, name: str) -> Any:
        """Parse a command-line string into a checked value."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        """Draw a value uniformly from the domain."""
        raise NotImplementedError

    def contains(self, other: Domain) -> bool:
        """True if every value of ``other`` is in this domain."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human-readable form, e.g. ``int 0..99``."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe description."""
        raise NotImplementedError


@dataclass(frozen=True)
class Choice(Domain):
    """One of a fixed tuple of strings, ints or floats."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("Choice needs at least one value")

    def check(self, value: Any, name: str) -> Any:
        for allowed in self.values:
            if type(value) is type(allowed) and value == allowed:
                return value
        raise VariantError(f"{name}: {value!r} is not one of {', '.join(map(repr, self.values))}")

    def parse(self, text: str, name: str) -> Any:
        for allowed in self.values:
            if str(allowed) == text:
                return allowed
        raise VariantError(f"{name}: {text!r} is not one of {', '.join(map(str, self.values))}")

    def sample(self, rng: random.Random) -> Any:
        return self.values[rng.randrange(len(self.values))]

    def contains(self, other: Domain) -> bool:
        return isinstance(other, Choice) and set(other.values) <= set(self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def to_json(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}


@dataclass(frozen=True)
class IntRange(Domain):
    """An integer in ``[low, high]`` (both inclusive)."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"IntRange low {self.low} > high {self.high}")

    def check(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise VariantError(f"{name}: expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise VariantError(f"{name}: {value} is outside {self.low}..{self.high}")
        return value

    def parse(self, text: str, name: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise VariantError(f"{name}: expected an integer, got {text!r}") from None
        return self.check(value, name)

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)

    def contains(self, other: Domain) -> bool:
        if isinstance(other, IntRange):
            return self.low <= other.low and other.high <= self.high
        if isinstance(other, Choice):
            return all(_is_int(v) and self.low <= v <= self.high for v in other.values)
        return False

    def describe(self) -> str:
        return f"int {self.low}..{self.high}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class FloatRange(Domain):
    """A finite float in ``[low, high]`` (both inclusive). Integers are accepted as floats."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise ValueError(f"bad FloatRange {self.low}..{self.high}")

    def check(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise VariantError(f"{name}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise VariantError(f"{name}: {value} is outside {self.low}..{self.high}")
        return value

    def parse(self, text: str, name: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise VariantError(f"{name}: expected a number, got {text!r}") from None
        return self.check(value, name)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def contains(self, other: Domain) -> bool:
        if isinstance(other, FloatRange):
            return self.low <= other.low and other.high <= self.high
        if isinstance(other, Choice):
            return all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and self.low <= v <= self.high
                for v in other.values
            )
        return False

    def describe(self) -> str:
        return f"float {self.low:g}..{self.high:g}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Text(Domain):
    """A string of at most ``max_length`` characters that ``rule`` accepts; ``""`` means unset.

    ``rule`` (the game's parser) returns a non-empty text normalised, or raises
    :class:`ValueError` naming the problem (the parameter's name is put in front); the empty
    text is always in the domain and is what sampling gives (text parameters are set
    explicitly, never drawn). ``form`` says in a few words what the text holds.
    """

    max_length: int
    rule: Callable[[str], str]
    form: str

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"Text max_length must be >= 1, got {self.max_length}")

    def check(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise VariantError(f"{name}: expected a string, got {value!r}")
        if len(value) > self.max_length:
            raise VariantError(f"{name}: {len(value)} characters, more than the limit of "
                               f"{self.max_length}")
        if not value:
            return value
        try:
            return self.rule(value)
        except ValueError as exc:
            raise VariantError(f"{name}: {exc}") from None

    def parse(self, text: str, name: str) -> str:
        return self.check(text, name)

    def sample(self, rng: random.Random) -> str:
        return ""

    def contains(self, other: Domain) -> bool:
        return other == self or (isinstance(other, Choice) and all(
            isinstance(v, str) and self._accepts(v) for v in other.values))

    def _accepts(self, value: str) -> bool:
        try:
            self.check(value, "text")
        except VariantError:
            return False
        return True

    def describe(self) -> str:
        return f"text: {self.form}"

    def to_json(self) -> dict[str, Any]:
        return {"type": "text", "max_length": self.max_length, "form": self.form}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Param:
    """One variant parameter.

    ``train`` / ``test`` are optional sub-domains of ``domain`` that sampling draws from for
    each split. Parameters without them stay at ``default`` when a split is sampled.
    """

    name: str
    part: Part
    domain: Domain
    default: Any
    description: str
    train: Domain | None = None
    test: Domain | None = None

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"{self.name}: part must be 'level' or 'rules', not {self.part!r}")
        try:
            default = self.domain.check(self.default, self.name)
        except VariantError:
            raise VariantError(f"{self.part}.{self.name}: the declared default {self.default!r} "
                               f"is outside its domain ({self.domain.describe()})") from None
        object.__setattr__(self, "default", default)
        if (self.train is None) != (self.test is None):
            raise ValueError(f"{self.name}: give both a train and a test domain, or neither")
        for split in (self.train, self.test):
            if split is not None and not self.domain.contains(split):
                raise ValueError(f"{self.name}: split domain {split.describe()} is not inside "
                                 f"{self.domain.describe()}")

    @property
    def is_split(self) -> bool:
        """True if the parameter varies between train and held-out variants."""
        return self.train is not None

    def split_domain(self, split: Split) -> Domain | None:
        """The sub-domain sampled for ``split`` (None: held at the default)."""
        return self.train if split == "train" else self.test

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "part": self.part,
            "domain": self.domain.to_json(),
            "default": self.default,
            "description": self.description,
        }
        if self.is_split:
            data["train"] = self.train.to_json() if self.train else None
            data["test"] = self.test.to_json() if self.test else None
        return data


@dataclass(frozen=True)
class VariantSpace:
    """All parameters of a game, with validation, parsing and seeded split sampling."""

    params: tuple[Param, ...]
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __init__(self, params: Iterable[Param]) -> None:
        params = tuple(params)
        by_name: dict[str, Param] = {}
        for param in params:
            if param.name in by_name:
                raise ValueError(f"duplicate variant parameter {param.name!r}")
            by_name[param.name] = param
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "by_name", by_name)

    def names(self, part: Part) -> list[str]:
        """Parameter names of one part, in declaration order."""
        return [p.name for p in self.params if p.part == part]

    def default(self) -> Variant:
        """The variant with every parameter at its default."""
        return {part: {p.name: p.default for p in self.params if p.part == part} for part in PARTS}

    def validate(self, variant: Mapping[str, Any], *, partial: bool = True) -> Variant:
        """Check a variant and return it complete and normalised.

        Missing parameters take their defaults unless ``partial`` is False. Raises
        :class:`VariantError` for an unknown part or key, a wrong type or an out-of-domain value.
        """
        if not isinstance(variant, Mapping):
            raise VariantError(f"a variant must be an object with 'level' and 'rules', "
                               f"got {type(variant).__name__}")
        unknown_parts = set(variant) - set(PARTS)
        if unknown_parts:
            raise VariantError(f"unknown variant part(s) {', '.join(sorted(map(str, unknown_parts)))}; "
                               f"expected 'level' and 'rules'")
        result = self.default()
        for part in PARTS:
            values = variant.get(part, {})
            if not isinstance(values, Mapping):
                raise VariantError(f"variant {part!r} must be an object, got {type(values).__name__}")
            for key, value in values.items():
                param = self.by_name.get(key)
                if param is None or param.part != part:
                    raise VariantError(self._unknown_key_message(f"{part}.{key}"))
                result[part][key] = param.domain.check(value, f"{part}.{key}")
            if not partial:
                missing = [n for n in self.names(part) if n not in values]
                if missing:
                    raise VariantError(f"variant is missing {part}.{missing[0]}")
        return result

    def parse_assignments(self, assignments: Sequence[str], base: Mapping[str, Any] | None = None
                          ) -> Variant:
        """Apply ``key=value`` strings (``seed=3`` or ``level.seed=3``) to ``base`` (default)."""
        variant = self.validate(base or {})
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = key.strip()
            if not sep or not key:
                raise VariantError(f"expected key=value, got {assignment!r}")
            param = self._lookup(key)
            variant[param.part][param.name] = param.domain.parse(text.strip(), f"{param.part}.{param.name}")
        return variant

    def load_file(self, path: str | Path) -> Variant:
        """Read and validate a variant from a ``.json`` or ``.toml`` file (UTF-8, a BOM
        accepted, bounded in size and nesting; the top level must be a table/object)."""
        path = Path(path)
        language = path.suffix[1:] or "JSON"  # as the user named it
        if path.suffix.lower() == ".toml":
            data: Any = load_toml(path, "variant file", VariantError, language)
        else:
            data = load_json(path, "variant file", VariantError, language=language)
        if not isinstance(data, dict):
            raise VariantError(f"variant file {path} must hold a table/object of parts, got "
                               f"{type(data).__name__}")
        return self.validate(data)

    def sample(self, split: Split, n: int, seed: int) -> list[Variant]:
        """Draw ``n`` variants from ``split``; the same seed gives the same variants."""
        if split not in SPLITS:
            raise VariantError(f"split must be 'train' or 'test', not {split!r}")
        if n < 0:
            raise VariantError(f"number of variants must be >= 0, got {n}")
        rng = random.Random(f"gameadapt-variants/{split}/{seed}")
        variants = []
        for _ in range(n):
            variant = self.default()
            for param in self.params:
                domain = param.split_domain(split)
                if domain is not None:
                    variant[param.part][param.name] = param.domain.check(domain.sample(rng), param.name)
            variants.append(variant)
        return variants

    def split_params(self) -> list[Param]:
        """The parameters that differ between the train and the held-out split."""
        return [p for p in self.params if p.is_split]

    def to_json(self) -> dict[str, Any]:
        return {"params": [p.to_json() for p in self.params]}

    def _lookup(self, key: str) -> Param:
        part, dot, name = key.rpartition(".")
        param = self.by_name.get(name if dot else key)
        if param is None or (dot and part != param.part):
            raise VariantError(self._unknown_key_message(key))
        return param

    def _unknown_key_message(self, key: str) -> str:
        known = ", ".join(f"{p.part}.{p.name}" for p in self.params)
        return f"unknown variant parameter {key!r} (known: {known})"


def variant_to_json(variant: Variant) -> str:
    """Canonical JSON text of a variant (sorted keys): equal variants give equal text."""
    return json.dumps(variant, sort_keys=True, separators=(",", ":"))


def variant_from_json(text: str, space: VariantSpace) -> Variant:
    """Parse and validate JSON text produced by :func:`variant_to_json`."""
    return space.validate(parse_json(text, "variant", VariantError))
