"""Variant spaces: validation, parsing, files, seeded split sampling, JSON round trip."""

from __future__ import annotations

import json

import pytest
from gameadapt.errors import VariantError
from gameadapt.variants import (
    Choice,
    FloatRange,
    IntRange,
    Param,
    Text,
    VariantSpace,
    variant_from_json,
    variant_to_json,
)
from hypothesis import given, settings
from hypothesis import strategies as st

SPACE = VariantSpace([
    Param("seed", "level", IntRange(0, 999), 0, "level seed", train=IntRange(0, 99),
          test=IntRange(100, 199)),
    Param("size", "level", IntRange(5, 9), 7, "grid size"),
    Param("controls", "rules", Choice(("normal", "mirrored", "rotated")), "normal", "mapping",
          train=Choice(("normal", "mirrored")), test=Choice(("rotated",))),
    Param("slip", "rules", FloatRange(0.0, 0.5), 0.0, "slip probability",
          train=FloatRange(0.0, 0.2), test=FloatRange(0.2, 0.5)),
    Param("cost", "rules", FloatRange(0.0, 1.0), 0.01, "step cost"),
])


def test_default_is_complete_and_split_into_level_and_rules() -> None:
    assert SPACE.default() == {
        "level": {"seed": 0, "size": 7},
        "rules": {"controls": "normal", "slip": 0.0, "cost": 0.01},
    }


def test_validate_fills_defaults_and_normalises_ints_to_floats() -> None:
    variant = SPACE.validate({"rules": {"slip": 0}})
    assert variant["rules"]["slip"] == 0.0 and isinstance(variant["rules"]["slip"], float)
    assert variant["level"] == {"seed": 0, "size": 7}


@pytest.mark.parametrize(("variant", "message"), [
    ({"level": {"colour": 1}}, "unknown variant parameter 'level.colour'"),
    ({"rules": {"seed": 1}}, "unknown variant parameter 'rules.seed'"),
    ({"physics": {}}, "unknown variant part"),
    ({"level": {"seed": 1000}}, "level.seed: 1000 is outside 0..999"),
    ({"level": {"seed": 1.5}}, "level.seed: expected an integer"),
    ({"level": {"seed": True}}, "level.seed: expected an integer"),
    ({"rules": {"slip": "high"}}, "rules.slip: expected a number"),
    ({"rules": {"slip": float("nan")}}, "rules.slip"),
    ({"rules": {"controls": "upside-down"}}, "rules.controls: 'upside-down' is not one of"),
    ({"level": [1, 2]}, "variant 'level' must be an object"),
    ([1], "a variant must be an object"),
])
def test_invalid_variants_are_rejected_with_one_line(variant: object, message: str) -> None:
    with pytest.raises(VariantError) as info:
        SPACE.validate(variant)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_strict_validation_requires_every_parameter() -> None:
    with pytest.raises(VariantError, match="missing level.size"):
        SPACE.validate({"level": {"seed": 1}, "rules": SPACE.default()["rules"]}, partial=False)


def test_parse_assignments_accepts_short_and_dotted_keys() -> None:
    variant = SPACE.parse_assignments(["seed=12", "rules.slip=0.25", "controls=mirrored"])
    assert variant["level"]["seed"] == 12
    assert variant["rules"]["slip"] == 0.25
    assert variant["rules"]["controls"] == "mirrored"


@pytest.mark.parametrize(("assignment", "message"), [
    ("seed", "expected key=value"),
    ("=3", "expected key=value"),
    ("speed=3", "unknown variant parameter 'speed'"),
    ("rules.seed=3", "unknown variant parameter 'rules.seed'"),
    ("seed=abc", "level.seed: expected an integer"),
    ("slip=0.9", "rules.slip: 0.9 is outside"),
])
def test_parse_assignments_rejects_bad_input(assignment: str, message: str) -> None:
    with pytest.raises(VariantError, match=message):
        SPACE.parse_assignments([assignment])


def test_variant_files_json_and_toml(tmp_path) -> None:
    json_file = tmp_path / "v.json"
    json_file.write_text(json.dumps({"level": {"seed": 5}, "rules": {"controls": "rotated"}}))
    toml_file = tmp_path / "v.toml"
    toml_file.write_text("[level]\nseed = 5\n\n[rules]\ncontrols = \"rotated\"\n")
    assert SPACE.load_file(json_file) == SPACE.load_file(toml_file)
    assert SPACE.load_file(toml_file)["rules"]["controls"] == "rotated"


def test_variant_file_errors(tmp_path) -> None:
    with pytest.raises(VariantError, match="cannot read variant file"):
        SPACE.load_file(tmp_path / "missing.json")
    broken = tmp_path / "broken.toml"
    broken.write_text("[level\nseed = ")
    with pytest.raises(VariantError, match="is not valid toml"):
        SPACE.load_file(broken)
    out_of_domain = tmp_path / "bad.json"
    out_of_domain.write_text('{"level": {"size": 42}}')
    with pytest.raises(VariantError, match="level.size: 42 is outside 5..9"):
        SPACE.load_file(out_of_domain)


def test_sampling_is_seeded_and_respects_the_split() -> None:
    train = SPACE.sample("train", 50, seed=3)
    assert train == SPACE.sample("train", 50, seed=3)
    assert train != SPACE.sample("train", 50, seed=4)
    test = SPACE.sample("test", 50, seed=3)
    assert all(v["level"]["seed"] < 100 and v["rules"]["controls"] != "rotated" for v in train)
    assert all(100 <= v["level"]["seed"] < 200 and v["rules"]["controls"] == "rotated" for v in test)
    assert all(v["rules"]["slip"] >= 0.2 for v in test)
    # parameters without a split stay at their default
    assert {v["level"]["size"] for v in train + test} == {7}
    assert {v["rules"]["controls"] for v in train} == {"normal", "mirrored"}


def test_split_domains_must_lie_inside_the_domain() -> None:
    with pytest.raises(ValueError, match="not inside"):
        Param("x", "rules", IntRange(0, 5), 0, "x", train=IntRange(0, 3), test=IntRange(4, 9))
    with pytest.raises(ValueError, match="both a train and a test"):
        Param("x", "rules", IntRange(0, 5), 0, "x", train=IntRange(0, 3))
    with pytest.raises(VariantError):
        Param("x", "rules", IntRange(0, 5), 7, "x")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**31), split=st.sampled_from(["train", "test"]))
def test_every_sampled_variant_validates_and_round_trips(seed: int, split: str) -> None:
    for variant in SPACE.sample(split, 3, seed):  # type: ignore[arg-type]
        assert SPACE.validate(variant, partial=False) == variant
        text = variant_to_json(variant)
        assert variant_from_json(text, SPACE) == variant
        assert variant_to_json(variant_from_json(text, SPACE)) == text
        assert json.loads(json.dumps(variant)) == variant


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(max_value=-1), st.integers(min_value=1000)))
def test_every_out_of_domain_int_is_rejected(value: int) -> None:
    with pytest.raises(VariantError, match="outside"):
        SPACE.validate({"level": {"seed": value}})
    with pytest.raises(VariantError, match="outside"):
        SPACE.parse_assignments([f"seed={value}"])


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(
    st.floats(max_value=0.0, exclude_max=True),
    st.floats(min_value=0.5, exclude_min=True),
    st.just(float("nan")),
))
def test_every_out_of_domain_float_is_rejected(value: float) -> None:
    with pytest.raises(VariantError):
        SPACE.validate({"rules": {"slip": value}})


@settings(max_examples=100, deadline=None)
@given(value=st.text().filter(lambda s: s not in {"normal", "mirrored", "rotated"}))
def test_every_unknown_choice_is_rejected(value: str) -> None:
    with pytest.raises(VariantError):
        SPACE.validate({"rules": {"controls": value}})


@settings(max_examples=100, deadline=None)
@given(value=st.one_of(st.text(), st.lists(st.integers()), st.none(), st.booleans()))
def test_wrong_types_are_rejected(value: object) -> None:
    with pytest.raises(VariantError):
        SPACE.validate({"level": {"seed": value}})


def test_a_declared_default_outside_its_domain_says_it_is_the_default() -> None:
    with pytest.raises(VariantError) as raised:
        Param("mass1", "rules", FloatRange(0.5, 2.0), 2.5, "pole mass")
    assert str(raised.value) == ("rules.mass1: the declared default 2.5 is outside its domain "
                                 "(float 0.5..2)")
    with pytest.raises(VariantError, match=r"level.map: the declared default 'cave' is outside "
                                           r"its domain \(one of forest, desert\)"):
        Param("map", "level", Choice(("forest", "desert")), "cave", "map")


# -- text parameters -------------------------------------------------------------------------
def upper_word(text: str) -> str:
    """A text rule: letters only, normalised to upper case."""
    if not text.isalpha():
        raise ValueError(f"{text!r} is not a word")
    return text.upper()


WORD = Text(8, upper_word, "a word of letters")
TEXT_SPACE = VariantSpace([Param("name", "level", WORD, "", "a name")])


def test_a_text_domain_checks_and_normalises_with_its_rule() -> None:
    assert TEXT_SPACE.validate({"level": {"name": "abc"}}) == {"level": {"name": "ABC"},
                                                               "rules": {}}
    assert TEXT_SPACE.default() == {"level": {"name": ""}, "rules": {}}
    assert TEXT_SPACE.parse_assignments(["name=xyz"])["level"]["name"] == "XYZ"
    assert WORD.describe() == "text: a word of letters"
    assert WORD.to_json() == {"type": "text", "max_length": 8, "form": "a word of letters"}
    assert TEXT_SPACE.to_json()["params"][0]["domain"]["type"] == "text"
    assert WORD.sample(__import__("random").Random(0)) == ""
    assert WORD.contains(WORD) and WORD.contains(Choice(("ab", "cd")))
    assert not WORD.contains(Choice(("a1",))) and not WORD.contains(IntRange(0, 1))
    assert not WORD.contains(Text(8, str.strip, "other"))
    text = variant_to_json(TEXT_SPACE.validate({"level": {"name": "q"}}))
    assert variant_from_json(text, TEXT_SPACE)["level"]["name"] == "Q"


@pytest.mark.parametrize("value, message", [
    ("a1", "level.name: 'a1' is not a word"),
    ("abcdefghi", "level.name: 9 characters, more than the limit of 8"),
    (3, "level.name: expected a string, got 3"),
    (None, "level.name: expected a string, got None"),
])
def test_a_text_the_rule_refuses_is_one_variant_error_line(value: object, message: str) -> None:
    with pytest.raises(VariantError) as raised:
        TEXT_SPACE.validate({"level": {"name": value}})
    assert str(raised.value) == message


def test_a_text_domain_needs_a_positive_length_limit() -> None:
    with pytest.raises(ValueError, match="max_length"):
        Text(0, upper_word, "nothing")
