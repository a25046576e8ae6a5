"""Features of a batch of creatives, computed on whole columns at once.

Training and serving featurize through the same functions, from the same `CreativeBatch` that
`creative_schema` decodes, so a model is served exactly the features it learnt from
(``tests/training/test_skew.py`` checks it end to end).

Text: the headline, body and landing domain of every creative are joined into one byte string, lower-cased
(ASCII letters only) and cut into tokens, the runs of ``[a-z0-9%$-]`` bytes. All tokens are hashed at once
with a polynomial hash modulo the prime 2^31 - 1, read off one prefix sum over the whole string. The
arithmetic is on 64-bit integers and never overflows, so every hash is exact: the same on every machine and
whatever order the sums run in.

The work is numpy on the host. At these model sizes a batch's featurization is a few dozen array operations,
and numpy dispatches one in about a microsecond where a PyTorch operation takes ten; only the resulting
index tensors (a few kilobytes) travel to the model's device.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from creative_schema import CreativeBatch

PRIME = (1 << 31) - 1
# Up to this many creatives, featurizing one creative at a time in Python beats numpy, whose call overhead then
# dominates; both ways give the same features, bit for bit (tests/inference/test_creative_features.py).
SMALL_BATCH = 4
TEXT_FIELDS = ("headline", "body", "landing_domain")  # the texts of creative i are texts 3i, 3i+1 and 3i+2
PAD, UNKNOWN = 0, 1


_BASE = 48271  # the polynomial hash's base; any primitive root modulo PRIME works
_INVERSE = pow(_BASE, -1, PRIME)
_SALT = np.array([69621, 16807, 39373, 950706376], dtype=np.int64)  # per text field, and one for word pairs
# Bytes as the tokenizer sees them: ASCII letters lower-cased, token bytes kept, every other byte but the NUL
# that separates texts turned into a space. Token bytes are then exactly the bytes above the space.
_TOKEN_VIEW = bytes(
    c + 32 if 65 <= c <= 90 else c if c == 0 or chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789%$-" else 32
    for c in range(256)
)


class _Powers:
    """``BASE^i`` and ``BASE^-i`` modulo PRIME for i below a length that grows by doubling when needed.

    Model servers call handlers from several threads (batch transform's concurrent requests, the embedded
    backend's workers): the two tables are replaced together, under a lock, and readers take both at once.
    """

    def __init__(self) -> None:
        self._tables = (np.ones(1, dtype=np.int64), np.ones(1, dtype=np.int64))
        self._growing = threading.Lock()

    def upto(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        up, down = self._tables
        if up.size < length:
            with self._growing:
                up, down = self._tables
                while up.size < length:
                    size = up.size
                    up = np.concatenate([up, up * pow(_BASE, size, PRIME) % PRIME])
                    down = np.concatenate([down, down * pow(_INVERSE, size, PRIME) % PRIME])
                self._tables = (up, down)
        return up[:length], down[:length]


_POWERS = _Powers()
_CHUNK_BYTES = 1 << 20  # longer inputs are hashed a megabyte of texts at a time, so the tables stay at 16 MB


@dataclass(frozen=True)
class Tokens:
    """Every token of a sequence of texts, in order.

    Attributes:
        hashes: each token's polynomial hash in [0, PRIME): the sum of byte j of the token times BASE^j.
        lengths: each token's length in bytes.
        text: the index of the text each token comes from.
        texts: how many texts there were (some may have no token).
    """

    hashes: np.ndarray
    lengths: np.ndarray
    text: np.ndarray
    texts: int

    @property
    def keys(self) -> np.ndarray:
        """Hash and length in one key: tokens with equal keys differ with odds of about one in two billion."""
        keys: np.ndarray = self.hashes | (self.lengths << 31)
        return keys

    def rank(self) -> np.ndarray:
        """The position of each token within its text."""
        counts = np.bincount(self.text, minlength=self.texts)
        rank: np.ndarray = np.arange(self.text.size) - (np.cumsum(counts) - counts)[self.text]
        return rank


def texts(batch: CreativeBatch) -> list[str]:
    """Headline, body and landing domain of each creative, in that order (the layout `Tokens.text` indexes)."""
    return [text for c in batch.creatives for text in (c.headline, c.body, c.landing_domain)]


def tokenize(strings: Sequence[str]) -> Tokens:
    """Cut every string into tokens and hash them all at once."""
    if len(strings) <= len(TEXT_FIELDS) * SMALL_BATCH:
        return _tokenize_each(strings)
    joined = "\0".join(strings).encode("utf-8", errors="replace").translate(_TOKEN_VIEW)
    if len(joined) > _CHUNK_BYTES and len(strings) > 1:
        half = len(strings) // 2
        head, tail = tokenize(strings[:half]), tokenize(strings[half:])
        return Tokens(
            hashes=np.concatenate([head.hashes, tail.hashes]),
            lengths=np.concatenate([head.lengths, tail.lengths]),
            text=np.concatenate([head.text, tail.text + half]),
            texts=len(strings),
        )
    view = np.frombuffer(joined, dtype=np.uint8)
    text_of_byte = np.cumsum(view == 0, dtype=np.int32)
    if text_of_byte.size and text_of_byte[-1] != len(strings) - 1:  # a NUL inside a text: it separates tokens anyway
        return tokenize([s.replace("\0", " ") for s in strings])
    inside = np.zeros(view.size + 2, dtype=bool)
    np.greater(view, 32, out=inside[1:-1])
    edges = np.flatnonzero(inside[1:] != inside[:-1])
    starts, ends = edges[0::2], edges[1::2]
    up, down = _POWERS.upto(view.size)
    prefix = np.zeros(view.size + 1, dtype=np.int64)
    np.cumsum(view * up, out=prefix[1:])  # below 2^8 * 2^31 per byte: no overflow for a megabyte
    return Tokens(
        hashes=(prefix[ends] - prefix[starts]) % PRIME * down[starts] % PRIME,
        lengths=ends - starts,
        text=text_of_byte[starts],
        texts=len(strings),
    )


def _tokenize_each(strings: Sequence[str]) -> Tokens:
    """`tokenize`, one token at a time: the same hashes (Horner's rule on the same integers)."""
    hashes, lengths, text = [], [], []
    for index, string in enumerate(strings):
        for token in string.encode("utf-8", errors="replace").translate(_TOKEN_VIEW).replace(b"\0", b" ").split():
            value = 0
            for byte in reversed(token):
                value = (value * _BASE + byte) % PRIME
            hashes.append(value)
            lengths.append(len(token))
            text.append(index)
    return Tokens(
        hashes=np.array(hashes, dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        text=np.array(text, dtype=np.int32),
        texts=len(strings),
    )


def token_strings(text: str) -> list[str]:
    """The tokens of one text as strings: what `tokenize` hashes, for building a vocabulary."""
    return text.encode("utf-8", errors="replace").translate(_TOKEN_VIEW).replace(b"\0", b" ").decode().split()


def hashed_ngrams(tokens: Tokens, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket ids of every token and every pair of neighbouring tokens, grouped per text (EmbeddingBag input).

    Returns:
        (ids, offsets): ``ids[offsets[t]:offsets[t + 1]]`` are text t's unigrams and bigrams.
    """
    if tokens.texts <= len(TEXT_FIELDS) * SMALL_BATCH:
        return _hashed_ngrams_each(tokens, buckets)
    if tokens.hashes.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(tokens.texts, dtype=np.int64)
    unigrams = tokens.hashes * np.tile(_SALT[:3], tokens.texts // 3 + 1)[tokens.text] % PRIME
    pair = tokens.text[1:] == tokens.text[:-1]
    bigrams = (unigrams[:-1][pair] * _SALT[3] + unigrams[1:][pair]) % PRIME
    # Keep each text's ids together: a token's pair with the next token follows the token itself.
    width = np.ones(unigrams.size, dtype=np.int64)
    width[:-1] += pair
    placed = np.cumsum(width) - width
    ids = np.empty(unigrams.size + bigrams.size, dtype=np.int64)
    ids[placed] = unigrams
    ids[placed[:-1][pair] + 1] = bigrams
    per_text = np.bincount(tokens.text, weights=width, minlength=tokens.texts).astype(np.int64)
    return _bucket(ids, buckets), np.cumsum(per_text) - per_text


def _hashed_ngrams_each(tokens: Tokens, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """`hashed_ngrams`, one token at a time: the same ids in the same order."""
    text = tokens.text.tolist()
    salts = _SALT.tolist()
    unigrams = [value * salts[t % 3] % PRIME for value, t in zip(tokens.hashes.tolist(), text, strict=True)]
    ids, counts = [], [0] * tokens.texts
    for i, unigram in enumerate(unigrams):
        ids.append(unigram)
        counts[text[i]] += 1
        if i + 1 < len(unigrams) and text[i + 1] == text[i]:
            ids.append((unigram * salts[3] + unigrams[i + 1]) % PRIME)
            counts[text[i]] += 1
    offsets = np.cumsum([0, *counts[:-1]]) if counts else np.zeros(0, dtype=np.int64)
    return _bucket(np.array(ids, dtype=np.int64), buckets), offsets.astype(np.int64)


class Vocabulary:
    """Token to index, looked up for a whole batch at once by the tokens' 62-bit keys."""

    def __init__(self, words: Sequence[str]) -> None:
        """`words[PAD]` and `words[UNKNOWN]` are placeholders; every other word is one token."""
        found = tokenize(words[2:])
        if found.hashes.size != len(words) - 2 or not np.array_equal(found.text, np.arange(len(words) - 2)):
            raise ValueError("every vocabulary word must be exactly one token")
        keys = found.keys
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.ids = order + 2

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        if self.keys.size == 0:
            return np.full(keys.shape, UNKNOWN, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return np.where(self.keys[at] == keys, self.ids[at], UNKNOWN)


def token_ids(tokens: Tokens, vocabulary: Vocabulary, field: int, limit: int) -> np.ndarray:
    """``(creatives, limit)`` vocabulary indices of the first `limit` tokens of one text field, PAD after."""
    rank = tokens.rank()
    keep = (tokens.text % 3 == field) & (rank < limit)
    ids = np.full((tokens.texts // 3, limit), PAD, dtype=np.int64)
    ids[tokens.text[keep] // 3, rank[keep]] = vocabulary.lookup(tokens.keys[keep])
    return ids


def domain_trigrams(batch: CreativeBatch, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket ids of the character trigrams of ``^domain$``, grouped per creative (EmbeddingBag input)."""
    if len(batch) <= SMALL_BATCH:
        return _domain_trigrams_each(batch, buckets)
    joined = ("^" + "$\0^".join(c.landing_domain for c in batch.creatives) + "$").lower().encode()
    raw = np.frombuffer(joined, dtype=np.uint8).astype(np.int64)
    first, second, third = raw[:-2], raw[1:-1], raw[2:]
    whole = (first != 0) & (second != 0) & (third != 0)
    hashes = (first + second * _BASE + third * (_BASE * _BASE % PRIME))[whole] % PRIME
    creative = np.cumsum(raw == 0)[:-2][whole]
    counts = np.bincount(creative, minlength=len(batch))
    return _bucket(hashes, buckets), np.cumsum(counts) - counts


def _domain_trigrams_each(batch: CreativeBatch, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """`domain_trigrams`, one trigram at a time: the same ids."""
    square = _BASE * _BASE % PRIME
    hashes: list[int] = []
    offsets: list[int] = []
    for creative in batch.creatives:
        offsets.append(len(hashes))
        name = ("^" + creative.landing_domain + "$").lower().encode()
        hashes.extend((a + b * _BASE + c * square) % PRIME for a, b, c in zip(name, name[1:], name[2:], strict=False))
    return _bucket(np.array(hashes, dtype=np.int64), buckets), np.array(offsets, dtype=np.int64)


_LUMA = (0.2126, 0.7152, 0.0722)
_LOG_SCALE = np.array([10.0, 10.0, 8.0, 10.0])
DENSE_FEATURES = 12


def dense(batch: CreativeBatch) -> np.ndarray:
    """``(creatives, 12)`` float32: image shape and text area, colour statistics, advertiser metadata."""
    numbers, colors, counts = batch.numbers, batch.colors, batch.color_counts
    out = np.empty((len(numbers), DENSE_FEATURES), dtype=np.float32)
    if not len(out):
        return out
    out[:, [0, 1, 9, 10]] = np.log1p(numbers[:, [0, 1, 3, 4]]) / _LOG_SCALE  # width, height, tenure, budget
    out[:, 2] = np.log(numbers[:, 0] / numbers[:, 1])  # aspect ratio
    out[:, 3] = numbers[:, 2]  # text area
    out[:, 4] = np.maximum(numbers[:, 2] - 0.2, 0.0)  # text area beyond 20%
    out[:, 11] = numbers[:, 5] * 20  # historical click-through rate
    out[:, 8] = counts / 8
    # Per colour: luminance and saturation; per creative: their means (5, 7) and the luminance range (6).
    if len(out) <= SMALL_BATCH:
        out[:, 5:8] = _colour_statistics_each(batch.colors.tolist(), counts.tolist())
        return out
    # Column by column: numpy reduces a row of three about ten times slower than it combines three columns.
    red, green, blue = colors[:, 0], colors[:, 1], colors[:, 2]
    brightest = np.maximum(np.maximum(red, green), blue)
    darkest = np.minimum(np.minimum(red, green), blue)
    per_color = np.empty((len(colors), 2))
    per_color[:, 0] = red * _LUMA[0] + green * _LUMA[1] + blue * _LUMA[2]
    np.divide(brightest - darkest, brightest, out=per_color[:, 1], where=brightest > 0)
    per_color[brightest <= 0, 1] = 0.0
    starts = np.cumsum(counts) - counts
    out[:, [5, 7]] = np.add.reduceat(per_color, starts) / counts[:, None]
    out[:, 6] = np.maximum.reduceat(per_color[:, 0], starts) - np.minimum.reduceat(per_color[:, 0], starts)
    return out


def _colour_statistics_each(colors: list[list[float]], counts: list[int]) -> list[tuple[float, float, float]]:
    """Columns 5 to 7 of `dense`, one creative at a time: the same operations in the same order, so the same bits."""
    rows, start = [], 0
    for count in counts:
        luminance, saturation = [], []
        for red, green, blue in colors[start : start + count]:
            luminance.append(red * _LUMA[0] + green * _LUMA[1] + blue * _LUMA[2])
            brightest, darkest = max(red, green, blue), min(red, green, blue)
            saturation.append((brightest - darkest) / brightest if brightest > 0 else 0.0)
        rows.append((_sum(luminance) / count, max(luminance) - min(luminance), _sum(saturation) / count))
        start += count
    return rows


def _sum(values: list[float]) -> float:
    """Left to right from the first value, as numpy's reduceat adds a short run."""
    total = values[0]
    for value in values[1:]:
        total += value
    return total


def _bucket(hashes: np.ndarray, buckets: int) -> np.ndarray:
    """``hashes % buckets``; a mask when `buckets` is a power of two, which gives the same ids five times faster."""
    if buckets & (buckets - 1) == 0:
        masked: np.ndarray = hashes & (buckets - 1)
        return masked
    remainder: np.ndarray = hashes % buckets
    return remainder
