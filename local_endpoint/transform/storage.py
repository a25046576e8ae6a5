"""The job's input and output locations: a local folder (or one file of it), or an S3 prefix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from creative_scoring.artifacts.transform_request import TransformError
from creative_scoring.files import remove_temporary_files, write_atomically
from local_endpoint.s3 import ObjectStore, split_location
from local_endpoint.transform.job import output_base


@dataclass(frozen=True)
class StoredObject:
    key: str  # "/"-separated, relative to the location
    size: int
    etag: str  # S3's ETag; for a local file its modification time and size


class Storage(Protocol):
    """A location of objects: the job's input or its output."""

    uri: str

    def list(self) -> list[StoredObject]: ...
    def read(self, key: str) -> bytes: ...
    def write(self, key: str, data: bytes) -> None:
        """Readers see the previous object or all of ``data``, never part of it."""

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None:
        """Remove ``key`` if it is there."""

    def describe(self, key: str) -> str: ...
    def prepare(self) -> None:
        """Check that outputs can be written here; raises when they cannot.

        A folder is created, and the temporary files that a killed run's writes left there are removed.
        """


class FolderStorage:
    """A local folder (``only``: just one file of it)."""

    def __init__(self, root: Path, only: str | None = None) -> None:
        self.root = root
        self.only = only
        self.uri = str(root / only) if only else str(root)

    def list(self) -> list[StoredObject]:
        paths = [self.root / self.only] if self.only else [p for p in self.root.rglob("*") if p.is_file()]
        objects = []
        for path in paths:
            stat = path.stat()
            key = path.relative_to(self.root).as_posix()
            objects.append(StoredObject(key, stat.st_size, f"{stat.st_mtime_ns:x}-{stat.st_size:x}"))
        return sorted(objects, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        write_atomically(self.root / key, data)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def prepare(self) -> None:
        """Create the folder, and remove the temporary files of writes a killed run left half done."""
        self.root.mkdir(parents=True, exist_ok=True)
        # a SIGKILL between writing an output's temporary file and renaming it leaves that file for good (its
        # input is redone: the checkpoint lists an input only after its output is renamed). It also removes the
        # writes in progress of a second job run on the same folder at the same time, which this does not support
        remove_temporary_files(self.root)


class S3Storage:
    """Objects under ``s3://bucket/<base><match>``; keys are relative to ``base`` (a "folder" or empty)."""

    def __init__(self, store: ObjectStore, bucket: str, base: str, match: str = "") -> None:
        self.store = store
        self.bucket = bucket
        self.base = base
        self.match = match
        self.uri = f"s3://{bucket}/{base}{match}"

    def list(self) -> list[StoredObject]:
        items = self.store.list(self.bucket, self.base + self.match)
        objects = [
            StoredObject(item["Key"][len(self.base) :], int(item["Size"]), str(item["ETag"]).strip('"'))
            for item in items
            if not item["Key"].endswith("/")  # folder markers are not inputs
        ]
        return sorted(objects, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        return self.store.read(self.describe(key))

    def write(self, key: str, data: bytes) -> None:
        self.store.write(self.describe(key), data)

    def exists(self, key: str) -> bool:
        return self.store.size(self.describe(key)) is not None

    def delete(self, key: str) -> None:
        self.store.delete(self.describe(key))

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.base}{key}"

    def prepare(self) -> None:
        self.store.require_bucket(self.bucket)


def open_input(uri: str, store: Callable[[], ObjectStore]) -> Storage:
    """The input location: a folder (every file under it), one file, or an S3 prefix.

    An S3 input's keys are relative to the prefix's last ``/``: ``s3://b/in/`` gives ``a.jsonl`` for
    ``in/a.jsonl``; ``s3://b/in/part`` matches ``in/part-1.jsonl`` as ``part-1.jsonl``.
    """
    if uri.startswith("s3://"):
        bucket, prefix = split_location(uri)
        cut = prefix.rfind("/") + 1
        return S3Storage(store(), bucket, prefix[:cut], prefix[cut:])
    path = Path(uri)
    if path.is_dir():
        return FolderStorage(path)
    if path.is_file():
        return FolderStorage(path.parent, only=path.name)
    raise TransformError(f"input (--input) {uri!r} does not exist: give a folder, a file or s3://bucket/prefix")


def open_output(uri: str, store: Callable[[], ObjectStore]) -> Storage:
    if uri.startswith("s3://"):
        bucket, prefix = split_location(uri)
        return S3Storage(store(), bucket, output_base(prefix))
    path = Path(uri)
    if path.exists() and not path.is_dir():
        raise TransformError(f"output (--output) {uri!r} is a file: give a folder (it is created if missing)")
    return FolderStorage(path)
