from __future__ import annotations

import json

import numpy as np
import pytest

from creative_schema import decode_json
from training.dataset import generate, roc_auc


def test_same_seed_gives_the_same_dataset() -> None:
    first, second = generate(500, seed=11), generate(500, seed=11)
    assert first.creatives == second.creatives
    assert np.array_equal(first.labels, second.labels)


def test_different_seeds_give_different_datasets() -> None:
    assert generate(50, seed=1).creatives != generate(50, seed=2).creatives


def test_every_generated_creative_satisfies_the_serving_schema() -> None:
    creatives = generate(2_000, seed=5).creatives
    assert len(decode_json(json.dumps({"instances": creatives}))) == len(creatives)


def test_labels_follow_the_true_probabilities() -> None:
    data = generate(20_000, seed=3)
    assert abs(data.labels.mean() - data.probabilities.mean()) < 0.02
    assert 0.85 < roc_auc(data.labels, data.probabilities) < 0.95


def test_phrases_carry_signal_that_single_words_do_not() -> None:
    data = generate(20_000, seed=4)
    headlines = [c["headline"].lower() for c in data.creatives]
    with_phrase = np.array(["free shipping" in h for h in headlines])
    with_bad_phrase = np.array(["100% free" in h for h in headlines])
    assert data.probabilities[with_phrase].mean() > data.probabilities[with_bad_phrase].mean() + 0.15


@pytest.mark.parametrize(
    ("labels", "scores", "auc"),
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ],
)
def test_roc_auc_matches_hand_computed_values(labels: list[int], scores: list[float], auc: float) -> None:
    assert roc_auc(np.array(labels), np.array(scores)) == pytest.approx(auc)


def test_roc_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_auc(np.array([1, 1]), np.array([0.1, 0.2]))
