from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from creative_scoring.artifacts.archive import (
    UnsafeArchive,
    code_files,
    digest,
    read_members,
    safe_extract,
    write_archive,
)
from creative_scoring.paths import MODEL_ARTIFACTS
from tests.conftest import MANIFEST
from training.build import MAX_ARCHIVE_BYTES

EXPECTED_MEMBERS = {
    "model.json",
    "model.safetensors",
    "code/inference.py",
    "code/creative_schema.py",
    "code/creative_features.py",
    "code/creative_scorers.py",
    "code/requirements.txt",
}


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_archive_has_the_pytorch_container_layout(entry: dict[str, object]) -> None:
    members = read_members(MODEL_ARTIFACTS / str(entry["archive"]))
    assert set(members) == EXPECTED_MEMBERS


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_manifest_matches_the_archive_on_disk(entry: dict[str, object]) -> None:
    data = (MODEL_ARTIFACTS / str(entry["archive"])).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size_bytes"] == len(data) < MAX_ARCHIVE_BYTES


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["name"] for e in MANIFEST])
def test_archived_code_is_the_current_inference_code(entry: dict[str, object]) -> None:
    """Fails when inference/ changed and `make models` was not run: the archives would ship stale code."""
    members = read_members(MODEL_ARTIFACTS / str(entry["archive"]))
    assert digest({k: v for k, v in members.items() if k.startswith("code/")}) == entry["code_sha256"]
    assert entry["code_sha256"] == digest(code_files())


def test_same_files_give_the_same_bytes_whatever_the_insertion_order(tmp_path: Path) -> None:
    files = {"b.txt": b"b", "code/a.py": b"a", "a.bin": b"\x00" * 10}
    first = write_archive(tmp_path / "one.tar.gz", files)
    second = write_archive(tmp_path / "two.tar.gz", dict(reversed(files.items())))
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_archive_members_have_fixed_owner_time_and_mode(tmp_path: Path) -> None:
    write_archive(tmp_path / "a.tar.gz", {"code/x.py": b"x"})
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"code", "code/x.py"}
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, 946_684_800)}
    assert (members["code"].mode, members["code/x.py"].mode) == (0o755, 0o644)


def _tar(tmp_path: Path, add: Callable[[tarfile.TarFile], None]) -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def _file(name: str) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))

    return add


def _link(name: str, kind: bytes, target: str) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)

    return add


@pytest.mark.parametrize(
    ("add", "problem"),
    [
        (_file("../escape.txt"), "outside the model folder"),
        (_file("code/../../escape.txt"), "outside the model folder"),
        (_file("/etc/cron.d/evil"), "outside the model folder"),
        (_link("code/inference.py", tarfile.SYMTYPE, "/etc/passwd"), "is a link or special file"),
        (_link("model.json", tarfile.LNKTYPE, "code/inference.py"), "is a link or special file"),
        (_link("fifo", tarfile.FIFOTYPE, ""), "is a link or special file"),
    ],
)
def test_unsafe_members_are_refused_and_nothing_is_written(
    tmp_path: Path, add: Callable[[tarfile.TarFile], None], problem: str
) -> None:
    archive = _tar(tmp_path, add)
    destination = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match=problem):
        safe_extract(archive, destination)
    assert not any(destination.rglob("*"))
    assert not (tmp_path / "escape.txt").exists()


def test_safe_extract_restores_the_files(tmp_path: Path) -> None:
    write_archive(tmp_path / "a.tar.gz", {"model.json": b"{}", "code/inference.py": b"pass\n"})
    out = safe_extract(tmp_path / "a.tar.gz", tmp_path / "model")
    assert (out / "code" / "inference.py").read_bytes() == b"pass\n"
    assert (out / "model.json").read_bytes() == b"{}"
