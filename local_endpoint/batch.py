"""A SageMaker batch transform job on this machine: ``creative-scoring transform``.

The model archive is extracted (`safe_extract`) and loaded into an in-process `EmbeddedContainer`; every
mini-batch goes through ``container.invoke`` exactly as SageMaker POSTs ``/invocations`` (Content-Type and
Accept headers). Inputs and outputs are a local folder or an S3 prefix (boto3, any endpoint URL: AWS or a
local S3 such as moto).

Semantics copied from SageMaker (contract §12):

- ``SplitType`` ``None`` sends each input object whole; ``Line`` splits it into records at newlines.
- ``CompressionType`` ``Gzip``: each input object is decompressed before it is split; outputs are not compressed.
- ``BatchStrategy`` (needs ``SplitType Line``): ``SingleRecord`` sends one record per request,
  ``MultiRecord`` as many records as fit in ``MaxPayloadInMB``; mini-batches never span input files.
- ``AssembleWith`` ``None`` concatenates the responses; ``Line`` ends each response with a newline.
- One output per input object, ``<relative path>.out``, records in input order, written only when the whole
  input succeeded; other inputs carry on; the job fails when any input failed.
- A 5xx answer (or an exception of the model server) is retried up to ``InvocationsMaxRetries`` times; a 4xx
  answer fails its mini-batch at once.
- The container sees ``SAGEMAKER_BATCH=true``, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``,
  ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``, ``SAGEMAKER_BATCH_STRATEGY`` (when set) and the job's
  ``Environment`` while the job runs.

Local additions: ``<relative path>.out.failed.json`` next to where the ``.out`` would be, naming each failed
mini-batch (input line numbers, HTTP status, message); a checkpoint (`CHECKPOINT` in the output location) of
finished inputs with their size and ETag, so a rerun skips them and redoes unfinished, failed or changed ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import importlib
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

import anyio

from creative_scoring.artifacts.archive import UnsafeArchive, read_manifest, safe_extract
from local_endpoint.container import ContainerResponse, EmbeddedContainer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "model_artifacts"
MIB = 1024 * 1024

JSONLINES = "application/jsonlines"
SPLIT_TYPES = ("None", "Line")
BATCH_STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE_WITH = ("None", "Line")
COMPRESSION_TYPES = ("None", "Gzip")
UNSUPPORTED_SPLIT_TYPES = ("RecordIO", "TFRecord")
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB = 100  # also the bound on MaxConcurrentTransforms x MaxPayloadInMB
DEFAULT_MAX_RETRIES = 3
MAX_RETRIES = 3
MAX_ENVIRONMENT = 16
MAX_MEDIA_TYPE_CHARS = 256

OUT_SUFFIX = ".out"
FAILED_SUFFIX = ".out.failed.json"
CHECKPOINT = ".transform-checkpoint.json"
CHECKPOINT_FORMAT = "local-batch-transform-checkpoint/1"
CHECKPOINT_INTERVAL_S = 2.0
MODEL_NAME = "model"  # the container holds one model; requests go to /invocations

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$")
_INSTANCE_INDEX = re.compile(r"\binstances\[(\d+)\]")
_PAYLOAD_LINE = re.compile(r"\bline (\d+)\b")


class TransformError(ValueError):
    """Settings that SageMaker would refuse, or a job that cannot start; the message names the parameter and fix."""


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class TransformJob:
    """The settings of one job, named as in ``CreateTransformJob``; checked on construction."""

    model: str  # a .tar.gz path, an s3:// URI, or a model (archive) name of models_dir
    input: str  # TransformInput.DataSource: a folder, one file, or s3://bucket/prefix
    output: str  # TransformOutput.S3OutputPath: a folder or s3://bucket/prefix
    content_type: str = JSONLINES  # TransformInput.ContentType (SageMaker sends none when unset)
    accept: str | None = None  # TransformOutput.Accept; None: no Accept header, the model's default
    split_type: str = "None"  # TransformInput.SplitType
    compression_type: str = "None"  # TransformInput.CompressionType: Gzip inputs are decompressed first
    batch_strategy: str | None = None  # BatchStrategy; unset with SplitType Line: SingleRecord
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB  # MaxPayloadInMB
    assemble_with: str = "None"  # TransformOutput.AssembleWith
    workers: int = 1  # MaxConcurrentTransforms: mini-batches in flight at once
    max_retries: int = DEFAULT_MAX_RETRIES  # ModelClientConfig.InvocationsMaxRetries
    environment: Mapping[str, str] = field(default_factory=dict, hash=False)  # Environment
    s3_endpoint_url: str | None = None
    models_dir: Path = ARTIFACTS
    workdir: Path | None = None  # where the archive is extracted; None: a temporary folder

    def __post_init__(self) -> None:
        if type(self.workers) is int and self.workers == 0:  # SageMaker: 0 is unset, 1 without execution-parameters
            object.__setattr__(self, "workers", 1)
        _validate(self)

    @property
    def strategy(self) -> str | None:
        """The batch strategy in effect: None for SplitType None."""
        if self.split_type == "None":
            return None
        return self.batch_strategy or "SingleRecord"

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * MIB

    def sagemaker_settings(self) -> dict[str, Any]:
        """The job's settings under their CreateTransformJob names (for reports)."""
        return {
            "ContentType": self.content_type,
            "Accept": self.accept,
            "SplitType": self.split_type,
            "CompressionType": self.compression_type,
            "BatchStrategy": self.strategy,
            "MaxPayloadInMB": self.max_payload_mb,
            "AssembleWith": self.assemble_with,
            "MaxConcurrentTransforms": self.workers,
            "InvocationsMaxRetries": self.max_retries,
            "Environment": dict(sorted(self.environment.items())),
        }


def _validate(job: TransformJob) -> None:
    if not job.model.strip():
        raise TransformError(
            "model (--model): empty; give a .tar.gz path, an s3:// URI or a model name of --models-dir"
        )
    _check_location("input (--input)", job.input)
    _check_location("output (--output)", job.output)
    _check_media_type("ContentType (--content-type)", job.content_type)
    if job.accept is not None:
        _check_media_type("Accept (--accept)", job.accept)
    if job.split_type in UNSUPPORTED_SPLIT_TYPES:
        raise TransformError(
            f"SplitType (--split-type) {job.split_type} is not supported by the local transform: "
            "use Line (one record per line) or None (whole objects)"
        )
    _check_choice("SplitType (--split-type)", job.split_type, SPLIT_TYPES)
    _check_choice("CompressionType (--compression-type)", job.compression_type, COMPRESSION_TYPES)
    if job.batch_strategy is not None:
        _check_choice("BatchStrategy (--batch-strategy)", job.batch_strategy, BATCH_STRATEGIES)
        if job.split_type == "None":
            raise TransformError(
                f"BatchStrategy (--batch-strategy) {job.batch_strategy} needs SplitType Line: add --split-type Line, "
                "or leave the batch strategy unset to send each input object whole"
            )
    _check_int("MaxPayloadInMB (--max-payload-mb)", job.max_payload_mb)
    if job.max_payload_mb == 0:
        raise TransformError(
            "MaxPayloadInMB (--max-payload-mb) 0 asks for chunked streaming, which the local transform does not "
            f"support: give 1 to {MAX_PAYLOAD_MB} (default {DEFAULT_MAX_PAYLOAD_MB})"
        )
    if not 0 < job.max_payload_mb <= MAX_PAYLOAD_MB:
        raise TransformError(
            f"MaxPayloadInMB (--max-payload-mb) is {job.max_payload_mb}; it must be 1 to {MAX_PAYLOAD_MB} "
            f"(default {DEFAULT_MAX_PAYLOAD_MB})"
        )
    _check_choice("AssembleWith (--assemble-with)", job.assemble_with, ASSEMBLE_WITH)
    _check_int("MaxConcurrentTransforms (--workers)", job.workers)
    if job.workers < 1:
        raise TransformError(f"MaxConcurrentTransforms (--workers) is {job.workers}; it must be at least 1")
    if job.workers * job.max_payload_mb > MAX_PAYLOAD_MB:
        fewer = f"--workers to {MAX_PAYLOAD_MB // job.max_payload_mb}"
        smaller = MAX_PAYLOAD_MB // job.workers  # 0: no payload is small enough for so many workers
        raise TransformError(
            f"MaxConcurrentTransforms x MaxPayloadInMB is {job.workers} x {job.max_payload_mb} = "
            f"{job.workers * job.max_payload_mb}; it must be at most {MAX_PAYLOAD_MB}: lower {fewer}"
            + (f" or --max-payload-mb to {smaller}" if smaller else "")
        )
    _check_int("InvocationsMaxRetries (--max-retries)", job.max_retries)
    if not 0 <= job.max_retries <= MAX_RETRIES:
        raise TransformError(
            f"InvocationsMaxRetries (--max-retries) is {job.max_retries}; it must be 0 to {MAX_RETRIES}"
        )
    _check_environment(job.environment)
    if job.s3_endpoint_url is not None and not job.s3_endpoint_url.startswith(("http://", "https://")):
        raise TransformError(
            f"--s3-endpoint-url {job.s3_endpoint_url!r} is not a URL: give http://host:port or https://host"
        )
    _check_output_outside_input(job.input, job.output)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value in choices:
        return
    same = [c for c in choices if c.lower() == str(value).lower()]
    hint = f"values are case-sensitive: use {same[0]}" if same else f"use one of {', '.join(choices)}"
    raise TransformError(f"{name} is {value!r}; {hint}")


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TransformError(f"{name} is {value!r}; it must be a whole number")


def _check_media_type(name: str, value: str) -> None:
    if not value.strip() or len(value) > MAX_MEDIA_TYPE_CHARS or any(c in value for c in "\r\n"):
        raise TransformError(
            f"{name} is {value!r}; give a MIME type of at most {MAX_MEDIA_TYPE_CHARS} characters, "
            "for example application/jsonlines or application/json"
        )


def _check_environment(environment: Mapping[str, str]) -> None:
    if len(environment) > MAX_ENVIRONMENT:
        raise TransformError(
            f"Environment (--env) has {len(environment)} entries; a transform job takes at most {MAX_ENVIRONMENT}"
        )
    for key, value in environment.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise TransformError(
                f"Environment (--env) key {key!r} is not a variable name: use letters, digits and _, "
                "not starting with a digit"
            )
        if not isinstance(value, str) or len(value) > 10240:
            raise TransformError(f"Environment (--env) {key}: the value must be a string of at most 10240 characters")


def _check_location(name: str, value: str) -> None:
    if not value.strip():
        raise TransformError(f"{name}: empty; give a local folder or s3://bucket/prefix")
    if value.startswith("s3://"):
        bucket = value[5:].split("/", 1)[0]
        if not _BUCKET.match(bucket):
            raise TransformError(
                f"{name} {value!r}: {bucket!r} is not an S3 bucket name (3-63 lower-case letters, digits, '.', '-'); "
                "write s3://bucket/prefix"
            )
    elif "://" in value:
        raise TransformError(f"{name} {value!r}: only local paths and s3://bucket/prefix locations are supported")


def _check_output_outside_input(input_uri: str, output_uri: str) -> None:
    if input_uri.startswith("s3://") and output_uri.startswith("s3://"):
        in_bucket, in_prefix = _split_s3(input_uri)
        out_bucket, out_prefix = _split_s3(output_uri)
        inside = in_bucket == out_bucket and _s3_output_base(out_prefix).startswith(in_prefix)
    elif not input_uri.startswith("s3://") and not output_uri.startswith("s3://"):
        source, target = Path(input_uri).resolve(), Path(output_uri).resolve()
        inside = target == source or target.is_relative_to(source)
    else:
        inside = False
    if inside:
        raise TransformError(
            f"output (--output) {output_uri!r} is inside the input location {input_uri!r}: its .out files would "
            "become inputs of the next run; choose an output location outside the input"
        )


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def _s3_output_base(prefix: str) -> str:
    return prefix.rstrip("/") + "/" if prefix.strip("/") else ""


# ---------------------------------------------------------------------------------------------------- storage


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
        """Check that outputs can be written here (a folder is created); raises when they cannot."""


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
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


class S3Storage:
    """Objects under ``s3://bucket/<base><match>``; keys are relative to ``base`` (a "folder" or empty)."""

    def __init__(self, client: Any, bucket: str, base: str, match: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.base = base
        self.match = match
        self.uri = f"s3://{bucket}/{base}{match}"

    def list(self) -> list[StoredObject]:
        objects = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.base + self.match
        ):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # folder markers are not inputs
                    key = item["Key"][len(self.base) :]
                    objects.append(StoredObject(key, int(item["Size"]), str(item["ETag"]).strip('"')))
        return sorted(objects, key=lambda o: o.key)

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.base + key)["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.base + key, Body=data)  # S3 puts are atomic

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.base + key)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.base + key)

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.base}{key}"

    def prepare(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                raise FileNotFoundError(f"the bucket {self.bucket!r} does not exist") from e
            raise


def s3_client(endpoint_url: str | None, max_connections: int = 10) -> Any:
    """A boto3 S3 client; credentials and region come from the usual AWS settings (region default us-east-1)."""
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(max_pool_connections=max_connections, retries={"mode": "standard", "max_attempts": 3})
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def open_input(uri: str, client: Callable[[], Any]) -> Storage:
    """The input location: a folder (every file under it), one file, or an S3 prefix.

    An S3 input's keys are relative to the prefix's last ``/``: ``s3://b/in/`` gives ``a.jsonl`` for
    ``in/a.jsonl``; ``s3://b/in/part`` matches ``in/part-1.jsonl`` as ``part-1.jsonl``.
    """
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3(uri)
        cut = prefix.rfind("/") + 1
        return S3Storage(client(), bucket, prefix[:cut], prefix[cut:])
    path = Path(uri)
    if path.is_dir():
        return FolderStorage(path)
    if path.is_file():
        return FolderStorage(path.parent, only=path.name)
    raise TransformError(f"input (--input) {uri!r} does not exist: give a folder, a file or s3://bucket/prefix")


def open_output(uri: str, client: Callable[[], Any]) -> Storage:
    if uri.startswith("s3://"):
        bucket, prefix = _split_s3(uri)
        return S3Storage(client(), bucket, _s3_output_base(prefix))
    path = Path(uri)
    if path.exists() and not path.is_dir():
        raise TransformError(f"output (--output) {uri!r} is a file: give a folder (it is created if missing)")
    return FolderStorage(path)


# ------------------------------------------------------------------------------------------------- checkpoint


class Checkpoint:
    """Finished inputs (size and ETag) of a job with these settings, kept in the output location.

    Written atomically at most every `CHECKPOINT_INTERVAL_S` seconds while the job runs, and at its end,
    interruption included. An input whose ``.out`` was written just before a hard kill is redone: its
    output is the same.
    """

    def __init__(self, store: Storage, settings: Mapping[str, Any]) -> None:
        self.store = store
        self.settings = dict(settings)
        self.finished: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._flushed_at = time.monotonic()

    def load(self) -> str | None:
        """Read the previous run's checkpoint; returns a note when it was set aside."""
        if not self.store.exists(CHECKPOINT):
            return None
        try:
            data = json.loads(self.store.read(CHECKPOINT))
            finished = data["finished"]
            same = data.get("format") == CHECKPOINT_FORMAT and data.get("settings") == self.settings
        except (ValueError, KeyError, TypeError):
            return f"the checkpoint {self.store.describe(CHECKPOINT)} is unreadable: every input is redone"
        if not same:
            return "the job's settings or model differ from the checkpoint's: every input is redone"
        self.finished = {str(k): dict(v) for k, v in finished.items()}
        return None

    def is_done(self, obj: StoredObject) -> bool:
        entry = self.finished.get(obj.key)
        return entry is not None and entry.get("size") == obj.size and entry.get("etag") == obj.etag

    def mark(self, obj: StoredObject, records: int) -> None:
        with self._lock:
            self.finished[obj.key] = {"size": obj.size, "etag": obj.etag, "records": records}
            self._dirty = True

    def forget(self, key: str) -> None:
        with self._lock:
            if self.finished.pop(key, None) is not None:
                self._dirty = True

    def due(self) -> bool:
        return self._dirty and time.monotonic() - self._flushed_at >= CHECKPOINT_INTERVAL_S

    def flush(self) -> None:
        """Write the checkpoint if it changed; concurrent flushes write in turn, the last one the newest."""
        with self._lock:
            if not self._dirty:
                return
            body = {"format": CHECKPOINT_FORMAT, "settings": self.settings, "finished": self.finished}
            self.store.write(CHECKPOINT, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
            self._dirty = False
            self._flushed_at = time.monotonic()


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BatchFailure:
    """One failed mini-batch; for SplitType Line, its records are input lines first_line..last_line."""

    status: int | None  # the model server's HTTP status; None when it was never asked (read or write error)
    message: str
    records: int
    first_line: int | None = None
    last_line: int | None = None
    line: int | None = None  # the input line the model's message names (instances[i] / line n), if any
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "first_line": self.first_line,
            "last_line": self.last_line,
            "records": self.records,
            "status": self.status,
            "message": self.message,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class FileResult:
    key: str
    status: str  # "Completed", "Failed" or "Skipped" (finished by an earlier run)
    records: int
    failed_records: int = 0
    invocations: int = 0
    retries: int = 0
    failures: tuple[BatchFailure, ...] = ()
    location: str | None = None  # the .out, or the failure report


@dataclass
class TransformResult:
    job: TransformJob
    model_archive: str
    input_uri: str
    output_uri: str
    files: list[FileResult]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.status == "Failed" for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        def count(status: str) -> int:
            return sum(f.status == status for f in self.files)

        def records(status: str) -> int:
            return sum(f.records for f in self.files if f.status == status)

        done = [f for f in self.files if f.status != "Skipped"]
        processed = sum(f.records for f in done)
        failed_records = sum(f.failed_records for f in self.files)
        return {
            "status": "Completed" if self.ok else "Failed",
            "model": self.model_archive,
            "input": self.input_uri,
            "output": self.output_uri,
            "settings": self.job.sagemaker_settings(),
            "files": {
                "total": len(self.files),
                "succeeded": count("Completed"),
                "failed": count("Failed"),
                "skipped": count("Skipped"),
            },
            "records": {
                "succeeded": records("Completed"),
                "failed": failed_records,
                # answered by the model, but in an input that failed, so not written
                "discarded": records("Failed") - failed_records,
                "skipped": records("Skipped"),
            },
            "invocations": sum(f.invocations for f in self.files),
            "retries": sum(f.retries for f in self.files),
            "seconds": round(self.seconds, 3),
            "records_per_second": round(processed / self.seconds, 1) if self.seconds > 0 else None,
            "failures": [
                {
                    "input": f.key,
                    "report": f.location,
                    "failed_records": f.failed_records,
                    "first_error": f.failures[0].to_dict() if f.failures else None,
                }
                for f in self.files
                if f.status == "Failed"
            ],
            "notes": self.notes,
        }


# --------------------------------------------------------------------------------------------------- progress


class Progress:
    """Records done / total and records per second on stderr: tqdm when installed, else a self-refreshing line.

    The total is exact once every input has been read; until then the unread inputs are estimated from
    their size at the bytes per record seen so far (shown with ``~``).
    """

    def __init__(
        self, enabled: bool, files: int, total_bytes: int, stream: TextIO | None = None, *, use_tqdm: bool = True
    ) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.files, self.files_done, self.files_failed = files, 0, 0
        self.unread_bytes, self.read_bytes, self.known_records = total_bytes, 0, 0
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self._shown_at = time.perf_counter()  # the first line after 0.2 s (terminal) or 10 s
        self._last_line = ""
        self._tty = self.stream.isatty()
        self._bar: Any = None
        if enabled and use_tqdm and importlib.util.find_spec("tqdm") is not None:
            tqdm = importlib.import_module("tqdm").tqdm
            self._bar = tqdm(total=None, unit="rec", unit_scale=True, file=self.stream, dynamic_ncols=True)

    def note(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            self.stream.write(("\r\x1b[K" if self._tty else "") + message + "\n")
            self.stream.flush()

    def input_read(self, size: int, records: int) -> None:
        self.unread_bytes -= size
        self.read_bytes += size
        self.known_records += records
        self._show()

    def advance(self, records: int, *, failed: bool = False) -> None:
        self.done += records
        self.failed += records if failed else 0
        if self._bar is not None:
            self._bar.update(records)
        self._show()

    def file_done(self, failed: bool) -> None:
        self.files_done += 1
        self.files_failed += failed
        self._show(force=self.files_done == self.files)

    def total(self) -> tuple[int, bool]:
        """The total records and whether it is exact."""
        if self.unread_bytes <= 0 or self.read_bytes == 0:
            return self.known_records, self.unread_bytes <= 0
        return self.known_records + round(self.unread_bytes * self.known_records / self.read_bytes), False

    def line(self) -> str:
        total, exact = self.total()
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = f" ({100 * self.done / total:.0f}%)" if total else ""
        failed = f", {self.files_failed} failed" if self.files_failed else ""
        return (
            f"transform: {self.done:,}/{'' if exact else '~'}{total:,} records{share}, {rate:,.0f} records/s, "
            f"files {self.files_done}/{self.files}{failed}, {elapsed:.0f}s"
        )

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._bar is not None:
            total, _ = self.total()
            if total and self._bar.total != total:
                self._bar.total = total
            self._bar.set_postfix_str(f"files {self.files_done}/{self.files}", refresh=False)
            return
        if not force and now - self._shown_at < (0.2 if self._tty else 10.0):
            return
        self._shown_at = now
        self._write(self.line())

    def _write(self, line: str, *, last: bool = False) -> None:
        if self._tty:
            self.stream.write(f"\r{line}\x1b[K" + ("\n" if last else ""))
        elif line != self._last_line:
            self.stream.write(line + "\n")
        self._last_line = line
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._write(self.line(), last=True)


# -------------------------------------------------------------------------------------------------------- job


@dataclass(frozen=True)
class _Batch:
    """A request body's records: input lines (SplitType Line) or the whole object (SplitType None)."""

    parts: tuple[bytes, ...]
    lines: tuple[int, ...] = ()  # 1-based input line of each part; empty for SplitType None

    @property
    def records(self) -> int:
        return len(self.parts)

    def body(self) -> bytes:
        return b"".join(p + b"\n" for p in self.parts) if self.lines else self.parts[0]


@dataclass(frozen=True)
class _Answer:
    body: bytes | None  # None: failed
    failure: BatchFailure | None
    attempts: int


def split_records(data: bytes, job: TransformJob) -> list[_Batch]:
    """The mini-batches of one input object, in input order (SplitType Line skips blank lines)."""
    if job.split_type == "None":
        return [_Batch((data,))]
    records = [(number, line) for number, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    if job.strategy == "SingleRecord":
        return [_Batch((line,), (number,)) for number, line in records]
    batches: list[_Batch] = []
    parts: list[bytes] = []
    lines: list[int] = []
    size = 0
    for number, line in records:
        if parts and size + len(line) + 1 > job.max_payload_bytes:
            batches.append(_Batch(tuple(parts), tuple(lines)))
            parts, lines, size = [], [], 0
        parts.append(line)
        lines.append(number)
        size += len(line) + 1
    if parts:
        batches.append(_Batch(tuple(parts), tuple(lines)))
    return batches


def assemble(bodies: Sequence[bytes], assemble_with: str) -> bytes:
    """AssembleWith None: the responses back to back; Line: each ends with a newline (added when missing)."""
    if assemble_with == "Line":
        return b"".join(body if body.endswith(b"\n") else body + b"\n" for body in bodies)
    return b"".join(bodies)


def _message(response: ContainerResponse) -> str:
    text, _ = response.error_parts()  # the toolkit's traceback stays out of the failure report
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            text = parsed["message"]
    return text[:2000] or f"HTTP {response.status} with an empty body"


def _culprit(batch: _Batch, message: str) -> int | None:
    """The input line a failed mini-batch's message points at: ``instances[i]`` or ``line n`` of the payload."""
    if not batch.lines:
        return None
    if len(batch.lines) == 1:
        return batch.lines[0]
    if (match := _INSTANCE_INDEX.search(message)) and int(match.group(1)) < len(batch.lines):
        return batch.lines[int(match.group(1))]
    if (match := _PAYLOAD_LINE.search(message)) and 0 < int(match.group(1)) <= len(batch.lines):
        return batch.lines[int(match.group(1)) - 1]
    return None


T = TypeVar("T")


class _Runner:
    def __init__(
        self,
        job: TransformJob,
        container: EmbeddedContainer,
        source: Storage,
        target: Storage,
        checkpoint: Checkpoint,
        progress: Progress,
        on_file_done: Callable[[FileResult], None] | None,
    ) -> None:
        self.job = job
        self.container = container
        self.source = source
        self.target = target
        self.checkpoint = checkpoint
        self.progress = progress
        self.on_file_done = on_file_done
        self.headers = {"Content-Type": job.content_type}
        if job.accept is not None:
            self.headers["Accept"] = job.accept
        self.invocation_slots = asyncio.Semaphore(job.workers)
        self.file_slots = asyncio.Semaphore(job.workers + 1)  # one more, so the next input is read meanwhile
        self.results: dict[str, FileResult] = {}

    async def run(self, pending: Sequence[StoredObject]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for obj in pending:
                    group.create_task(self._file(obj))
        except BaseExceptionGroup as group:  # a callback or a bug: raise it as itself, not wrapped
            raise group.exceptions[0] from None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def _file(self, obj: StoredObject) -> None:
        async with self.file_slots:
            try:
                data = await self._read(obj.key)
            except Exception as e:  # a storage error fails this input only
                self.progress.input_read(obj.size, 0)
                failure = BatchFailure(None, f"could not read {self.source.describe(obj.key)}: {e}", 0)
                result = await self._failed(obj, 0, [failure], invocations=0, retries=0)
            else:
                batches = split_records(data, self.job)
                del data
                records = sum(b.records for b in batches)
                self.progress.input_read(obj.size, records)
                answers = await self._invoke_all(batches)
                invocations = sum(a.attempts for a in answers)
                retries = sum(max(0, a.attempts - 1) for a in answers)
                failures = [a.failure for a in answers if a.failure is not None]
                if failures:
                    result = await self._failed(obj, records, failures, invocations, retries)
                else:
                    bodies = [a.body for a in answers if a.body is not None]
                    result = await self._succeeded(obj, records, bodies, invocations, retries)
        self.results[obj.key] = result
        self.progress.file_done(result.status == "Failed")
        if self.checkpoint.due():
            await self._io(self.checkpoint.flush)
        if self.on_file_done is not None:
            self.on_file_done(result)

    async def _read(self, key: str) -> bytes:
        data = await self._io(self.source.read, key)
        if self.job.compression_type == "Gzip":
            try:
                data = await self._io(gzip.decompress, data)
            except (OSError, EOFError, zlib.error) as e:
                raise ValueError(f"it is not gzip data ({e}); drop --compression-type Gzip for plain inputs") from e
        return data

    async def _invoke_all(self, batches: Sequence[_Batch]) -> list[_Answer]:
        """The answers in input order; ``workers`` consumers per input, so a million records are not a million tasks."""
        answers: list[_Answer | None] = [None] * len(batches)
        indexes = iter(range(len(batches)))  # shared by the consumers: the event loop runs one at a time

        async def consume() -> None:
            for index in indexes:
                answers[index] = await self._invoke(batches[index])

        await asyncio.gather(*(consume() for _ in range(min(self.job.workers, len(batches)))))
        return [a for a in answers if a is not None]

    async def _invoke(self, batch: _Batch) -> _Answer:
        async with self.invocation_slots:
            body = batch.body()
            first, last = (batch.lines[0], batch.lines[-1]) if batch.lines else (None, None)
            if len(body) > self.job.max_payload_bytes:
                what = f"line {first}" if batch.records == 1 and first else "the input object"
                message = (
                    f"{what} is {len(body):,} bytes, over MaxPayloadInMB {self.job.max_payload_mb} "
                    f"({self.job.max_payload_bytes:,} bytes): raise --max-payload-mb"
                    + ("" if batch.lines else " or split the input with --split-type Line")
                )
                self.progress.advance(batch.records, failed=True)
                failure = BatchFailure(413, message, batch.records, first, last, first if batch.records == 1 else None)
                return _Answer(None, failure, 0)
            attempts = 0
            while True:
                attempts += 1
                try:
                    response = await self.container.invoke(None, body, dict(self.headers))
                except Exception as e:  # the model server itself failed: retried like a 5xx
                    response = ContainerResponse(500, f"{type(e).__name__}: {e}".encode())
                if response.ok:
                    self.progress.advance(batch.records)
                    return _Answer(response.body, None, attempts)
                if response.status >= 500 and attempts <= self.job.max_retries:
                    await asyncio.sleep(min(0.05 * 2 ** (attempts - 1), 1.0))
                    continue
                message = _message(response)
                line = _culprit(batch, message)
                self.progress.advance(batch.records, failed=True)
                failure = BatchFailure(response.status, message, batch.records, first, last, line, attempts)
                return _Answer(None, failure, attempts)

    async def _succeeded(
        self, obj: StoredObject, records: int, bodies: list[bytes], invocations: int, retries: int
    ) -> FileResult:
        out_key = obj.key + OUT_SUFFIX
        output = assemble(bodies, self.job.assemble_with)
        del bodies
        try:
            await self._io(self.target.write, out_key, output)
            await self._io(self.target.delete, obj.key + FAILED_SUFFIX)
        except Exception as e:
            failure = BatchFailure(None, f"could not write {self.target.describe(out_key)}: {e}", records)
            return await self._failed(obj, records, [failure], invocations, retries)
        self.checkpoint.mark(obj, records)
        return FileResult(obj.key, "Completed", records, 0, invocations, retries, (), self.target.describe(out_key))

    async def _failed(
        self, obj: StoredObject, records: int, failures: list[BatchFailure], invocations: int, retries: int
    ) -> FileResult:
        self.checkpoint.forget(obj.key)
        failed = sum(f.records for f in failures)
        report_key = obj.key + FAILED_SUFFIX
        report = {
            "input": self.source.describe(obj.key),
            "status": "Failed",
            "records": records,
            "failed_records": failed,
            "settings": self.job.sagemaker_settings(),
            "failures": [f.to_dict() for f in failures],
        }
        location: str | None = self.target.describe(report_key)
        try:
            await self._io(self.target.delete, obj.key + OUT_SUFFIX)  # an earlier run's output is stale
            await self._io(self.target.write, report_key, (json.dumps(report, indent=2) + "\n").encode())
        except Exception as e:  # the job result still names the failure
            location = None
            failures = [*failures, BatchFailure(None, f"could not write the failure report: {e}", 0)]
        return FileResult(obj.key, "Failed", records, failed, invocations, retries, tuple(failures), location)


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


def _fetch_model(job: TransformJob, work: Path, client: Callable[[], Any]) -> Path:
    if not job.model.startswith("s3://"):
        return resolve_model(job.model, job.models_dir)
    bucket, key = _split_s3(job.model)
    target = work / "model.tar.gz"
    try:
        target.write_bytes(client().get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as e:
        raise TransformError(
            f"model (--model) {job.model}: could not download it: {e}; "
            "check the URI, --s3-endpoint-url and AWS credentials"
        ) from e
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="local-transform-") as scratch:
        yield Path(scratch)


@contextlib.contextmanager
def container_environment(job: TransformJob) -> Iterator[None]:
    """The variables SageMaker gives a batch transform container, set in this process for the job's duration.

    The model server runs in-process, so its handler reads them from ``os.environ``; the previous values
    are restored afterwards. Two jobs in one process at once would see each other's values.
    """
    values = {
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(job.max_payload_mb),
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(job.workers),
        **({"SAGEMAKER_BATCH_STRATEGY": _ENV_STRATEGY[job.batch_strategy]} if job.batch_strategy else {}),
        **job.environment,
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV_STRATEGY = {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}


async def transform(
    job: TransformJob, *, progress: bool = False, on_file_done: Callable[[FileResult], None] | None = None
) -> TransformResult:
    """Run ``job``; `TransformError` when it cannot start. Inputs that fail are in the result, not raised.

    ``on_file_done`` is called after each input's output (or failure report) and checkpoint entry are recorded;
    an exception it raises stops the job as an interruption would (the checkpoint is written first).
    """
    started = time.perf_counter()
    clients: dict[str, Any] = {}

    def client() -> Any:
        if "s3" not in clients:
            clients["s3"] = s3_client(job.s3_endpoint_url, max_connections=max(10, 2 * job.workers + 2))
        return clients["s3"]

    with _workdir(job.workdir) as work:
        source = open_input(job.input, client)
        target = open_output(job.output, client)
        objects = await _guarded(
            f"input (--input) {job.input}: could not list it", anyio.to_thread.run_sync(source.list)
        )
        if not objects:
            raise TransformError(f"input (--input) {job.input}: no input objects there")
        await _guarded(f"output (--output) {job.output}: cannot write there", anyio.to_thread.run_sync(target.prepare))
        archive = await anyio.to_thread.run_sync(lambda: _fetch_model(job, work, client))
        settings = {"model_sha256": _sha256(archive), "input": source.uri, **job.sagemaker_settings()}
        for key in ("MaxConcurrentTransforms", "InvocationsMaxRetries"):  # they do not change the outputs
            settings.pop(key)
        checkpoint = Checkpoint(target, settings)
        note = await _guarded(
            f"output (--output) {job.output}: could not read it", anyio.to_thread.run_sync(checkpoint.load)
        )
        done = await anyio.to_thread.run_sync(
            lambda: {o.key for o in objects if checkpoint.is_done(o) and target.exists(o.key + OUT_SUFFIX)}
        )
        pending = [o for o in objects if o.key not in done]
        meter = Progress(progress, len(pending), sum(o.size for o in pending))
        notes = [note] if note else []
        if done:
            notes.append(f"resumed: {len(done)} of {len(objects)} inputs were finished by an earlier run")
        for message in notes:
            meter.note(message)

        model_dir = work / "model"
        shutil.rmtree(model_dir, ignore_errors=True)
        try:
            await anyio.to_thread.run_sync(safe_extract, archive, model_dir)
        except (UnsafeArchive, OSError, EOFError, tarfile.TarError) as e:
            raise TransformError(f"model (--model) {archive}: not a usable model archive: {e}") from e

        container = EmbeddedContainer(workers_per_model=job.workers)
        runner = _Runner(job, container, source, target, checkpoint, meter, on_file_done)
        with container_environment(job):
            loaded = await container.load(MODEL_NAME, str(model_dir))
            if not loaded.ok:
                raise TransformError(f"model (--model) {archive}: the model failed to load: {_message(loaded)}")
            try:
                await runner.run(pending)
            finally:
                meter.close()
                checkpoint.flush()  # synchronous, so it also happens while the job is being cancelled
                await container.close()

    files = [
        runner.results[o.key]
        if o.key in runner.results
        else FileResult(o.key, "Skipped", int(checkpoint.finished.get(o.key, {}).get("records", 0)))
        for o in objects
    ]
    return TransformResult(job, str(archive), source.uri, target.uri, files, time.perf_counter() - started, notes)


async def _guarded(message: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except TransformError:
        raise
    except Exception as e:
        raise TransformError(f"{message}: {e}; check the location, --s3-endpoint-url and AWS credentials") from e


def run_transform(
    job: TransformJob, *, progress: bool = False, on_file_done: Callable[[FileResult], None] | None = None
) -> TransformResult:
    """`transform` in a new event loop. Ctrl-C stops the job after writing its checkpoint (KeyboardInterrupt)."""
    return asyncio.run(transform(job, progress=progress, on_file_done=on_file_done))


# -------------------------------------------------------------------------------------------------------- CLI

_USAGE_EXAMPLE = """\
example (JSON Lines in, one prediction per line out):
  creative-scoring transform --model creative-scorer-v1 --input creatives/ --output scored/ \\
      --content-type application/jsonlines --accept application/jsonlines \\
      --split-type Line --batch-strategy MultiRecord --assemble-with Line --workers 2

exit status: 0 every input succeeded; 1 some input failed (see <input>.out.failed.json);
2 invalid settings or the job could not start; 130 interrupted (rerun the same command to resume).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="creative-scoring transform",
        description="Run a SageMaker batch transform job on this machine, the model in-process.",
        epilog=_USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model archive: a .tar.gz path, s3:// URI or model name")
    parser.add_argument("--input", required=True, help="input folder, file or s3://bucket/prefix (S3DataSource)")
    parser.add_argument("--output", required=True, help="output folder or s3://bucket/prefix (S3OutputPath)")
    parser.add_argument("--content-type", default=JSONLINES, help=f"ContentType of each request (default {JSONLINES})")
    parser.add_argument("--accept", help="Accept of each request (default: none sent; the model's default type)")
    parser.add_argument("--split-type", default="None", help="SplitType: None (whole objects, default) or Line")
    parser.add_argument(
        "--compression-type", default="None", help="CompressionType: None (default) or Gzip (inputs are gunzipped)"
    )
    parser.add_argument(
        "--batch-strategy", help="BatchStrategy with --split-type Line: SingleRecord (default) or MultiRecord"
    )
    parser.add_argument(
        "--max-payload-mb", type=int, default=DEFAULT_MAX_PAYLOAD_MB, help="MaxPayloadInMB, 1..100 (default 6)"
    )
    parser.add_argument("--assemble-with", default="None", help="AssembleWith: None (default) or Line")
    parser.add_argument("--workers", type=int, default=1, help="MaxConcurrentTransforms: mini-batches in flight")
    parser.add_argument(
        "--max-retries", type=int, default=DEFAULT_MAX_RETRIES, help="InvocationsMaxRetries for 5xx, 0..3 (default 3)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="Environment for the model (repeatable)"
    )
    parser.add_argument("--s3-endpoint-url", help="S3 endpoint for s3:// locations (e.g. a local moto server)")
    parser.add_argument("--models-dir", type=Path, default=ARTIFACTS, help="folder that --model names are looked up in")
    parser.add_argument("--workdir", type=Path, help="where the archive is extracted (default: a temporary folder)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    return parser


def run_cli(argv: list[str]) -> int:
    """``creative-scoring transform ...``: the result as JSON on stdout; messages, never tracebacks."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    environment = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"error: --env {item!r}: write KEY=VALUE", file=sys.stderr)
            return 2
        environment[key] = value
    try:
        job = TransformJob(
            model=args.model,
            input=args.input,
            output=args.output,
            content_type=args.content_type,
            accept=args.accept,
            split_type=args.split_type,
            compression_type=args.compression_type,
            batch_strategy=args.batch_strategy,
            max_payload_mb=args.max_payload_mb,
            assemble_with=args.assemble_with,
            workers=args.workers,
            max_retries=args.max_retries,
            environment=environment,
            s3_endpoint_url=args.s3_endpoint_url,
            models_dir=args.models_dir,
            workdir=args.workdir,
        )
        result = run_transform(job, progress=not args.no_progress)
    except TransformError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # the model may still be finishing a mini-batch in a thread the interpreter waits for at exit: another
        # Ctrl-C ends the process at once (status 130), without Python's KeyboardInterrupt traceback
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        print("interrupted: finished inputs are checkpointed; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # no traceback for the user; the message names what failed
        print(f"error: the transform stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:]))
