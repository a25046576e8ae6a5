"""Training and held-out evaluation of the reference models."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from creative_features import token_strings
from creative_schema import CHANNELS, Creative, CreativeBatch, decode_json
from creative_scorers import HASHED_NGRAM_MLP, TOKEN_CNN, CreativeNet, ModelConfig, Scorer, build_net
from training.dataset import DATASET_VERSION, Dataset, generate, roc_auc

DATA_SEED = 20261126
TRAIN_ROWS = 48_000
TEST_ROWS = 16_000
BATCH_SIZE = 256
VOCABULARY_SIZE = 4_000
MIN_TOKEN_COUNT = 3

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """How one reference model is built: its identity, architecture, channels and optimiser settings."""

    name: str
    version: str
    architecture: str
    channels: tuple[str, ...] = CHANNELS
    epochs: int = 4
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    seed: int
    hyperparameters: dict[str, Any] = field(default_factory=lambda: {"embedding_dim": 16})


REFERENCE_MODELS = (
    ModelSpec(name="creative-scorer-v1", version="1.1.0", architecture=HASHED_NGRAM_MLP, seed=1),
    ModelSpec(
        name="creative-scorer-v2",
        version="2.1.0",
        architecture=TOKEN_CNN,
        weight_decay=3e-2,  # 1e-2 to 1e-1 all land within 0.001 of each other; 3e-2 was the best of them
        seed=2,
        hyperparameters={"embedding_dim": 48, "hash_buckets": 1 << 12, "conv_channels": 32, "max_body_tokens": 40},
    ),
    ModelSpec(
        name="creative-scorer-social-v1",
        version="1.1.0",
        architecture=HASHED_NGRAM_MLP,
        channels=("social",),
        epochs=5,
        weight_decay=0.2,  # a quarter of the rows: stronger decay keeps the hashed n-grams from memorising
        seed=3,
    ),
)


@dataclass(frozen=True)
class Splits:
    train: Dataset
    test: Dataset


@dataclass(frozen=True)
class TrainedModel:
    config: ModelConfig
    net: CreativeNet
    seconds: float


def splits() -> Splits:
    """The fixed train and held-out test rows every reference model uses."""
    data = generate(TRAIN_ROWS + TEST_ROWS, DATA_SEED)
    return Splits(train=data.subset(range(TRAIN_ROWS)), test=data.subset(range(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS)))


def for_channels(data: Dataset, channels: tuple[str, ...]) -> Dataset:
    if channels == CHANNELS:
        return data
    return data.subset([i for i, c in enumerate(data.creatives) if c["channel"] in channels])


def parse_all(data: Dataset) -> list[Creative]:
    """The rows as the endpoint sees them: encoded as a request body and decoded by the endpoint's own decoder."""
    return decode_json(json.dumps({"instances": data.creatives})).creatives


def batches(creatives: list[Creative], size: int) -> list[CreativeBatch]:
    return [CreativeBatch.of(creatives[start : start + size]) for start in range(0, len(creatives), size)]


def train(spec: ModelSpec, data: Dataset, *, shuffle_labels: bool = False, progress: Progress = print) -> TrainedModel:
    """Train `spec` on the rows of `data` in its channels, deterministically for a given spec and data.

    With `shuffle_labels`, labels are permuted first: the control that shows the model learns structure,
    not artefacts of the pipeline.
    """
    started = time.perf_counter()
    data = for_channels(data, spec.channels)
    creatives = parse_all(data)
    config = _config(spec, creatives, rows=len(creatives))
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    labels = torch.tensor(data.labels, dtype=torch.float32)
    if shuffle_labels:
        labels = labels[torch.randperm(len(labels), generator=generator)]
    net = build_net(config)
    # Rows are drawn i.i.d., so fixed minibatches visited in a new order each epoch train as well as
    # reshuffled rows, and featurizing once keeps the whole build well under a minute on two cores.
    minibatches = [
        (net.featurize(batch), labels[number * BATCH_SIZE : (number + 1) * BATCH_SIZE])
        for number, batch in enumerate(batches(creatives, BATCH_SIZE))
    ]
    optimizer = torch.optim.AdamW(net.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(1, spec.epochs + 1):
        net.train()
        total = 0.0
        for index in torch.randperm(len(minibatches), generator=generator).tolist():
            features, targets = minibatches[index]
            loss = loss_fn(net(features), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(targets)
        progress(f"  {spec.name}: epoch {epoch}/{spec.epochs} loss {total / len(creatives):.4f}")
    return TrainedModel(config=config, net=net.eval(), seconds=time.perf_counter() - started)


def evaluate(model: TrainedModel, data: Dataset) -> dict[str, float | int]:
    """Held-out ROC AUC of the model on the rows of its channels, next to the data's achievable ceiling."""
    data = for_channels(data, model.config.channels)
    scorer = Scorer(config=model.config, net=model.net, device=torch.device("cpu"))
    creatives = parse_all(data)
    scores = np.concatenate([scorer.score(batch) for batch in batches(creatives, 4096)])
    return {
        "test_auc": round(roc_auc(data.labels, scores), 4),
        "ceiling_auc": round(roc_auc(data.labels, data.probabilities), 4),
        "test_rows": len(creatives),
        "positive_rate": round(float(data.labels.mean()), 4),
    }


def _config(spec: ModelSpec, creatives: list[Creative], rows: int) -> ModelConfig:
    config = ModelConfig(
        name=spec.name,
        version=spec.version,
        architecture=spec.architecture,
        channels=spec.channels,
        training={"dataset": DATASET_VERSION, "data_seed": DATA_SEED, "rows": rows, "seed": spec.seed},
        **spec.hyperparameters,
    )
    if spec.architecture == TOKEN_CNN:
        config = replace(config, vocabulary=_vocabulary(creatives))
    return config


def _vocabulary(creatives: list[Creative]) -> tuple[str, ...]:
    counts = Counter(t for c in creatives for t in token_strings(c.headline) + token_strings(c.body))
    frequent = sorted((t for t, n in counts.items() if n >= MIN_TOKEN_COUNT), key=lambda t: (-counts[t], t))
    special = ["<pad>", "<unk>"]  # at indices PAD and UNKNOWN
    return tuple(special + frequent[: VOCABULARY_SIZE - len(special)])
