"""Featurization on whole columns: the hash it computes, and that it agrees with itself however it is called."""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import creative_features as features
from creative_schema import decode_json
from training.dataset import generate

WORDS = ["Free", "shipping", "20%", "OFF", "e-bike", "$5", "caf\u00e9", "na\u00efve", "x" * 70, "\u212a", "\0", "--"]


def _text(rng: random.Random) -> str:
    return rng.choice(["", " "]).join(rng.choice(WORDS) + rng.choice([" ", ", ", "\n", ".", "!"]) for _ in range(6))


def _reference_hash(token: str) -> int:
    """The documented hash, one token at a time: sum of byte j times BASE^j, modulo PRIME."""
    return sum(byte * pow(48271, j, features.PRIME) for j, byte in enumerate(token.encode())) % features.PRIME


def test_tokens_are_lower_cased_ascii_runs_of_letters_digits_percent_dollar_and_hyphen() -> None:
    assert features.token_strings("Free SHIPPING: 20% off e-bikes, $5 caf\u00e9\0x") == [
        "free",
        "shipping",
        "20%",
        "off",
        "e-bikes",
        "$5",
        "caf",
        "x",
    ]


def test_every_token_hash_is_the_documented_polynomial_hash() -> None:
    rng = random.Random(3)
    texts = [_text(rng) for _ in range(50)]
    tokens = features.tokenize(texts)
    expected = [_reference_hash(t) for text in texts for t in features.token_strings(text)]
    assert tokens.hashes.tolist() == expected
    assert tokens.lengths.tolist() == [len(t) for text in texts for t in features.token_strings(text)]
    assert tokens.text.tolist() == [i for i, text in enumerate(texts) for _ in features.token_strings(text)]


def test_hashing_in_chunks_gives_the_same_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(4)
    texts = [_text(rng) for _ in range(200)]
    whole = features.tokenize(texts)
    monkeypatch.setattr(features, "_CHUNK_BYTES", 300)
    chunked = features.tokenize(texts)
    for name in ("hashes", "lengths", "text"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name


def test_ngrams_are_grouped_per_text_with_pairs_only_inside_a_text() -> None:
    tokens = features.tokenize(["free shipping", "", "free", "free shipping"])
    ids, offsets = features.hashed_ngrams(tokens, 1 << 14)
    assert offsets.tolist() == [0, 3, 3, 4]
    assert ids.size == 7
    assert ids[3] != ids[0], "the same word in another field (text 2 is a landing domain) hashes elsewhere"
    assert ids[4:].tolist() == ids[:3].tolist(), "texts 0 and 3 are both headlines: the same words hash the same"


def test_vocabulary_lookup_finds_known_tokens_and_marks_the_rest_unknown() -> None:
    vocabulary = features.Vocabulary(["<pad>", "<unk>", "free", "shipping", "20%"])
    tokens = features.tokenize(["20% FREE delivery shipping"])
    assert vocabulary.lookup(tokens.keys).tolist() == [4, 2, features.UNKNOWN, 3]
    with pytest.raises(ValueError, match="exactly one token"):
        features.Vocabulary(["<pad>", "<unk>", "two words"])


def test_a_creative_has_the_same_features_alone_and_in_a_batch(creatives: list[dict[str, Any]]) -> None:
    creatives = creatives * (features.SMALL_BATCH + 1)  # the batch is featurized as a whole, each alone one by one
    batch = decode_json(json.dumps({"instances": creatives}))
    together = features.dense(batch)
    ids, offsets = features.hashed_ngrams(features.tokenize(features.texts(batch)), 1 << 14)
    bounds = [*offsets.tolist(), ids.size]
    for i, creative in enumerate(creatives):
        alone = decode_json(json.dumps(creative))
        assert np.array_equal(features.dense(alone)[0], together[i])
        own_ids, _ = features.hashed_ngrams(features.tokenize(features.texts(alone)), 1 << 14)
        assert own_ids.tolist() == ids[bounds[3 * i] : bounds[3 * i + 3]].tolist()


def test_domain_trigrams_ignore_case(creative: dict[str, Any]) -> None:
    upper = {**creative, "landing_domain": creative["landing_domain"].upper()}
    first = features.domain_trigrams(decode_json(json.dumps(creative)), 1 << 12)
    second = features.domain_trigrams(decode_json(json.dumps(upper)), 1 << 12)
    assert first[0].tolist() == second[0].tolist()
    assert first[0].size == len(creative["landing_domain"])  # ^domain$ has len + 2 - 2 trigrams


def test_threads_growing_the_hash_tables_at_once_get_the_same_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    batches = [[_text(rng) * rng.randint(1, 40) for _ in range(rng.randint(1, 60))] for _ in range(48)]
    expected = [features.tokenize(texts).hashes.tolist() for texts in batches]
    monkeypatch.setattr(features, "_POWERS", features._Powers())  # empty tables: the threads grow them
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda texts: features.tokenize(texts).hashes.tolist(), batches))
    assert got == expected


def _each_and_whole(monkeypatch: pytest.MonkeyPatch, compute: Any) -> tuple[Any, Any]:
    monkeypatch.setattr(features, "SMALL_BATCH", 10**9)
    each = compute()
    monkeypatch.setattr(features, "SMALL_BATCH", 0)
    return each, compute()


def _same(first: Any, second: Any) -> None:
    if isinstance(first, tuple):
        for a, b in zip(first, second, strict=True):
            _same(a, b)
        return
    assert first.dtype == second.dtype
    assert np.array_equal(first, second)


@pytest.mark.parametrize("size", [1, 3, 40])
def test_small_batches_featurized_one_at_a_time_give_the_same_bits(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    rng = random.Random(size)
    rows = generate(size, seed=size).creatives
    for row in rows[: size // 2 + 1]:  # the odd cases: non-ASCII, NULs, upper case, no tokens, one colour
        row["headline"] = _text(rng)
        row["body"] = rng.choice(["", "!!!", _text(rng) * 3])
        row["landing_domain"] = rng.choice(["Shop.Example.COM", "a-b.c-d.io", row["landing_domain"]])
        row["image"]["dominant_colors"] = rng.choice([["#000000"], ["#FFFFFF", "#1a73e8", "#808080"]])
    batch = decode_json(json.dumps({"instances": rows}))
    strings = features.texts(batch)
    each, whole = _each_and_whole(monkeypatch, lambda: features.tokenize(strings))
    _same((each.hashes, each.lengths, each.text), (whole.hashes, whole.lengths, whole.text))
    _same(*_each_and_whole(monkeypatch, lambda: features.hashed_ngrams(whole, 1 << 14)))
    _same(*_each_and_whole(monkeypatch, lambda: features.hashed_ngrams(whole, 1000)))
    _same(*_each_and_whole(monkeypatch, lambda: features.domain_trigrams(batch, 1 << 12)))
    _same(*_each_and_whole(monkeypatch, lambda: features.dense(batch)))
