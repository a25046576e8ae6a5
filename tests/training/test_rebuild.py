"""What a rebuild reproduces, and where: see "Reproducibility" in docs/models.md.

- Packaging given weights gives the committed archive bytes on every machine.
- Training twice on one machine gives the same archive bytes.
- Training with other CPU kernels gives other weights, so only the metrics are compared: the held-out AUC
  within AUC_TOLERANCE, everything computed from the data alone exactly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from creative_scorers import CONFIG_FILE, load_scorer
from creative_scoring.artifacts.archive import read_manifest, read_members
from creative_scoring.paths import MODEL_ARTIFACTS, ROOT
from tests.conftest import MANIFEST, LoadedArchive
from training.build import AUC_TOLERANCE, model_files, package

# Another CPU, as far as one machine can play it: PyTorch's scalar kernels instead of its AVX2 or AVX-512 ones,
# oneDNN's SSE4.1 convolutions, and numpy without the x86 targets it picks at run time (off x86, numpy only warns
# about these names). They round differently, so the weights differ, as on another CPU.
GENERIC_KERNELS = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
}
# What depends on the trained weights; everything else in a manifest entry depends on the data and code only.
WEIGHT_DEPENDENT = ("sha256", "size_bytes")


@dataclass(frozen=True)
class Build:
    """The archives and manifest entries of one `creative-scoring train build`."""

    artifacts: Path
    entries: dict[str, dict[str, Any]]

    def sha256(self, name: str) -> str:
        return hashlib.sha256((self.artifacts / self.entries[name]["archive"]).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the files git tracks or would track, without the committed archives."""
    destination = tmp_path_factory.mktemp("tree")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file() and not name.startswith("model_artifacts/"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def _build(tree: Path, artifacts: Path, **environment: str) -> Build:
    """Build every model in a fresh interpreter, so no state of this one (threads, seeds, kernels) leaks in."""
    command = [sys.executable, "-m", "creative_scoring", "train", "build", "--artifacts", str(artifacts)]
    subprocess.run(command, cwd=tree, env={**os.environ, **environment}, check=True)
    return Build(artifacts, {entry["name"]: entry for entry in read_manifest(artifacts)})


@pytest.fixture(scope="module")
def native_build(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build(tree, tmp_path_factory.mktemp("native"))


@pytest.fixture(scope="module")
def native_rebuild(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build(tree, tmp_path_factory.mktemp("native-again"))


@pytest.fixture(scope="module")
def generic_kernel_build(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build(tree, tmp_path_factory.mktemp("generic-kernels"), **GENERIC_KERNELS)


@pytest.fixture(params=["native_build", "generic_kernel_build"])
def build(request: pytest.FixtureRequest) -> Build:
    """Each build whose metrics must stay within the tolerance: this CPU's kernels, and generic ones."""
    built: Build = request.getfixturevalue(request.param)
    return built


MODELS = pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])


@MODELS
def test_repackaging_the_committed_weights_gives_the_committed_archive(
    entry: dict[str, Any], loaded_archives: dict[str, LoadedArchive], tmp_path: Path
) -> None:
    """Weights loaded into the network and written out again, with the current code: no byte may change."""
    scorer = load_scorer(loaded_archives[entry["name"]].model_dir, torch.device("cpu"))
    assert package(tmp_path / entry["archive"], model_files(scorer.config, scorer.net)) == entry["sha256"]


def test_repackaging_weights_one_bit_apart_gives_another_archive(
    loaded_archives: dict[str, LoadedArchive], tmp_path: Path
) -> None:
    entry = MANIFEST[0]
    scorer = load_scorer(loaded_archives[entry["name"]].model_dir, torch.device("cpu"))
    with torch.no_grad():
        weight = next(scorer.net.parameters()).view(-1)
        weight[0] = torch.nextafter(weight[0], torch.tensor(float("inf")))
    assert package(tmp_path / entry["archive"], model_files(scorer.config, scorer.net)) != entry["sha256"]


def test_training_twice_on_one_machine_gives_the_same_archives(native_build: Build, native_rebuild: Build) -> None:
    assert native_rebuild.entries == native_build.entries
    for name in native_build.entries:
        assert native_rebuild.sha256(name) == native_build.sha256(name), name


@MODELS
def test_retrained_auc_is_within_tolerance_of_the_committed_one(entry: dict[str, Any], build: Build) -> None:
    auc, committed = build.entries[entry["name"]]["metrics"]["test_auc"], entry["metrics"]["test_auc"]
    assert abs(auc - committed) <= AUC_TOLERANCE, f"held-out AUC {auc}, committed {committed}"


@MODELS
def test_retraining_changes_nothing_but_the_weights_and_their_auc(entry: dict[str, Any], build: Build) -> None:
    """Data, configuration (vocabulary included) and code do not depend on the CPU; only training does."""
    assert _without_weights(build.entries[entry["name"]]) == _without_weights(entry)
    rebuilt = read_members(build.artifacts / entry["archive"])
    assert rebuilt[CONFIG_FILE] == read_members(MODEL_ARTIFACTS / entry["archive"])[CONFIG_FILE]


def _without_weights(entry: dict[str, Any]) -> dict[str, Any]:
    metrics = {k: v for k, v in entry["metrics"].items() if k != "test_auc"}
    return {**{k: v for k, v in entry.items() if k not in WEIGHT_DEPENDENT}, "metrics": metrics}
