"""Creative-scoring networks: their features, their configuration file, and loading them from a model directory.

Two architectures share the dense features (image statistics, metadata, channel and call to action):

- ``hashed-ngram-mlp``: word unigrams and bigrams of the headline and body, and the landing domain's labels,
  hashed into one embedding table and averaged per field (an EmbeddingBag), then an MLP.
- ``token-cnn``: a small text encoder. Headline and body tokens from a vocabulary learnt at training time go
  through an embedding and a convolution over neighbouring tokens, max-pooled over the text; the landing
  domain is embedded from hashed character trigrams.

Weights are stored as a safetensors file next to a JSON configuration, so loading a model never unpickles
code: safetensors holds only tensors, and the JSON holds only data.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from creative_schema import CALLS_TO_ACTION, CHANNELS, Creative

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
HASHED_NGRAM_MLP = "hashed-ngram-mlp"
TOKEN_CNN = "token-cnn"
PAD, UNKNOWN = 0, 1

Batch = dict[str, torch.Tensor]

_TOKEN = re.compile(r"[a-z0-9%$]+")
_DENSE_FEATURES = 12


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


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def stable_hash(token: str, buckets: int) -> int:
    """A hash that is the same in every process and on every machine (unlike ``hash``)."""
    return zlib.crc32(token.encode("utf-8")) % buckets


def dense_features(creative: Creative) -> list[float]:
    image, meta = creative.image, creative.metadata
    rgb = [_rgb(color) for color in image.dominant_colors]
    luminance = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b in rgb]
    saturation = [(max(c) - min(c)) / max(c) if max(c) > 0 else 0.0 for c in rgb]
    return [
        math.log1p(image.width) / 10,
        math.log1p(image.height) / 10,
        math.log(image.width / image.height),
        image.text_area_ratio,
        max(0.0, image.text_area_ratio - 0.2),
        sum(luminance) / len(luminance),
        max(luminance) - min(luminance),
        sum(saturation) / len(saturation),
        len(rgb) / 8,
        math.log1p(meta.advertiser_tenure_days) / 8,
        math.log1p(meta.daily_budget_usd) / 10,
        meta.historical_ctr * 20,
    ]


def _rgb(color: str) -> tuple[float, float, float]:
    return int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255


class CreativeNet(nn.Module):
    """Base of both architectures: dense features, channel and call-to-action embeddings, and the MLP head."""

    def __init__(self, config: ModelConfig, text_width: int) -> None:
        super().__init__()
        self.channel = nn.Embedding(len(CHANNELS), 8)
        self.call_to_action = nn.Embedding(len(CALLS_TO_ACTION), 8)
        self.head = nn.Sequential(
            nn.Linear(text_width + _DENSE_FEATURES + 16, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, 1),
        )

    def featurize(self, creatives: Sequence[Creative]) -> Batch:
        """Turn validated creatives into CPU tensors; the architecture adds its text tensors."""
        return {
            "dense": torch.tensor([dense_features(c) for c in creatives], dtype=torch.float32).reshape(-1, 12),
            "channel": torch.tensor([CHANNELS.index(c.channel) for c in creatives], dtype=torch.long),
            "call_to_action": torch.tensor(
                [CALLS_TO_ACTION.index(c.call_to_action) for c in creatives], dtype=torch.long
            ),
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
    """Hashed word unigrams and bigrams per text field, averaged in one EmbeddingBag."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config, text_width=3 * config.embedding_dim)
        self.buckets = config.hash_buckets
        self.ngrams = nn.EmbeddingBag(config.hash_buckets, config.embedding_dim, mode="mean")

    def featurize(self, creatives: Sequence[Creative]) -> Batch:
        ids: list[int] = []
        offsets: list[int] = []
        for creative in creatives:
            for bag in (_ngrams("h", creative.headline), _ngrams("b", creative.body), _domain_labels(creative)):
                offsets.append(len(ids))
                ids.extend(stable_hash(token, self.buckets) for token in bag)
        batch = super().featurize(creatives)
        batch["ngram_ids"] = torch.tensor(ids, dtype=torch.long)
        batch["ngram_offsets"] = torch.tensor(offsets, dtype=torch.long)
        return batch

    def text_features(self, batch: Batch) -> torch.Tensor:
        bags: torch.Tensor = self.ngrams(batch["ngram_ids"], batch["ngram_offsets"])
        return bags.reshape(batch["dense"].shape[0], -1)


def _ngrams(field_name: str, text: str) -> list[str]:
    words = tokens(text)
    bigrams = [f"{a}_{b}" for a, b in itertools.pairwise(words)]
    return [f"{field_name}:{gram}" for gram in words + bigrams]


def _domain_labels(creative: Creative) -> list[str]:
    labels = creative.landing_domain.split(".")
    registered = ".".join(labels[-2:])
    return [f"d:{registered}", f"tld:{labels[-1]}", *(f"dl:{label}" for label in labels[:-2])]


class TokenCNN(CreativeNet):
    """A small text encoder: token embeddings, a width-3 convolution, max-pooled per field."""

    def __init__(self, config: ModelConfig) -> None:
        width = config.conv_channels
        super().__init__(config, text_width=2 * width + config.embedding_dim // 2)
        self.index = {token: i for i, token in enumerate(config.vocabulary)}
        self.max_tokens = {"headline": config.max_headline_tokens, "body": config.max_body_tokens}
        self.buckets = config.hash_buckets
        self.embedding = nn.Embedding(len(config.vocabulary), config.embedding_dim, padding_idx=PAD)
        self.headline_conv = nn.Conv1d(config.embedding_dim, width, kernel_size=3, padding=1)
        self.body_conv = nn.Conv1d(config.embedding_dim, width, kernel_size=3, padding=1)
        self.domain = nn.EmbeddingBag(config.hash_buckets, config.embedding_dim // 2, mode="mean")

    def featurize(self, creatives: Sequence[Creative]) -> Batch:
        batch = super().featurize(creatives)
        batch["headline_ids"] = self._token_ids([c.headline for c in creatives], self.max_tokens["headline"])
        batch["body_ids"] = self._token_ids([c.body for c in creatives], self.max_tokens["body"])
        trigrams = [[stable_hash(t, self.buckets) for t in _char_trigrams(c.landing_domain)] for c in creatives]
        batch["domain_offsets"] = torch.tensor([0, *_cumulative(len(t) for t in trigrams)][:-1], dtype=torch.long)
        batch["domain_ids"] = torch.tensor([i for t in trigrams for i in t], dtype=torch.long)
        return batch

    def _token_ids(self, texts: list[str], limit: int) -> torch.Tensor:
        ids = torch.full((len(texts), limit), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            found = [self.index.get(token, UNKNOWN) for token in tokens(text)[:limit]]
            ids[row, : len(found)] = torch.tensor(found, dtype=torch.long)
        return ids

    def text_features(self, batch: Batch) -> torch.Tensor:
        headline = self._encode(batch["headline_ids"], self.headline_conv)
        body = self._encode(batch["body_ids"], self.body_conv)
        domain = self.domain(batch["domain_ids"], batch["domain_offsets"])
        return torch.cat([headline, body, domain], dim=1)

    def _encode(self, ids: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
        hidden = torch.relu(conv(self.embedding(ids).transpose(1, 2)))
        padding = (ids == PAD).unsqueeze(1)
        return hidden.masked_fill(padding, 0.0).amax(dim=2)


def _char_trigrams(domain: str) -> list[str]:
    padded = f"^{domain}$"
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


def _cumulative(lengths: Any) -> list[int]:
    total, out = 0, []
    for length in lengths:
        total += length
        out.append(total)
    return out


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

    def score(self, creatives: Sequence[Creative]) -> list[float]:
        """Probability that each creative performs well, from one batched forward pass."""
        if not creatives:
            return []
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.net.featurize(creatives).items()}
        with torch.inference_mode():
            return torch.sigmoid(self.net(batch)).float().cpu().tolist()


def load_scorer(model_dir: Path, device: torch.device) -> Scorer:
    """Build the network described by ``model.json`` and load ``model.safetensors`` into it.

    Raises:
        ModelLoadError: the directory lacks either file, or the weights do not fit the architecture.
    """
    config = ModelConfig.from_file(model_dir / CONFIG_FILE)
    net = build_net(config)
    try:
        state = load_file(model_dir / WEIGHTS_FILE, device=str(device))
        net.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, ValueError, SafetensorError) as e:
        raise ModelLoadError(f"cannot load weights of {config.name} from {model_dir / WEIGHTS_FILE}: {e}") from e
    return Scorer(config=config, net=net.to(device).eval(), device=device)
