"""A published model version: its name, its archive packaged with the deployed inference code, and the checks it
passes before anything is uploaded.

A version is published under ``<name>.tar.gz``, the ``TargetModel`` a multi-model endpoint is invoked with. The
archive has the layout of ``model_artifacts/`` (weights at the root, the handler code under ``code/``) and is
byte-for-byte reproducible: the same model files and code give the same sha256 on every machine.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from creative_scoring.artifacts import archive as archive_format
from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from creative_scoring.artifacts.published import SUFFIX
from creative_scoring.paths import INFERENCE_DIR, SAMPLES

# Stricter than TargetModel's own rule (1..1024 printable characters): a name that is also a plain S3 key, a
# file name and an IAM condition value (sagemaker:TargetModel) without escaping.
NAME_RULE = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,98}[a-z0-9])?")
SAMPLE_TYPES = {".json": "application/json", ".jsonl": "application/jsonlines"}


class VersionError(ValueError):
    """A model version that must not be published; the message names the problem and the fix."""


@dataclass(frozen=True)
class Packaged:
    name: str
    archive: Path
    sha256: str
    size_bytes: int
    code_sha256: str

    @property
    def target_model(self) -> str:
        return target_model(self.name)


@dataclass(frozen=True)
class SampleResult:
    sample: str
    status: int
    scores: tuple[float, ...]
    message: str = ""


def target_model(name: str) -> str:
    """The ``TargetModel`` of version ``name``; `VersionError` if the name breaks the naming rule."""
    if not NAME_RULE.fullmatch(name):
        raise VersionError(
            f"version name {name!r} is not allowed: use 1 to 100 lowercase letters, digits, '.' and '-', starting "
            "and ending with a letter or digit (it becomes the TargetModel NAME.tar.gz), e.g. creative-scorer-v3"
        )
    return f"{name}{SUFFIX}"


def name_of(target: str) -> str:
    """The version name of a ``TargetModel`` (``NAME.tar.gz``)."""
    return target.removesuffix(SUFFIX)


def model_files(source: Path) -> dict[str, bytes]:
    """The model's own files (everything but ``code/``) from a trained model folder or a model archive."""
    if not source.exists():
        raise VersionError(f"{source} does not exist: pass a trained model folder or a .tar.gz model archive")
    files = dict(_folder_files(source)) if source.is_dir() else _archive_files(source)
    files = {name: data for name, data in files.items() if not name.startswith("code/")}
    if not files:
        raise VersionError(f"{source} holds no model files (only code/ or nothing): pass the trained model")
    return files


def _folder_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise VersionError(f"{path} is a symbolic link; a model folder may hold only plain files")
        if path.is_file():
            yield path.relative_to(folder).as_posix(), path.read_bytes()


def _archive_files(archive: Path) -> dict[str, bytes]:
    try:
        return archive_format.read_members(archive)
    except archive_format.UnsafeArchive as e:
        raise VersionError(f"unsafe archive: {e}") from e
    except (tarfile.TarError, OSError, EOFError) as e:
        raise VersionError(f"{archive} is not a gzipped tar model archive ({e}); pass a .tar.gz or a folder") from e


def package(name: str, source: Path, out_dir: Path, inference_dir: Path = INFERENCE_DIR) -> Packaged:
    """Package ``source``'s model files with the handler code of ``inference_dir`` as ``out_dir/NAME.tar.gz``."""
    archive = out_dir / target_model(name)
    code = archive_format.code_files(inference_dir)
    sha256 = archive_format.write_archive(archive, {**model_files(source), **code})
    return Packaged(name, archive, sha256, archive.stat().st_size, archive_format.digest(code))


def check_scores(archive: Path, samples_dir: Path, workdir: Path) -> list[SampleResult]:
    """Load ``archive`` as the container does and score every sample request through the real handler chain.

    Raises `VersionError` when the model does not load, a sample fails with a 5xx, no sample is scored, or a
    score is outside [0, 1]. A 4xx (the model refuses a sample, e.g. a channel it does not score) is reported.
    """
    model_dir = archive_format.safe_extract(archive, workdir / "model")
    try:
        chain = HandlerChain(import_handler(model_dir / "code"))
        model = chain.load(model_dir)
    except Exception as e:  # a user's model_fn may raise anything: each is a reason not to publish
        raise VersionError(f"{archive.name} does not load through model_fn: {type(e).__name__}: {e}") from e
    results = [_score(chain, model, *sample) for sample in samples(samples_dir)]
    if failed := [r for r in results if r.status >= 500]:
        first = failed[0]
        raise VersionError(f"{archive.name} fails on sample {first.sample}: HTTP {first.status}: {first.message}")
    if not any(r.status == 200 for r in results):
        raise VersionError(f"{archive.name} scored none of the samples in {samples_dir}: {results}")
    out_of_range = [(r.sample, s) for r in results for s in r.scores if not 0.0 <= s <= 1.0]
    if out_of_range:
        raise VersionError(f"{archive.name} gives scores outside [0, 1]: {out_of_range[:3]}")
    return results


def _score(chain: HandlerChain, model: object, sample: str, body: bytes, content_type: str) -> SampleResult:
    response = chain.invoke(model, body, content_type, "application/json")
    if response.status != 200:
        return SampleResult(sample, response.status, (), response.body.decode("utf-8", "replace"))
    try:
        return SampleResult(sample, 200, scores_of(response.body))
    except ValueError as e:
        return SampleResult(sample, 500, (), str(e))


def samples(samples_dir: Path = SAMPLES) -> list[tuple[str, bytes, str]]:
    """The sample requests: (file name, body, content type)."""
    found = sorted(p for p in samples_dir.iterdir() if p.suffix in SAMPLE_TYPES)
    return [(p.name, p.read_bytes(), SAMPLE_TYPES[p.suffix]) for p in found]


def scores_of(body: bytes) -> tuple[float, ...]:
    """The scores of a response ``{"predictions": [{"score": ...}, ...]}``; `ValueError` for any other body."""
    try:
        return tuple(float(p["score"]) for p in json.loads(body)["predictions"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"the response is not {{'predictions': [{{'score': ...}}]}} ({e}): {body[:200]!r}") from e
