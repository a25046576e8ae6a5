from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import numpy as np
import pytest

from creative_schema import (
    CHANNELS,
    HOST_NAME,
    MAX_BODY_CHARS,
    MAX_HEADLINE_CHARS,
    CreativeBatch,
    InvalidCreative,
    InvalidRequest,
    _first_bad_domain,
    _first_bad_domain_slowly,
    decode_json,
    decode_jsonlines,
)


def _at(index: int, creative: Any, valid: dict[str, Any]) -> bytes:
    """A request whose instance `index` is `creative`, after `index` valid ones."""
    return json.dumps({"instances": [valid] * index + [creative]}).encode()


def test_valid_creatives_decode_into_structs_and_columns(creative: dict[str, Any]) -> None:
    second = {**copy.deepcopy(creative), "channel": "video", "call_to_action": "watch_more"}
    second["image"]["dominant_colors"] = ["#FF0000"]
    batch = decode_json(json.dumps({"instances": [creative, second]}))
    assert [c.creative_id for c in batch] == [creative["creative_id"], creative["creative_id"]]
    assert batch.channel.tolist() == [CHANNELS.index(creative["channel"]), 3]
    assert batch.call_to_action.tolist()[1] == 7
    image, meta = creative["image"], creative["metadata"]
    assert batch.numbers[0].tolist() == [
        image["width"],
        image["height"],
        image["text_area_ratio"],
        meta["advertiser_tenure_days"],
        meta["daily_budget_usd"],
        meta["historical_ctr"],
    ]
    assert batch.color_counts.tolist() == [len(image["dominant_colors"]), 1]
    assert batch.colors[-1].tolist() == [1.0, 0.0, 0.0]


def test_an_upper_case_landing_domain_is_a_host_name(creative: dict[str, Any]) -> None:
    creative["landing_domain"] = "Shop.TrailPeak.COM"
    assert decode_json(json.dumps(creative)).creatives[0].landing_domain == "Shop.TrailPeak.COM"


def test_creative_id_is_optional(creative: dict[str, Any]) -> None:
    del creative["creative_id"]
    assert decode_json(json.dumps(creative)).creatives[0].creative_id is None


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
        ("landing_domain", "shop.-trailpeak.com", "is not a host name"),
        ("landing_domain", "shop.trailpeak.c0m", "is not a host name"),
        ("image", [1, 2], "expected an object, got a list"),
        ("image.width", 10.5, "expected a whole number of pixels"),
        ("image.height", 3.25, "expected a whole number of pixels"),
        ("image.width", 0, "outside the allowed range"),
        ("image.height", True, "expected a number, got a boolean"),
        ("image.text_area_ratio", 1.5, "outside the allowed range [0, 1]"),
        ("image.dominant_colors", [], "non-empty list"),
        ("image.dominant_colors", "#ffffff", "non-empty list"),
        ("image.dominant_colors", ["#fff"], "expected a colour like"),
        ("image.dominant_colors", ["#00000g"], "expected a colour like '#1a73e8', got '#00000g'"),
        ("image.dominant_colors", ["#ffffff", "1234567"], "expected a colour like '#1a73e8', got '1234567'"),
        ("image.dominant_colors", ["#12 456"], "expected a colour like"),
        ("image.dominant_colors", ["#ffff\u00e9f"], "expected a colour like"),
        ("image.dominant_colors", ["#000000"] * 9, "the limit is 8"),
        ("metadata.historical_ctr", "0.02", "expected a number, got a string"),
        ("metadata.daily_budget_usd", -1, "outside the allowed range"),
        ("metadata", None, "expected an object, got null"),
    ],
)
def test_invalid_field_is_named_with_its_instance_index(
    creative: dict[str, Any], field: str, value: Any, problem: str
) -> None:
    valid = copy.deepcopy(creative)
    _set(creative, field, value)
    with pytest.raises(InvalidCreative) as raised:
        decode_json(_at(7, creative, valid))
    assert raised.value.index == 7
    assert raised.value.field.startswith(field)
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"instances[7].{field}")


def test_a_bad_colour_is_named_by_its_position_in_the_list(creative: dict[str, Any]) -> None:
    valid = copy.deepcopy(creative)
    creative["image"]["dominant_colors"] = ["#ffffff", "#000000", "#zzzzzz"]
    with pytest.raises(InvalidCreative, match=r"instances\[2\]\.image\.dominant_colors\[2\]: .*'#zzzzzz'"):
        decode_json(_at(2, creative, valid))


def test_a_number_too_large_for_a_float_is_out_of_range(creative: dict[str, Any]) -> None:
    body = json.dumps(creative).replace(json.dumps(creative["metadata"]["historical_ctr"]), "1e400", 1)
    with pytest.raises(InvalidCreative, match=r"instances\[0\]\.metadata\.historical_ctr: .*outside the allowed range"):
        decode_json(body)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json(creative: dict[str, Any], constant: str) -> None:
    body = json.dumps(creative).replace(json.dumps(creative["image"]["text_area_ratio"]), constant, 1)
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        decode_json(body)


@pytest.mark.parametrize("field", ["headline", "body", "channel", "image.width", "metadata.historical_ctr"])
def test_missing_required_field_is_named(creative: dict[str, Any], field: str) -> None:
    valid = copy.deepcopy(creative)
    _delete(creative, field)
    with pytest.raises(InvalidCreative, match=rf"instances\[3\]\.{field}: required field is missing"):
        decode_json(_at(3, creative, valid))


def test_unknown_field_is_rejected_so_typos_do_not_pass_silently(creative: dict[str, Any]) -> None:
    creative["headlines"] = "typo"
    with pytest.raises(InvalidCreative, match=r"instances\[0\]\.headlines: unknown field"):
        decode_json(json.dumps(creative))


def test_instance_that_is_not_an_object_is_rejected(creative: dict[str, Any]) -> None:
    with pytest.raises(InvalidCreative, match=r"instances\[2\]\.<instance>: expected an object, got a string"):
        decode_json(_at(2, "headline", creative))


def test_jsonlines_errors_name_the_line_counting_blank_lines(creative: dict[str, Any]) -> None:
    bad = {**creative, "channel": "radio"}
    lines = [json.dumps(creative), "", "   ", json.dumps(creative), json.dumps(bad)]
    with pytest.raises(InvalidCreative, match=r"instances\[4\]\.channel"):
        decode_jsonlines("\n".join(lines).encode())
    bad_color = copy.deepcopy(creative)
    bad_color["image"]["dominant_colors"] = ["#nothex"]
    lines[-1] = json.dumps(bad_color)
    with pytest.raises(InvalidCreative, match=r"instances\[4\]\.image\.dominant_colors\[0\]"):
        decode_jsonlines("\n".join(lines).encode())
    lines[-1] = "{"
    with pytest.raises(InvalidRequest, match="line 5 is not valid JSON"):
        decode_jsonlines("\n".join(lines).encode())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"instances": {}}', 'must be {"instances": [creative, ...]} with no other keys'),
        (b'{"instances": [], "model": "v1"}', "with no other keys"),
        (b'{"unknown": 1, ', "not valid JSON"),
        (b'{"instances": [{"headline": "\xff"}]}', "not UTF-8 (byte 29 of 34)"),
        (b"[" * 10_000 + b"]" * 10_000, "not valid JSON"),
    ],
)
def test_a_body_of_the_wrong_shape_is_named(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        decode_json(body)


def test_a_lone_surrogate_in_a_text_body_is_an_invalid_request(creative: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        decode_json(json.dumps(creative).replace("Free", "Fr\ud800ee"))


def test_the_empty_batch_has_empty_columns() -> None:
    batch = decode_json(b'{"instances": []}')
    assert len(batch) == 0
    assert batch.numbers.shape == (0, 6)
    assert batch.colors.shape == (0, 3)
    assert isinstance(batch, CreativeBatch)


def _random_name(rng: random.Random) -> str:
    if rng.random() < 0.6:
        labels = ["".join(rng.choice("ab9-") for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(1, 4))]
        labels.append("".join(rng.choice("abc1") for _ in range(rng.randint(0, 3))))
        if rng.random() < 0.05:
            labels[0] = "a" * rng.randint(62, 65)
        return ".".join(labels)
    return "".join(rng.choice("abcXYZ09-._\u00e9\u212a\0") for _ in range(rng.randint(0, 12)))


def test_the_batch_domain_check_refuses_exactly_what_the_host_name_rule_refuses() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        names = [_random_name(rng) for _ in range(rng.randint(1, 5))]
        first_bad = next((i for i, n in enumerate(names) if not (n.isascii() and HOST_NAME.fullmatch(n.lower()))), None)
        assert _first_bad_domain(names) == first_bad, names
        assert _first_bad_domain_slowly(names) == first_bad, names


def test_a_kelvin_sign_is_not_a_k_in_a_host_name(creative: dict[str, Any]) -> None:
    creative["landing_domain"] = "\u212aayak.com"  # lower-cases to "kayak.com" in Python, but is not ASCII
    with pytest.raises(InvalidCreative, match="is not a host name"):
        decode_json(json.dumps(creative))
    with pytest.raises(InvalidCreative, match="is not a host name"):
        decode_json(json.dumps({"instances": [creative] * 100}))


def test_colours_parse_to_rgb_in_unit_range(creative: dict[str, Any]) -> None:
    creative["image"]["dominant_colors"] = ["#000000", "#FFFFFF", "#1a73e8"]
    colors = decode_json(json.dumps(creative)).colors
    assert np.allclose(colors, np.array([[0, 0, 0], [1, 1, 1], [0x1A / 255, 0x73 / 255, 0xE8 / 255]]))
