"""Creative-scoring networks: their configuration file, their inputs, and loading them from a model directory.

Two architectures share the dense features (image statistics, metadata, channel and call to action); how
text becomes features is in `creative_features`:

- ``hashed-ngram-mlp``: the tokens and pairs of neighbouring tokens of the headline, the body and the landing
  domain, hashed into one embedding table and averaged per field (an EmbeddingBag), then an MLP.
- ``token-cnn``: a small text encoder. Headline and body tokens from a vocabulary learnt at training time go
  through an embedding and a convolution over neighbouring tokens, max-pooled over the text; the landing
  domain is embedded from hashed character trigrams.

Weights are stored as a safetensors file next to a JSON configuration, so loading a model never unpickles
code: safetensors holds only tensors, and the JSON holds only data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

import creative_features as features
from creative_schema import CALLS_TO_ACTION, CHANNELS, CreativeBatch

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
HASHED_NGRAM_MLP = "hashed-ngram-mlp"
TOKEN_CNN = "token-cnn"

Batch = dict[str, torch.Tensor]


class ModelLoadError(RuntimeError):
    """A model directory that cannot be turned into a scorer."""


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The contents of ``model.json``: identity, architecture and hyperparameters of one model."""

    name: str
    version: str
    architecture: str
    channels: tuple[str, ...] = CHANNELS
    embedding_dim: int = 32
    hidden_dim: int = 64
    hash_buckets: int = 1 << 14
    vocabulary: tuple[str, ...] = ()
    max_headline_tokens: int = 24
    max_body_tokens: int = 64
    conv_channels: int = 64
    training: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> ModelConfig:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["channels"] = tuple(data["channels"])
            data["vocabulary"] = tuple(data.get("vocabulary", ()))
            config = cls(**data)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise ModelLoadError(f"{path} is not a valid model configuration: {e}") from e
        if config.architecture not in _ARCHITECTURES:
            raise ModelLoadError(f"{path}: unknown architecture {config.architecture!r}; known: {list(_ARCHITECTURES)}")
        return config

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"


class CreativeNet(nn.Module):
    """Base of both architectures: dense features, channel and call-to-action embeddings, and the MLP head."""

    def __init__(self, config: ModelConfig, text_width: int) -> None:
        super().__init__()
        self.channel = nn.Embedding(len(CHANNELS), 8)
        self.call_to_action = nn.Embedding(len(CALLS_TO_ACTION), 8)
        self.head = nn.Sequential(
            nn.Linear(text_width + features.DENSE_FEATURES + 16, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, 1),
        )

    def featurize(self, batch: CreativeBatch) -> Batch:
        """Turn a validated batch into CPU tensors; the architecture adds its text tensors."""
        return {
            "dense": torch.from_numpy(features.dense(batch)),
            "channel": torch.from_numpy(batch.channel),
            "call_to_action": torch.from_numpy(batch.call_to_action),
        }

    def text_features(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, batch: Batch) -> torch.Tensor:
        """Return one logit per creative."""
        parts = [
            self.text_features(batch),
            batch["dense"],
            self.channel(batch["channel"]),
            self.call_to_action(batch["call_to_action"]),
        ]
        logits: torch.Tensor = self.head(torch.cat(parts, dim=1))
        return logits.squeeze(1)


class HashedNgramMLP(CreativeNet):
    """Hashed tokens and pairs of neighbouring tokens per text field, averaged in one EmbeddingBag."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, text_width=3 * config.embedding_dim)
        self.buckets = config.hash_buckets
        self.ngrams = nn.EmbeddingBag(config.hash_buckets, config.embedding_dim, mode="mean")

    def featurize(self, batch: CreativeBatch) -> Batch:
        ids, offsets = features.hashed_ngrams(features.tokenize(features.texts(batch)), self.buckets)
        tensors = super().featurize(batch)
        tensors["ngram_ids"] = torch.from_numpy(ids)
        tensors["ngram_offsets"] = torch.from_numpy(offsets)
        return tensors

    def text_features(self, batch: Batch) -> torch.Tensor:
        bags: torch.Tensor = self.ngrams(batch["ngram_ids"], batch["ngram_offsets"])
        return bags.reshape(batch["dense"].shape[0], -1)


class TokenCNN(CreativeNet):
    """A small text encoder: token embeddings, a width-3 convolution, max-pooled per field."""

    def __init__(self, config: ModelConfig) -> None:
        width = config.conv_channels
        super().__init__(config, text_width=2 * width + config.embedding_dim // 2)
        self.vocabulary = features.Vocabulary(config.vocabulary)
        self.max_tokens = {"headline": config.max_headline_tokens, "body": config.max_body_tokens}
        self.buckets = config.hash_buckets
        self.embedding = nn.Embedding(len(config.vocabulary), config.embedding_dim, padding_idx=features.PAD)
        self.headline_conv = nn.Conv1d(config.embedding_dim, width, kernel_size=3, padding=1)
        self.body_conv = nn.Conv1d(config.embedding_dim, width, kernel_size=3, padding=1)
        self.domain = nn.EmbeddingBag(config.hash_buckets, config.embedding_dim // 2, mode="mean")

    def featurize(self, batch: CreativeBatch) -> Batch:
        tensors = super().featurize(batch)
        tokens = features.tokenize(features.texts(batch))
        for position, name in enumerate(("headline", "body")):
            ids = features.token_ids(tokens, self.vocabulary, position, self.max_tokens[name])
            tensors[f"{name}_ids"] = torch.from_numpy(ids)
        ids, offsets = features.domain_trigrams(batch, self.buckets)
        tensors["domain_ids"] = torch.from_numpy(ids)
        tensors["domain_offsets"] = torch.from_numpy(offsets)
        return tensors

    def text_features(self, batch: Batch) -> torch.Tensor:
        headline = self._encode(batch["headline_ids"], self.headline_conv)
        body = self._encode(batch["body_ids"], self.body_conv)
        domain = self.domain(batch["domain_ids"], batch["domain_offsets"])
        return torch.cat([headline, body, domain], dim=1)

    def _encode(self, ids: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
        hidden = torch.relu(conv(self.embedding(ids).transpose(1, 2)))
        padding = (ids == features.PAD).unsqueeze(1)
        return hidden.masked_fill(padding, 0.0).amax(dim=2)


_ARCHITECTURES: dict[str, Callable[[ModelConfig], CreativeNet]] = {
    HASHED_NGRAM_MLP: HashedNgramMLP,
    TOKEN_CNN: TokenCNN,
}


def build_net(config: ModelConfig) -> CreativeNet:
    return _ARCHITECTURES[config.architecture](config)


@dataclass(frozen=True)
class Scorer:
    """A loaded model: what `model_fn` returns and `predict_fn` receives."""

    config: ModelConfig
    net: CreativeNet
    device: torch.device

    @cached_property
    def serves(self) -> np.ndarray:
        """Whether this model scores each channel, indexed like `CHANNELS`."""
        return np.isin(CHANNELS, self.config.channels)

    def score(self, batch: CreativeBatch) -> np.ndarray:
        """Probability (float64) that each creative performs well, from one batched forward pass."""
        if not len(batch):
            return np.zeros(0)
        tensors = self.net.featurize(batch)
        if self.device.type != "cpu":
            tensors = {k: v.to(self.device, non_blocking=True) for k, v in tensors.items()}
        with torch.inference_mode():
            return torch.sigmoid(self.net(tensors)).cpu().numpy().astype(np.float64)


def load_scorer(model_dir: Path, device: torch.device) -> Scorer:
    """Build the network described by ``model.json`` and load ``model.safetensors`` into it.

    Raises:
        ModelLoadError: the directory lacks either file, or the weights do not fit the architecture.
    """
    config = ModelConfig.from_file(model_dir / CONFIG_FILE)
    try:
        net = build_net(config)
    except ValueError as e:
        raise ModelLoadError(f"{model_dir / CONFIG_FILE}: {e}") from e
    try:
        state = load_file(model_dir / WEIGHTS_FILE, device=str(device))
        net.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError, SafetensorError) as e:
        raise ModelLoadError(f"cannot load weights of {config.name} from {model_dir / WEIGHTS_FILE}: {e}") from e
    return Scorer(config=config, net=net.to(device).eval(), device=device)
