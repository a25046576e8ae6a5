"""The committed models learnt the data's structure; a model trained on shuffled labels did not."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import MANIFEST, LoadedArchive
from training.dataset import roc_auc
from training.train import REFERENCE_MODELS, Splits, evaluate, for_channels, splits, train

AUC_FLOOR = 0.80
MAX_GAP_TO_CEILING = 0.08


@pytest.fixture(scope="module")
def data() -> Splits:
    return splits()


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_committed_model_clears_the_bar_on_held_out_rows(
    entry: dict[str, object], data: Splits, loaded_archives: dict[str, LoadedArchive]
) -> None:
    archive = loaded_archives[str(entry["name"])]
    test = for_channels(data.test, tuple(archive.entry["channels"]))
    scores = np.array([p["score"] for p in _predict(archive, test.creatives)])
    auc, ceiling = roc_auc(test.labels, scores), roc_auc(test.labels, test.probabilities)
    assert auc >= max(AUC_FLOOR, ceiling - MAX_GAP_TO_CEILING), f"AUC {auc:.4f}, ceiling {ceiling:.4f}"
    assert auc == pytest.approx(archive.entry["metrics"]["test_auc"], abs=5e-4)


def _predict(archive: LoadedArchive, creatives: list[dict[str, object]]) -> list[dict[str, float]]:
    import json

    predictions = []
    for start in range(0, len(creatives), 1000):
        body = json.dumps({"instances": creatives[start : start + 1000]}).encode()
        response = archive.chain.invoke(archive.model, body, "application/json", "application/json")
        assert response.status == 200, response.body
        predictions += json.loads(response.body)["predictions"]
    return predictions


def test_model_trained_on_shuffled_labels_is_no_better_than_chance(data: Splits) -> None:
    spec = REFERENCE_MODELS[0]
    model = train(spec, data.train, shuffle_labels=True, progress=lambda _: None)
    assert evaluate(model, data.test)["test_auc"] < 0.56
