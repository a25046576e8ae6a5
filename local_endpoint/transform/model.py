"""The model archive a job names: found in the models folder or downloaded from S3, then extracted."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from creative_scoring.artifacts.archive import UnsafeArchive, read_manifest, safe_extract
from creative_scoring.artifacts.transform_request import TransformError
from local_endpoint.s3 import ObjectStore
from local_endpoint.transform.job import MIB, TransformJob


def resolve_model(model: str, models_dir: Path) -> Path:
    """The archive ``--model`` names: a .tar.gz path, or a model or archive name in ``models_dir``."""
    path = Path(model).expanduser()
    if path.is_file():
        return path
    for candidate in (models_dir / model, models_dir / f"{model}.tar.gz"):
        if candidate.is_file():
            return candidate
    names = [m["name"] for m in read_manifest(models_dir)] or sorted(p.name for p in models_dir.glob("*.tar.gz"))
    raise TransformError(
        f"model (--model) {model!r}: no such archive, and no such model in {models_dir}: give a .tar.gz path, "
        f"an s3:// URI or one of {names}"
    )


def fetch_model(job: TransformJob, work: Path, store: Callable[[], ObjectStore]) -> Path:
    """The job's archive: resolved locally, or downloaded into ``work``."""
    if not job.model.startswith("s3://"):
        return resolve_model(job.model, job.models_dir)
    target = work / "model.tar.gz"
    try:
        target.write_bytes(store().read(job.model))
    except Exception as e:
        raise TransformError(
            f"model (--model) {job.model}: could not download it: {e}; "
            "check the URI, --s3-endpoint-url and AWS credentials"
        ) from e
    return target


def extract(archive: Path, work: Path) -> Path:
    """``<work>/model``, the archive extracted afresh."""
    model_dir = work / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    try:
        return safe_extract(archive, model_dir)
    except (UnsafeArchive, OSError, EOFError, tarfile.TarError) as e:
        raise TransformError(f"model (--model) {archive}: not a usable model archive: {e}") from e


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def workdir(folder: Path | None) -> Iterator[Path]:
    """``folder`` (created, and kept), or a temporary folder."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="local-transform-") as scratch:
        yield Path(scratch)
