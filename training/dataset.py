"""A deterministic synthetic dataset of ad creatives whose label has real, learnable structure.

Each creative gets a true log-odds of performing well, the sum of these effects (times `SIGNAL`):

- headline phrases: "free shipping", "free trial", "20% off" help; "click here", "100% free", "you won" hurt.
  The word "free" alone is neutral, so only models that see word pairs can tell these apart. The body carries
  the same phrases at half strength, and headlines over eight words lose a little per extra word.
- call to action x channel: "watch_more" works on video and nowhere else, "download" on social, not search.
- image: an aspect ratio the channel favours (square or vertical on social, banners on display); text covering
  more than 20% of the image; colour contrast between the dominant colours.
- landing domain: a hidden reputation per brand, and a penalty for the .biz and .xyz top-level domains.
- metadata: the advertiser's historical click-through rate dominates; tenure and budget add a little.

The label is a Bernoulli draw from the sigmoid of that log-odds, so the noise is known exactly: the AUC of the
true probabilities on held-out rows (`ceiling_auc`) is the best any model can reach on this data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DATASET_VERSION = "synthetic-creatives/1"
SIGNAL = 2.2
INTERCEPT = -0.7

CHANNELS = ("search", "social", "display", "video")
CHANNEL_SHARE = (0.3, 0.3, 0.25, 0.15)
CALLS_TO_ACTION = ("shop_now", "learn_more", "sign_up", "download", "get_offer", "book_now", "contact_us", "watch_more")
# Rows: channels in CHANNELS order; columns: calls to action in CALLS_TO_ACTION order.
CTA_BY_CHANNEL = (
    (0.1, 0.4, 0.1, -0.5, 0.2, 0.2, 0.1, -0.4),  # search
    (0.3, -0.1, 0.2, 0.5, 0.3, -0.1, -0.3, 0.1),  # social
    (0.3, 0.0, -0.1, -0.2, 0.4, 0.1, -0.2, -0.3),  # display
    (-0.2, 0.1, 0.0, -0.1, -0.1, 0.0, -0.3, 0.7),  # video
)

PHRASES = {
    "free shipping": 0.7,
    "free trial": 0.5,
    "20% off": 0.45,
    "limited time": 0.4,
    "members save": 0.4,
    "new arrivals": 0.35,
    "best seller": 0.3,
    "click here": -0.7,
    "100% free": -0.5,
    "act now": -0.45,
    "guaranteed results": -0.6,
    "you won": -0.9,
}
PRODUCTS = (
    "running shoes", "laptop", "coffee maker", "yoga mat", "headphones", "car insurance", "online course",
    "meal kit", "hotel", "flights", "skincare set", "gaming chair", "mattress", "smartwatch", "bike",
    "backpack", "tax software", "vpn", "phone plan", "pet food",
)  # fmt: skip
FILLER = (
    "the", "your", "our", "for", "with", "and", "free", "best", "great", "quality", "everyday", "style",
    "comfort", "fast", "easy", "simple", "smart", "top", "premium", "deals", "shop", "discover", "today",
    "more", "get", "try", "love", "home", "family", "save", "new", "results",
)  # fmt: skip

IMAGE_SIZES = {
    "landscape": (1200, 628),
    "square": (1080, 1080),
    "vertical": (1080, 1920),
    "rectangle": (300, 250),
    "leaderboard": (728, 90),
    "skyscraper": (160, 600),
    "widescreen": (1920, 1080),
}
PREFERRED_SIZES = {
    "search": {"landscape", "square"},
    "social": {"square", "vertical"},
    "display": {"rectangle", "leaderboard", "skyscraper"},
    "video": {"widescreen", "vertical"},
}
TLDS = ("com", "shop", "io", "net", "biz", "xyz")
TLD_SHARE = (0.55, 0.15, 0.1, 0.1, 0.05, 0.05)
TLD_EFFECT = {"biz": -0.4, "xyz": -0.5}
SUBDOMAINS = ("", "www.", "shop.", "go.", "offers.")
SYLLABLES = ("tra", "il", "peak", "no", "va", "lu", "men", "zo", "ra", "kin", "bright", "sol", "mar", "ve", "dex")


@dataclass(frozen=True)
class Dataset:
    """Raw creatives (as clients send them), their true probabilities and their sampled labels."""

    creatives: list[dict[str, Any]]
    probabilities: np.ndarray
    labels: np.ndarray

    def subset(self, rows: Sequence[int] | np.ndarray) -> Dataset:
        index = np.asarray(rows, dtype=np.int64)
        return Dataset([self.creatives[i] for i in index], self.probabilities[index], self.labels[index])


def generate(rows: int, seed: int) -> Dataset:
    """The same `rows` creatives, probabilities and labels for the same `seed`, on every machine."""
    rng = np.random.default_rng(seed)
    brands = _brands(rng)
    creatives, logits = [], []
    for _ in range(rows):
        creative, logit = _creative(rng, brands)
        creatives.append(creative)
        logits.append(logit)
    probabilities = 1 / (1 + np.exp(-np.asarray(logits)))
    labels = (rng.random(rows) < probabilities).astype(np.int64)
    return Dataset(creatives, probabilities, labels)


def _brands(rng: np.random.Generator) -> list[tuple[str, float]]:
    names = {"".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))) for _ in range(200)}
    return [(name, float(rng.normal(0.0, 0.5))) for name in sorted(names)]


def _creative(rng: np.random.Generator, brands: list[tuple[str, float]]) -> tuple[dict[str, Any], float]:
    channel = _pick(rng, CHANNELS, CHANNEL_SHARE)
    cta = _pick(rng, CALLS_TO_ACTION)
    headline, headline_effect = _text(rng, words=(2, 5), phrase_rate=0.3, strength=1.0)
    body, body_effect = _text(rng, words=(8, 25), phrase_rate=0.15, strength=0.5)
    domain, domain_effect = _domain(rng, brands)
    image, image_effect = _image(rng, channel)
    metadata, metadata_effect = _metadata(rng)
    logit = (
        headline_effect
        + body_effect
        + CTA_BY_CHANNEL[CHANNELS.index(channel)][CALLS_TO_ACTION.index(cta)]
        + domain_effect
        + image_effect
        + metadata_effect
    )
    creative = {
        "creative_id": f"syn-{int(rng.integers(0, 2**40)):011x}",
        "headline": headline,
        "body": body,
        "call_to_action": cta,
        "channel": channel,
        "landing_domain": domain,
        "image": image,
        "metadata": metadata,
    }
    return creative, INTERCEPT + SIGNAL * logit


def _text(rng: np.random.Generator, words: tuple[int, int], phrase_rate: float, strength: float) -> tuple[str, float]:
    chunks = [_pick(rng, PRODUCTS)]
    chunks += [FILLER[i] for i in rng.integers(len(FILLER), size=int(rng.integers(*words)))]
    effect = 0.0
    for (phrase, phrase_effect), draw in zip(PHRASES.items(), rng.random(len(PHRASES)), strict=True):
        if draw < phrase_rate / 4:
            chunks.append(phrase)
            effect += strength * phrase_effect
    rng.shuffle(chunks)
    text = " ".join(chunks)
    if strength == 1.0:
        effect -= 0.08 * max(0, len(text.split()) - 8)
    return text[:1].upper() + text[1:], effect


def _domain(rng: np.random.Generator, brands: list[tuple[str, float]]) -> tuple[str, float]:
    brand, reputation = brands[int(rng.integers(len(brands)))]
    tld = _pick(rng, TLDS, TLD_SHARE)
    return f"{_pick(rng, SUBDOMAINS)}{brand}.{tld}", reputation + TLD_EFFECT.get(tld, 0.0)


def _image(rng: np.random.Generator, channel: str) -> tuple[dict[str, Any], float]:
    size = _pick(rng, tuple(IMAGE_SIZES))
    width, height = (max(1, round(side * rng.uniform(0.9, 1.1))) for side in IMAGE_SIZES[size])
    text_area = float(np.clip(rng.beta(2, 9), 0.0, 1.0))
    colors = [f"#{int(c):06x}" for c in rng.integers(0, 1 << 24, size=int(rng.integers(1, 6)))]
    luminance = [_luminance(c) for c in colors]
    fit = 0.35 if size in PREFERRED_SIZES[channel] else -0.35
    effect = fit * (0.5 if channel == "search" else 1.0) - 4 * max(0.0, text_area - 0.2)
    effect += 0.8 * (max(luminance) - min(luminance) - 0.3)
    image = {"width": width, "height": height, "text_area_ratio": round(text_area, 4), "dominant_colors": colors}
    return image, effect


def _pick(rng: np.random.Generator, options: tuple[str, ...], shares: tuple[float, ...] | None = None) -> str:
    if shares is None:
        return options[int(rng.integers(len(options)))]
    return options[min(int(np.searchsorted(np.cumsum(shares), rng.random(), side="right")), len(options) - 1)]


def _luminance(color: str) -> float:
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _metadata(rng: np.random.Generator) -> tuple[dict[str, Any], float]:
    tenure = float(np.clip(rng.lognormal(math.log(400), 1.0), 0, 36_500))
    budget = float(np.clip(rng.lognormal(math.log(200), 1.2), 0, 1_000_000))
    ctr = float(rng.beta(2, 70))
    effect = 30 * (ctr - 0.028) + 0.1 * (math.log1p(tenure) - 6) + 0.08 * (math.log10(budget + 1) - 2.3)
    metadata = {
        "advertiser_tenure_days": round(tenure),
        "daily_budget_usd": round(budget, 2),
        "historical_ctr": round(ctr, 5),
    }
    return metadata, effect


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic), with tied scores sharing their average rank."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both positive and negative labels")
    _, inverse, counts = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True, return_counts=True)
    first_rank = np.cumsum(counts) - counts + 1
    ranks = (first_rank + (counts - 1) / 2)[inverse]
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))
