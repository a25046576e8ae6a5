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

Rules: no other fields; ``headline`` at most 200 characters, ``body`` 2,000, ``creative_id`` 128 (or null);
``call_to_action`` and ``channel`` one of the values below; ``landing_domain`` a host name (letters, digits and
hyphens in dot-separated labels, a letters-only top-level label); ``width`` and ``height`` whole numbers of
pixels in [1, 20000]; ``text_area_ratio`` and ``historical_ctr`` in [0, 1]; ``advertiser_tenure_days`` in
[0, 36500]; ``daily_budget_usd`` in [0, 10,000,000]; one to eight ``#rrggbb`` colours.

One pass decodes and validates: msgspec reads the request straight into typed structs, checking types,
lengths, choices and ranges as it parses, and what it cannot express (whole pixels, colours, host names) is
checked on whole columns at once. Every failure raises `InvalidCreative` naming the instance index and the
field path, so a client can fix its request without reading server logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any, Literal, get_args

import msgspec
import numpy as np
from msgspec import Meta

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

# The numeric fields, in the column order of `CreativeBatch.numbers`, with their allowed ranges.
RANGES: dict[str, tuple[float, float]] = {
    "image.width": (1, MAX_IMAGE_SIDE_PX),
    "image.height": (1, MAX_IMAGE_SIDE_PX),
    "image.text_area_ratio": (0.0, 1.0),
    "metadata.advertiser_tenure_days": (0.0, 36_500.0),
    "metadata.daily_budget_usd": (0.0, 10_000_000.0),
    "metadata.historical_ctr": (0.0, 1.0),
}
# The landing-domain rule, on the lower-cased name; `_first_bad_domain` applies it to a whole batch at once.
HOST_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.ASCII)

Channel = Literal["search", "social", "display", "video"]
CallToAction = Literal[
    "shop_now", "learn_more", "sign_up", "download", "get_offer", "book_now", "contact_us", "watch_more"
]
Pixels = Annotated[float, Meta(ge=1, le=MAX_IMAGE_SIDE_PX)]
Ratio = Annotated[float, Meta(ge=0.0, le=1.0)]
Color = Annotated[str, Meta(min_length=7, max_length=7)]


class Image(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    width: Pixels
    height: Pixels
    text_area_ratio: Ratio
    dominant_colors: Annotated[list[Color], Meta(min_length=1, max_length=MAX_DOMINANT_COLORS)]


class Metadata(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    advertiser_tenure_days: Annotated[float, Meta(ge=0.0, le=36_500.0)]
    daily_budget_usd: Annotated[float, Meta(ge=0.0, le=10_000_000.0)]
    historical_ctr: Ratio


class Creative(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    headline: Annotated[str, Meta(max_length=MAX_HEADLINE_CHARS)]
    body: Annotated[str, Meta(max_length=MAX_BODY_CHARS)]
    call_to_action: CallToAction
    channel: Channel
    landing_domain: Annotated[str, Meta(max_length=MAX_DOMAIN_CHARS)]
    image: Image
    metadata: Metadata
    creative_id: Annotated[str, Meta(max_length=MAX_CREATIVE_ID_CHARS)] | None = None


class _Instances(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    instances: list[Creative]


assert get_args(Channel) == CHANNELS
assert get_args(CallToAction) == CALLS_TO_ACTION

_BATCH = msgspec.json.Decoder(_Instances)
_ONE = msgspec.json.Decoder(Creative)
_ANY = msgspec.json.Decoder()
_CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}
_CTA_INDEX = {name: i for i, name in enumerate(CALLS_TO_ACTION)}
_IMAGE, _METADATA, _COLORS = attrgetter("image"), attrgetter("metadata"), attrgetter("dominant_colors")
_CHANNEL, _CALL_TO_ACTION = attrgetter("channel"), attrgetter("call_to_action")
_LANDING_DOMAIN = attrgetter("landing_domain")
_IMAGE_NUMBERS = attrgetter("width", "height", "text_area_ratio")
_METADATA_NUMBERS = attrgetter("advertiser_tenure_days", "daily_budget_usd", "historical_ctr")


class InvalidRequest(ValueError):
    """A request body that is not a batch of creatives at all (malformed JSON, wrong shape)."""


class InvalidCreative(InvalidRequest):
    """A creative that breaks the schema; `index` and `field` locate the problem."""

    def __init__(self, index: int, field: str, problem: str) -> None:
        self.index = index
        self.field = field
        self.problem = problem
        super().__init__(f"instances[{index}].{field}: {problem}")


@dataclass(frozen=True, slots=True, eq=False)
class CreativeBatch:
    """The validated creatives of one request, as structs and as the columns that featurization reads.

    Attributes:
        creatives: the decoded creatives, in request order.
        channel, call_to_action: indices into `CHANNELS` and `CALLS_TO_ACTION`, one per creative.
        numbers: float64 ``(n, 6)``, the numeric fields in `RANGES` order.
        colors: float64 ``(m, 3)``, the RGB (0 to 1) of every dominant colour, creative after creative.
        color_counts: how many of `colors` each creative has (at least one).
    """

    creatives: list[Creative]
    channel: np.ndarray
    call_to_action: np.ndarray
    numbers: np.ndarray
    colors: np.ndarray
    color_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.creatives)

    def __iter__(self) -> Iterator[Creative]:
        return iter(self.creatives)

    @property
    def creative_ids(self) -> list[str | None]:
        return [c.creative_id for c in self.creatives]

    @classmethod
    def of(cls, creatives: Sequence[Creative], numbering: Callable[[int], int] = int) -> CreativeBatch:
        """Check what the decoder cannot and build the columns.

        Args:
            creatives: decoded creatives.
            numbering: turns a position in `creatives` into the index that error messages report.

        Raises:
            InvalidCreative: a fractional pixel count, a colour that is not ``#rrggbb``, or a landing domain that
                is not a host name.
        """
        creatives = list(creatives)
        images = list(map(_IMAGE, creatives))
        numbers = np.empty((len(creatives), 6), dtype=np.float64)
        numbers[:, :3] = _floats(map(_IMAGE_NUMBERS, images), len(images))
        numbers[:, 3:] = _floats(map(_METADATA_NUMBERS, map(_METADATA, creatives)), len(images))
        fractional = np.flatnonzero(numbers[:, :2].ravel() % 1)
        if fractional.size:
            row, column = divmod(int(fractional[0]), 2)
            name, value = ("width", "height")[column], numbers[row, column]
            raise InvalidCreative(numbering(row), f"image.{name}", f"expected a whole number of pixels, got {value}")
        palettes = list(map(_COLORS, images))
        counts = np.fromiter(map(len, palettes), dtype=np.int64, count=len(palettes))
        colors = _rgb("".join(map("".join, palettes)), counts, numbering)
        domains = list(map(_LANDING_DOMAIN, creatives))
        bad = _first_bad_domain(domains) if len(domains) >= _WHOLE_BATCH else _first_bad_domain_slowly(domains)
        if bad is not None:
            raise InvalidCreative(
                numbering(bad), "landing_domain", f"{domains[bad]!r} is not a host name such as 'shop.example.com'"
            )
        return cls(
            creatives=creatives,
            channel=np.fromiter(map(_CHANNEL_INDEX.__getitem__, map(_CHANNEL, creatives)), np.int64, len(creatives)),
            call_to_action=np.fromiter(
                map(_CTA_INDEX.__getitem__, map(_CALL_TO_ACTION, creatives)), np.int64, len(creatives)
            ),
            numbers=numbers,
            colors=colors,
            color_counts=counts,
        )


def _floats(rows: Iterator[tuple[float, float, float]], count: int) -> np.ndarray:
    return np.fromiter(chain.from_iterable(rows), np.float64, 3 * count).reshape(count, 3)


def decode_json(data: str | bytes) -> CreativeBatch:
    """Decode ``{"instances": [creative, ...]}`` or one creative object.

    Raises:
        InvalidRequest: the body is not valid JSON or has another shape.
        InvalidCreative: a creative breaks the schema.
    """
    try:
        return CreativeBatch.of(_BATCH.decode(data).instances)
    except msgspec.ValidationError as e:
        path, problem = _split(e)
        if path not in ("$", "$.instances"):
            raise _invalid_creative(path, problem, int, data) from None
    except (msgspec.DecodeError, UnicodeEncodeError, RecursionError) as e:
        raise InvalidRequest(f"the body is not valid JSON: {_decode_problem(e, data)}") from None
    # Not a batch: one creative, or a body of the wrong shape. Rare, so it may decode twice to say which.
    try:
        body = _ANY.decode(data)
    except msgspec.ValidationError:  # a number beyond any float: decoding it as a creative names the field
        body = {}
    except (msgspec.DecodeError, RecursionError) as e:
        raise InvalidRequest(f"the body is not valid JSON: {_decode_problem(e, data)}") from None
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be a JSON object: {"instances": [...]} or a single creative')
    if "instances" in body:
        raise InvalidRequest('the body must be {"instances": [creative, ...]} with no other keys')
    try:
        return CreativeBatch.of([_ONE.decode(data)])
    except msgspec.ValidationError as e:
        raise _invalid_creative(*_split(e), int, data) from None


def decode_jsonlines(data: str | bytes) -> CreativeBatch:
    """Decode one creative per line; blank lines are skipped, and an instance's index is its 0-based line number.

    Raises:
        InvalidRequest: a line is not valid JSON.
        InvalidCreative: a creative breaks the schema.
    """
    try:
        creatives = _ONE.decode_lines(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError, RecursionError):
        creatives = _decode_line_by_line(data)
    return CreativeBatch.of(creatives, numbering=_line_numbers(data))


def _decode_line_by_line(data: str | bytes) -> list[Creative]:
    """Decode each line alone, to name the line that fails (the fast path only tells the position of a creative)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequest(f"the body is not valid UTF-8 (byte {e.start} of {len(data)})") from None
    lines = [(number, line) for number, line in enumerate(data.split("\n")) if line.strip()]
    for number, line in lines:  # every line is JSON before any is a creative, as with a batch
        try:
            _ANY.decode(line)
        except msgspec.ValidationError:
            pass  # a number beyond any float: the creative's check names it
        except (msgspec.DecodeError, UnicodeEncodeError, RecursionError) as e:
            raise InvalidRequest(f"line {number + 1} is not valid JSON: {e}") from None
    creatives = []
    for number, line in lines:
        try:
            creatives.append(_ONE.decode(line))
        except msgspec.ValidationError as e:
            raise _invalid_creative(*_split(e), _fixed(number), line) from None
    return creatives


def _fixed(number: int) -> Callable[[int], int]:
    return lambda _: number


def _line_numbers(data: str | bytes) -> Callable[[int], int]:
    def numbering(position: int) -> int:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        return [number for number, line in enumerate(text.split("\n")) if line.strip()][position]

    return numbering


def _decode_problem(error: Exception, data: str | bytes) -> str:
    if isinstance(data, bytes) and "UTF-8" in str(error):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            return f"it is not UTF-8 (byte {e.start} of {len(data)})"
    if isinstance(error, RecursionError):
        return "it is nested too deeply"
    return str(error)


_AT = re.compile(r"^(?P<problem>.*) - at `(?P<path>[^`]*)`$", re.DOTALL)
_INSTANCE = re.compile(r"^\$(?:\.instances)?(?:\[(?P<index>\d+)\])?\.?(?P<field>.*)$")
_KINDS = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "object": "an object",
    "array": "a list",
}


def _split(error: msgspec.ValidationError) -> tuple[str, str]:
    match = _AT.match(str(error))
    return (match["path"], match["problem"]) if match else ("$", str(error))


def _invalid_creative(path: str, problem: str, numbering: Callable[[int], int], data: str | bytes) -> InvalidCreative:
    """Translate msgspec's ``<problem> - at `$.instances[3].image.width``` into our index, field and wording."""
    match = _INSTANCE.match(path)
    index = int(match["index"]) if match and match["index"] else 0
    field = match["field"] if match else path
    if named := re.match(r"Object (missing required|contains unknown) field `(.+)`", problem):
        field = f"{field}.{named[2]}" if field else named[2]
        problem = "required field is missing" if named[1] == "missing required" else "unknown field"
        return InvalidCreative(numbering(index), field, problem)
    return InvalidCreative(
        numbering(index), field or "<instance>", _wording(field, problem, lambda: _value(data, path))
    )


def _wording(field: str, problem: str, value: Callable[[], Any]) -> str:
    if kinds := re.match(r"Expected `([^`]+)`, got `([^`]+)`", problem):
        expected = " or ".join(_KINDS.get(k.strip(), k.strip()) for k in kinds[1].split("|"))
        if field.endswith("dominant_colors"):
            expected = "a non-empty list of '#rrggbb' colours"
        return f"expected {expected}, got {_KINDS.get(kinds[2], kinds[2])}"
    if enum := re.match(r"Invalid enum value (.+)", problem):
        allowed = CHANNELS if field == "channel" else CALLS_TO_ACTION
        return f"{enum[1]} is not one of {list(allowed)}"
    if field.endswith("]") and "dominant_colors" in field:
        return f"expected a colour like '#1a73e8', got {value()!r}"
    if field == "image.dominant_colors" and (limit := re.search(r"length (<|>)= (\d+)", problem)):
        if limit[1] == ">":
            return "expected a non-empty list of '#rrggbb' colours"
        found = value()
        many = f"{len(found)} colours" if isinstance(found, list) else "too many colours"
        return f"has {many}; the limit is {MAX_DOMINANT_COLORS}"
    if limit := re.match(r"Expected `str` of length <= (\d+)", problem):
        found = value()
        long = f"{len(found)} characters long" if isinstance(found, str) else "too long"
        return f"is {long}; the limit is {limit[1]}"
    if field in RANGES and (re.match(r"Expected `float` [<>]=", problem) or "out of range" in problem):
        low, high = RANGES[field]
        found = value()
        return f"{'the value' if found is None else found} is outside the allowed range [{low:g}, {high:g}]"
    return problem[0].lower() + problem[1:]


def _value(data: str | bytes, path: str) -> Any:
    """The value at a msgspec error path (``$.instances[3].headline``), read again for the error message only."""
    try:
        value = _ANY.decode(data)
        for key, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
            value = value[key] if key else value[int(index)]
    except msgspec.ValidationError:  # a number beyond any float
        return "a number beyond the float range"
    except (msgspec.DecodeError, RecursionError, LookupError, TypeError):  # malformed after the failing value
        return None
    return value


def _rgb(colors: str, counts: np.ndarray, numbering: Callable[[int], int]) -> np.ndarray:
    """Parse every ``#rrggbb`` colour at once into RGB rows in [0, 1]; each colour is exactly 7 characters long."""
    total = int(counts.sum())
    try:
        hexes = bytes.fromhex(colors.replace("#", "")) if colors[::7] == "#" * total else b""
    except ValueError:
        hexes = b""
    if not hexes or len(hexes) != 3 * total:  # fromhex also skips whitespace, so the length must be checked
        for position in range(total):
            color = colors[7 * position : 7 * position + 7]
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
                _raise_bad_color(position, color, counts, numbering)
    return np.frombuffer(hexes, dtype=np.uint8).reshape(-1, 3) / 255.0


# Byte classes of a landing domain, after ASCII lower-casing: what `_first_bad_domain` checks position by position.
_END, _LETTER, _DIGIT, _HYPHEN, _DOT, _OTHER = range(6)
_DOMAIN_CLASSES = bytes(
    _END if c == 0 else _LETTER if 97 <= c <= 122 else _DIGIT if 48 <= c <= 57 else
    _HYPHEN if c == 45 else _DOT if c == 46 else _OTHER
    for c in range(256)
)  # fmt: skip


_WHOLE_BATCH = 64  # from here on, checking every domain at once beats the regular expression per domain


def _first_bad_domain_slowly(domains: list[str]) -> int | None:
    return next(
        (i for i, name in enumerate(domains) if not (name.isascii() and HOST_NAME.fullmatch(name.lower()))), None
    )


def _first_bad_domain(domains: list[str]) -> int | None:
    """The position of the first domain that `HOST_NAME` refuses, checked on all domains at once.

    A host name is dot-separated labels of 1 to 63 letters, digits and hyphens, no label starting or ending with a
    hyphen, at least two labels, and a last label of two or more letters; `tests/inference/test_creative_schema.py`
    compares this with the regular expression on generated names.
    """
    if not domains:
        return None
    joined = ("\0" + "\0".join(domains) + "\0").encode("utf-8", errors="replace").lower()
    if joined.count(0) != len(domains) + 1:  # a NUL inside a name: make it a byte no host name has
        return _first_bad_domain([d.replace("\0", "\1") for d in domains])
    kind = np.frombuffer(joined.translate(_DOMAIN_CLASSES), dtype=np.uint8)
    boundary = (kind == _END) | (kind == _DOT)
    ends = np.flatnonzero(kind == _END)
    bounds = np.flatnonzero(boundary)
    label_length = np.diff(bounds) - 1
    letters = np.zeros(kind.size + 1, dtype=np.int64)
    np.cumsum(kind != _LETTER, out=letters[1:])
    # The last label of a domain runs from a boundary to the domain's end; it must follow a dot and be letters.
    last = kind[bounds[1:]] == _END
    first_of_last = bounds[:-1][last] + 1
    not_letters = letters[bounds[1:][last]] - letters[first_of_last]
    bad_at = np.concatenate(
        [
            np.flatnonzero(kind == _OTHER),
            bounds[:-1][(label_length == 0) | (label_length > 63)],
            np.flatnonzero((kind[1:-1] == _HYPHEN) & (boundary[:-2] | boundary[2:])) + 1,
            bounds[:-1][last][(kind[bounds[:-1][last]] != _DOT) | (label_length[last] < 2) | (not_letters > 0)],
        ]
    )
    if bad_at.size == 0:
        return None
    return int(np.searchsorted(ends, bad_at.min(), side="right")) - 1


def _raise_bad_color(position: int, color: str, counts: np.ndarray, numbering: Callable[[int], int]) -> None:
    ends = np.cumsum(counts)
    row = int(np.searchsorted(ends, position, side="right"))
    within = position - int(ends[row] - counts[row])
    raise InvalidCreative(
        numbering(row), f"image.dominant_colors[{within}]", f"expected a colour like '#1a73e8', got {color!r}"
    )
