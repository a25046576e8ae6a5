"""No training/serving skew: what training featurizes and scores is exactly what the served archive computes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from creative_scorers import build_net
from tests.conftest import MANIFEST, LoadedArchive
from training.dataset import generate
from training.train import batches, for_channels, parse_all


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_training_and_the_served_archive_compute_the_same_features_and_scores(
    entry: dict[str, object], loaded_archives: dict[str, LoadedArchive]
) -> None:
    archive = loaded_archives[str(entry["name"])]
    data = for_channels(generate(600, seed=41), tuple(archive.entry["channels"]))
    # Serving: the request body through the archive's own code, as the container runs it.
    body = "\n".join(json.dumps(c) for c in data.creatives).encode()
    served_batch = archive.chain.input_fn(body, "application/jsonlines")
    served = archive.model.net.featurize(served_batch)
    # Training: the rows through the training pipeline's decoding, minibatching and network classes.
    (trained_batch,) = batches(parse_all(data), len(data.creatives))
    trained = build_net(archive.model.config).featurize(trained_batch)
    assert served.keys() == trained.keys()
    for name in served:
        assert torch.equal(served[name], trained[name]), name
    response = archive.chain.invoke(archive.model, body, "application/jsonlines", "application/jsonlines")
    served_scores = [json.loads(line)["score"] for line in response.body.splitlines()]
    assert served_scores == np.round(archive.model.score(trained_batch), 6).tolist()
