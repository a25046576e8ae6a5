"""Byte-for-byte reproducible SageMaker model archives, and extraction that accepts only plain files and folders.

Layout read by the SageMaker PyTorch serving container (weights at the root, handler code under ``code/``)::

    model.json  model.safetensors  code/inference.py  code/creative_schema.py  code/creative_features.py
    code/creative_scorers.py  code/requirements.txt
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from creative_scoring.paths import INFERENCE_DIR

CODE_FILES = (
    "inference.py",
    "creative_schema.py",
    "creative_features.py",
    "creative_scorers.py",
    "requirements.txt",
)
MANIFEST = "manifest.json"
ARCHIVE_MTIME = 946_684_800  # 2000-01-01T00:00:00Z: fixed, so rebuilding gives the same bytes


class UnsafeArchive(ValueError):
    """An archive member that could write outside the extraction folder, or is not a plain file or folder."""


def code_files(inference_dir: Path = INFERENCE_DIR) -> dict[str, bytes]:
    """The handler code as archive members under ``code/``."""
    return {f"code/{name}": (inference_dir / name).read_bytes() for name in CODE_FILES}


def digest(files: Mapping[str, bytes]) -> str:
    """sha256 over names and contents, independent of the order the mapping was built in."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\0{len(files[name])}\0".encode())
        h.update(files[name])
    return h.hexdigest()


def write_archive(path: Path, files: Mapping[str, bytes]) -> str:
    """Write ``files`` as a gzipped tar with fixed order, times, owners and modes; return its sha256."""
    data = archive_bytes(files)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def archive_bytes(files: Mapping[str, bytes]) -> bytes:
    """``files`` as a gzipped tar with fixed order, times, owners and modes: the same files give the same bytes."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=ARCHIVE_MTIME) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for directory in sorted({str(p) for name in files for p in PurePosixPath(name).parents} - {"."}):
            tar.addfile(_member(directory + "/", tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            tar.addfile(_member(name, tarfile.REGTYPE, 0o644, len(files[name])), io.BytesIO(files[name]))
    return buffer.getvalue()


def _member(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def read_members(archive: Path | bytes) -> dict[str, bytes]:
    """The regular files of a checked archive (a path, or the archive's bytes), by name."""
    source = {"name": archive} if isinstance(archive, Path) else {"fileobj": io.BytesIO(archive)}
    with tarfile.open(mode="r:gz", **source) as tar:
        members = _checked(tar, archive if isinstance(archive, Path) else Path("<archive>"))
        return {m.name: _read(tar, m) for m in members if m.isfile()}


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None  # regular files always have a body
    return handle.read()


def safe_extract(archive: Path, destination: Path) -> Path:
    """Extract like SageMaker does before starting the container, refusing unsafe members.

    Raises:
        UnsafeArchive: a member has an absolute path, a ``..`` component, or is a link, device or FIFO.
        tarfile.TarError: the file is not a gzipped tar.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        members = _checked(tar, archive)
        tar.extractall(destination, members=members, filter="data")
    return destination


def _checked(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or member.name.startswith(("/", "\\")) or ".." in path.parts:
            raise UnsafeArchive(f"{archive}: member {member.name!r} would be written outside the model folder")
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchive(f"{archive}: member {member.name!r} is a link or special file; only files are allowed")
    return members


def read_manifest(artifacts_dir: Path) -> list[dict[str, Any]]:
    path = artifacts_dir / MANIFEST
    if not path.exists():
        return []
    models: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["models"]
    return models
