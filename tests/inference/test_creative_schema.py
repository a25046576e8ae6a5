from __future__ import annotations

import math
from typing import Any

import pytest

from creative_schema import MAX_BODY_CHARS, MAX_HEADLINE_CHARS, Creative, InvalidCreative, parse_creative


def test_valid_creative_parses_with_normalised_fields(creative: dict[str, Any]) -> None:
    creative["landing_domain"] = "Shop.TrailPeak.com"
    parsed = parse_creative(creative, 0)
    assert isinstance(parsed, Creative)
    assert parsed.landing_domain == "shop.trailpeak.com"
    assert parsed.image.width == 1080
    assert parsed.metadata.historical_ctr == pytest.approx(0.041)


def test_creative_id_is_optional(creative: dict[str, Any]) -> None:
    del creative["creative_id"]
    assert parse_creative(creative, 0).creative_id is None


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        obj = obj[key]
    obj[leaf] = value


def _delete(obj: dict[str, Any], path: str) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        obj = obj[key]
    del obj[leaf]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("headline", 42, "expected a string, got a number"),
        ("headline", "x" * (MAX_HEADLINE_CHARS + 1), f"the limit is {MAX_HEADLINE_CHARS}"),
        ("body", "x" * (MAX_BODY_CHARS + 1), f"the limit is {MAX_BODY_CHARS}"),
        ("channel", "radio", "'radio' is not one of"),
        ("call_to_action", "buy", "'buy' is not one of"),
        ("landing_domain", "not a domain", "is not a host name"),
        ("image", [1, 2], "expected an object, got a list"),
        ("image.width", 10.5, "expected a whole number of pixels"),
        ("image.width", 0, "outside the allowed range"),
        ("image.height", True, "expected a number, got a boolean"),
        ("image.text_area_ratio", math.nan, "must be a finite number"),
        ("image.text_area_ratio", math.inf, "must be a finite number"),
        ("image.text_area_ratio", 1.5, "outside the allowed range [0, 1]"),
        ("image.dominant_colors", [], "non-empty list"),
        ("image.dominant_colors", ["#fff"], "expected a colour like"),
        ("image.dominant_colors", ["#000000"] * 9, "the limit is 8"),
        ("metadata.historical_ctr", "0.02", "expected a number, got a string"),
        ("metadata.daily_budget_usd", -1, "outside the allowed range"),
        ("metadata", None, "expected an object, got null"),
    ],
)
def test_invalid_field_is_named_with_its_instance_index(
    creative: dict[str, Any], field: str, value: Any, problem: str
) -> None:
    _set(creative, field, value)
    with pytest.raises(InvalidCreative) as raised:
        parse_creative(creative, 7)
    assert raised.value.index == 7
    assert raised.value.field.startswith(field)
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"instances[7].{field}")


@pytest.mark.parametrize("field", ["headline", "body", "channel", "image.width", "metadata.historical_ctr"])
def test_missing_required_field_is_named(creative: dict[str, Any], field: str) -> None:
    _delete(creative, field)
    with pytest.raises(InvalidCreative, match=rf"instances\[3\]\.{field}: required field is missing"):
        parse_creative(creative, 3)


def test_unknown_field_is_rejected_so_typos_do_not_pass_silently(creative: dict[str, Any]) -> None:
    creative["headlines"] = "typo"
    with pytest.raises(InvalidCreative, match=r"instances\[0\]\.headlines: unknown field"):
        parse_creative(creative, 0)


def test_instance_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(InvalidCreative, match=r"instances\[2\]\.<instance>: expected an object, got a string"):
        parse_creative("headline", 2)
