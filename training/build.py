"""Train every reference model, package it as a SageMaker archive, and write the manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from creative_scorers import CONFIG_FILE, WEIGHTS_FILE
from training.archive import MANIFEST, code_files, digest, read_manifest, write_archive
from training.dataset import DATASET_VERSION
from training.train import REFERENCE_MODELS, ModelSpec, Progress, Splits, TrainedModel, evaluate, splits, train

MAX_ARCHIVE_BYTES = 5 * 1024 * 1024
BUILD_THREADS = 2


def build(artifacts_dir: Path, *, only: tuple[str, ...] = (), progress: Progress = print) -> list[dict[str, Any]]:
    """Build the archives of the reference models (or of `only` those) and rewrite the manifest."""
    unknown = set(only) - {s.name for s in REFERENCE_MODELS}
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; known: {[s.name for s in REFERENCE_MODELS]}")
    specs = [s for s in REFERENCE_MODELS if not only or s.name in only]
    # Parallel reductions split work by thread count; a fixed count keeps the trained weights, and so the
    # archives' bytes, the same on every machine with the same CPU kernels.
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
    code = code_files()
    archive = artifacts_dir / f"{spec.name}.tar.gz"
    sha256 = write_archive(archive, {**model_files(model), **code})
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
        "code_sha256": digest(code),
        "metrics": evaluate(model, data.test),
    }


def model_files(model: TrainedModel) -> dict[str, bytes]:
    weights = {name: tensor.contiguous() for name, tensor in model.net.state_dict().items()}
    return {CONFIG_FILE: model.config.to_json().encode(), WEIGHTS_FILE: save(weights)}
