"""The creative that clients send for scoring, and its validation.

A creative is a JSON object::

    {
      "creative_id": "c-1042",                      # optional, echoed back with the score
      "headline": "Free shipping on running shoes",
      "body": "New arrivals every week. Order today.",
      "call_to_action": "shop_now",
      "channel": "social",
      "landing_domain": "shop.trailpeak.com",
      "image": {"width": 1080, "height": 1080, "text_area_ratio": 0.12,
                "dominant_colors": ["#1a73e8", "#ffffff"]},
      "metadata": {"advertiser_tenure_days": 420, "daily_budget_usd": 150.0, "historical_ctr": 0.021}
    }

Every rule below is enforced by `parse_creative`, which raises `InvalidCreative` naming the instance index and
the field path, so a client can fix its request without reading server logs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

CHANNELS = ("search", "social", "display", "video")
CALLS_TO_ACTION = (
    "shop_now",
    "learn_more",
    "sign_up",
    "download",
    "get_offer",
    "book_now",
    "contact_us",
    "watch_more",
)

MAX_HEADLINE_CHARS = 200
MAX_BODY_CHARS = 2_000
MAX_DOMAIN_CHARS = 253
MAX_CREATIVE_ID_CHARS = 128
MAX_DOMINANT_COLORS = 8
MAX_IMAGE_SIDE_PX = 20_000

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_FIELDS = frozenset(
    {
        "creative_id",
        "headline",
        "body",
        "call_to_action",
        "channel",
        "landing_domain",
        "image",
        "metadata",
    }
)


class InvalidCreative(ValueError):
    """A creative that breaks the schema; `index` and `field` locate the problem."""

    def __init__(self, index: int, field: str, problem: str) -> None:
        self.index = index
        self.field = field
        self.problem = problem
        super().__init__(f"instances[{index}].{field}: {problem}")


@dataclass(frozen=True, slots=True)
class Image:
    width: int
    height: int
    text_area_ratio: float
    dominant_colors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Metadata:
    advertiser_tenure_days: float
    daily_budget_usd: float
    historical_ctr: float


@dataclass(frozen=True, slots=True)
class Creative:
    creative_id: str | None
    headline: str
    body: str
    call_to_action: str
    channel: str
    landing_domain: str
    image: Image
    metadata: Metadata


def parse_creative(obj: Any, index: int) -> Creative:
    """Validate one decoded JSON value and return it as a `Creative`.

    Args:
        obj: the decoded JSON value of one instance.
        index: its position in the request, used in error messages.

    Returns:
        Creative: the validated creative.

    Raises:
        InvalidCreative: naming the index, the field and the rule it breaks.
    """
    fields = _Fields(obj, index, "")
    unknown = sorted(set(fields.obj) - _FIELDS)
    if unknown:
        raise InvalidCreative(index, unknown[0], f"unknown field; allowed fields are {sorted(_FIELDS)}")
    return Creative(
        creative_id=fields.optional_text("creative_id", MAX_CREATIVE_ID_CHARS),
        headline=fields.text("headline", MAX_HEADLINE_CHARS),
        body=fields.text("body", MAX_BODY_CHARS),
        call_to_action=fields.choice("call_to_action", CALLS_TO_ACTION),
        channel=fields.choice("channel", CHANNELS),
        landing_domain=fields.domain("landing_domain"),
        image=_parse_image(fields.nested("image")),
        metadata=_parse_metadata(fields.nested("metadata")),
    )


def _parse_image(fields: _Fields) -> Image:
    return Image(
        width=fields.integer("width", 1, MAX_IMAGE_SIDE_PX),
        height=fields.integer("height", 1, MAX_IMAGE_SIDE_PX),
        text_area_ratio=fields.number("text_area_ratio", 0.0, 1.0),
        dominant_colors=fields.colors("dominant_colors"),
    )


def _parse_metadata(fields: _Fields) -> Metadata:
    return Metadata(
        advertiser_tenure_days=fields.number("advertiser_tenure_days", 0.0, 36_500.0),
        daily_budget_usd=fields.number("daily_budget_usd", 0.0, 10_000_000.0),
        historical_ctr=fields.number("historical_ctr", 0.0, 1.0),
    )


class _Fields:
    """Typed accessors over one JSON object that raise `InvalidCreative` with the full field path."""

    def __init__(self, obj: Any, index: int, prefix: str) -> None:
        if not isinstance(obj, dict):
            raise InvalidCreative(index, prefix.rstrip(".") or "<instance>", f"expected an object, got {_kind(obj)}")
        self.obj: dict[str, Any] = obj
        self.index = index
        self.prefix = prefix

    def fail(self, name: str, problem: str) -> InvalidCreative:
        return InvalidCreative(self.index, self.prefix + name, problem)

    def get(self, name: str) -> Any:
        if name not in self.obj:
            raise self.fail(name, "required field is missing")
        return self.obj[name]

    def nested(self, name: str) -> _Fields:
        return _Fields(self.get(name), self.index, f"{self.prefix}{name}.")

    def text(self, name: str, max_chars: int) -> str:
        value = self.get(name)
        if not isinstance(value, str):
            raise self.fail(name, f"expected a string, got {_kind(value)}")
        if len(value) > max_chars:
            raise self.fail(name, f"is {len(value)} characters long; the limit is {max_chars}")
        return value

    def optional_text(self, name: str, max_chars: int) -> str | None:
        return None if self.obj.get(name) is None else self.text(name, max_chars)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, 64)
        if value not in allowed:
            raise self.fail(name, f"{value!r} is not one of {list(allowed)}")
        return value

    def domain(self, name: str) -> str:
        value = self.text(name, MAX_DOMAIN_CHARS).lower()
        if not _DOMAIN.match(value):
            raise self.fail(name, f"{value!r} is not a host name such as 'shop.example.com'")
        return value

    def number(self, name: str, low: float, high: float) -> float:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value}")
        if not low <= value <= high:
            raise self.fail(name, f"{value} is outside the allowed range [{low:g}, {high:g}]")
        return float(value)

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.number(name, low, high)
        if not value.is_integer():
            raise self.fail(name, f"expected a whole number of pixels, got {value}")
        return int(value)

    def colors(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        if not isinstance(value, list) or not value:
            raise self.fail(name, f"expected a non-empty list of '#rrggbb' colours, got {_kind(value)}")
        if len(value) > MAX_DOMINANT_COLORS:
            raise self.fail(name, f"has {len(value)} colours; the limit is {MAX_DOMINANT_COLORS}")
        for position, color in enumerate(value):
            if not isinstance(color, str) or not _COLOR.match(color):
                raise self.fail(f"{name}[{position}]", f"expected a colour like '#1a73e8', got {color!r}")
        return tuple(color.lower() for color in value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
