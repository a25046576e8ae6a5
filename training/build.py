"""Train every reference model, package it as a SageMaker archive, and write the manifest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from torch import nn

from creative_scorers import CONFIG_FILE, WEIGHTS_FILE, ModelConfig
from creative_scoring.artifacts.archive import MANIFEST, code_files, digest, read_manifest, write_archive
from training.dataset import DATASET_VERSION
from training.train import REFERENCE_MODELS, ModelSpec, Progress, Splits, evaluate, splits, train

MAX_ARCHIVE_BYTES = 5 * 1024 * 1024
BUILD_THREADS = 2
# How far a model's held-out AUC may move when the build runs on another CPU, whose kernels round differently
# and so train other weights. Three times the largest move measured (0.0016, creative-scorer-v2, over four sets of
# kernels); retraining from another seed moves it further (up to 0.004, and 0.011 for creative-scorer-social-v1).
AUC_TOLERANCE = 0.005


def build(artifacts_dir: Path, *, only: tuple[str, ...] = (), progress: Progress = print) -> list[dict[str, Any]]:
    """Build the archives of the reference models (or of `only` those) and rewrite the manifest."""
    unknown = set(only) - {s.name for s in REFERENCE_MODELS}
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; known: {[s.name for s in REFERENCE_MODELS]}")
    specs = [s for s in REFERENCE_MODELS if not only or s.name in only]
    # Parallel kernels may split their work by thread count, so a fixed count takes one source of variation away.
    # The weights still depend on the kernels PyTorch picks for the CPU (scalar, AVX2, AVX-512): archives are
    # byte-identical only when rebuilt on the same kind of CPU with the same libraries; elsewhere the held-out
    # AUCs agree within AUC_TOLERANCE (docs/models.md, "Reproducibility").
    torch.set_num_threads(BUILD_THREADS)
    progress(f"generating {DATASET_VERSION}")
    data = splits()
    entries = {e["name"]: e for e in read_manifest(artifacts_dir)}
    for number, spec in enumerate(specs, start=1):
        progress(f"[{number}/{len(specs)}] training {spec.name} ({spec.architecture})")
        entry = _build_one(spec, data, artifacts_dir, progress)
        entries[spec.name] = entry
        metrics = entry["metrics"]
        progress(
            f"[{number}/{len(specs)}] {spec.name}: held-out AUC {metrics['test_auc']:.4f} "
            f"(ceiling {metrics['ceiling_auc']:.4f}), {entry['size_bytes'] / 1024:.0f} KiB"
        )
    manifest = [entries[name] for name in sorted(entries)]
    (artifacts_dir / MANIFEST).write_text(json.dumps({"models": manifest}, indent=2) + "\n", encoding="utf-8")
    return manifest


def _build_one(spec: ModelSpec, data: Splits, artifacts_dir: Path, progress: Progress) -> dict[str, Any]:
    model = train(spec, data.train, progress=progress)
    progress(f"  {spec.name}: trained in {model.seconds:.1f} s")
    archive = artifacts_dir / f"{spec.name}.tar.gz"
    sha256 = package(archive, model_files(model.config, model.net))
    size = archive.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise ValueError(f"{archive} is {size} bytes; archives must stay under {MAX_ARCHIVE_BYTES}")
    return {
        "name": spec.name,
        "version": spec.version,
        "architecture": spec.architecture,
        "channels": list(spec.channels),
        "archive": archive.name,
        "sha256": sha256,
        "size_bytes": size,
        "code_sha256": digest(code_files()),
        "metrics": evaluate(model, data.test),
    }


def model_files(config: ModelConfig, net: nn.Module) -> dict[str, bytes]:
    """The configuration and weights files of one model, as archive members."""
    weights = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    return {CONFIG_FILE: config.to_json().encode(), WEIGHTS_FILE: save(weights)}


def package(archive: Path, files: Mapping[str, bytes]) -> str:
    """Write the archive of one model's `files` (its `model_files`) with the current handler code; return its sha256.

    Packaging only copies and deflates bytes, so the same files and code give the same archive on every machine
    whose zlib is the reference one (zlib-ng, the system zlib of Fedora 40 and later, deflates differently).
    """
    return write_archive(archive, {**files, **code_files()})
