"""Model versions of a multi-model endpoint as data: where they are stored, and publish, list and retire.

A store is the prefix a multi-model endpoint loads ``TargetModel`` archives from, with the manifest of the
reference models that the deploy wrote there, and a record per published version:

- in AWS (`S3Store`): ``s3://BUCKET/models/<code digest>/NAME.tar.gz`` and ``s3://BUCKET/published/NAME.json``,
  bucket and prefix read from the stack outputs ``ModelBucket`` and ``ModelDataPrefix``;
- on this machine (`FolderStore`): the reference models of ``model_artifacts/``, and published versions in
  ``.local-endpoint/ENV/models/`` with their records in ``.local-endpoint/ENV/published/``: the folders the local
  endpoint reads on each request, so a published version answers without a restart.

docs/deployment.md says what the deploy owns and what this module owns, and what happens to each on a code change.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from creative_scoring.artifacts.archive import MANIFEST, read_manifest
from creative_scoring.artifacts.published import COMPONENTS, RECORDS, SUFFIX, Record, now
from creative_scoring.artifacts.versions import Packaged, SampleResult, VersionError, check_scores, name_of
from creative_scoring.artifacts.versions import package as package_version
from creative_scoring.artifacts.versions import target_model as target_model
from creative_scoring.files import write_atomically
from creative_scoring.paths import INFERENCE_DIR, SAMPLES
from ops import components
from ops.aws import AwsCallError, call

log = logging.getLogger(__name__)
Progress = Callable[[int], None]  # bytes sent since the last call


@dataclass(frozen=True, kw_only=True)
class Version:
    """One archive an endpoint can load, and where it came from."""

    name: str
    origin: str  # "reference" (the deploy's), "published" (this module's), "unrecorded" (put there by hand)
    size_bytes: int
    sha256: str | None = None
    code_sha256: str | None = None
    published_at: str | None = None
    published_by: str | None = None

    @property
    def target_model(self) -> str:
        return f"{self.name}{SUFFIX}"


class VersionStore(Protocol):
    where: str  # for messages: the folder or the S3 prefix

    def location(self, target: str) -> str:
        """Where the archive ``target`` is stored: its S3 key, or its path."""

    def archives(self) -> dict[str, int]:
        """The ``TargetModel`` archives the endpoint can load, with their sizes."""

    def reference(self) -> list[dict[str, Any]]:
        """The manifest entries of the reference models the deploy wrote."""

    def records(self) -> dict[str, Record]:
        """The published versions, by name."""

    def put(self, packaged: Packaged, record: Record, progress: Progress) -> None:
        """Store the archive, then its record; on any failure, neither stays."""

    def delete(self, name: str) -> None:
        """Remove the archive and the record of ``name``."""

    def pins(self) -> dict[str, str]:
        """The version the model pipeline put live on each inference component, by component."""


def versions(store: VersionStore) -> list[Version]:
    """Every archive of ``store``, sorted by name."""
    reference = {e["name"]: e for e in store.reference()}
    records = store.records()
    found = sorted((name_of(target), size) for target, size in store.archives().items())
    return [Version(name=name, size_bytes=size, **_provenance(name, reference, records)) for name, size in found]


def _provenance(name: str, reference: dict[str, dict[str, Any]], records: dict[str, Record]) -> dict[str, Any]:
    """Where version ``name`` came from: the deploy's manifest, the model pipeline's record, or neither."""
    if name in reference:
        return {
            "origin": "reference",
            "sha256": reference[name].get("sha256"),
            "code_sha256": reference[name].get("code_sha256"),
        }
    if name in records:
        fields = ("sha256", "code_sha256", "published_at", "published_by")
        return {"origin": "published", **{f: getattr(records[name], f) for f in fields}}
    return {"origin": "unrecorded"}


def deployed_code_sha256(store: VersionStore, reference: list[dict[str, Any]]) -> str:
    """The digest of the handler code inside the deployed reference archives (``store``'s ``reference()``)."""
    digests = {e.get("code_sha256") for e in reference}
    if len(digests) != 1 or None in digests:
        raise VersionError(
            f"cannot tell which inference code is deployed at {store.where}: its {MANIFEST} lists code digests "
            f"{sorted(map(str, digests))}; deploy the stack (cdk deploy) so the reference models are there"
        )
    return str(digests.pop())


@dataclass(frozen=True)
class Published:
    record: Record
    samples: list[SampleResult]
    already: bool = False  # the same archive was published before: nothing was stored


def publish(
    store: VersionStore,
    name: str,
    source: Path,
    *,
    published_by: str,
    progress: Progress = lambda sent: None,
    inference_dir: Path = INFERENCE_DIR,
    samples_dir: Path = SAMPLES,
) -> Published:
    """Package ``source`` as version ``name`` with ``inference_dir``'s code, check it, and store it.

    Raises `VersionError` (bad name, name taken by another archive, code other than the deployed code, a model
    that does not load or score) before anything is stored; `AwsCallError` if storing fails (nothing stays).
    """
    target = target_model(name)
    with tempfile.TemporaryDirectory(prefix="creative-scoring-publish-") as scratch:
        packaged = package_version(name, source, Path(scratch), inference_dir)
        reference = store.reference()
        deployed = deployed_code_sha256(store, reference)
        if packaged.code_sha256 != deployed:
            raise VersionError(
                f"the inference code in {inference_dir} (digest {packaged.code_sha256[:12]}) is not the deployed "
                f"code (digest {deployed[:12]}, at {store.where}): publish from the commit that is deployed, or "
                "deploy this code first (cdk deploy; every published version is carried to it)"
            )
        record = Record(
            name=name,
            sha256=packaged.sha256,
            size_bytes=packaged.size_bytes,
            code_sha256=packaged.code_sha256,
            archive=store.location(target),
            source=str(source),
            published_at=now(),
            published_by=published_by,
        )
        existing = _existing(store, reference, name, target, packaged)
        if existing is not None:
            return Published(existing, [], already=True)
        samples = check_scores(packaged.archive, samples_dir, Path(scratch) / "check")
        store.put(packaged, record, progress)
    return Published(record, samples)


def _existing(
    store: VersionStore, reference: list[dict[str, Any]], name: str, target: str, packaged: Packaged
) -> Record | None:
    """The record of an identical version already published; `VersionError` if the name holds another archive."""
    if target not in store.archives():
        return None
    if any(e["name"] == name for e in reference):
        raise VersionError(f"{name} is a reference model of the deploy at {store.where}; publish under a new name")
    record = store.records().get(name)
    if record is not None and record.sha256 == packaged.sha256:
        return record
    raise VersionError(
        f"{target} already exists at {store.where} with other contents: an endpoint that loaded it keeps serving "
        f"the cached copy, so a version is never overwritten. Publish under a new name (e.g. {name}-2), or retire "
        f"{name} first and wait until no instance has it loaded"
    )


def retire(store: VersionStore, name: str, *, reference_too: bool = False) -> Version:
    """Remove version ``name`` from ``store``; a reference model only with ``reference_too``."""
    found = {v.name: v for v in versions(store)}
    if name not in found:
        raise VersionError(f"no version {name!r} at {store.where}; `creative-scoring models list` shows them")
    version = found[name]
    if live_on := sorted(c for c, v in store.pins().items() if v == name):
        raise VersionError(
            f"{name} is live on inference component(s) {live_on}: put another version live there first "
            "(creative-scoring models publish SOURCE --name NAME --component COMPONENT)"
        )
    if version.origin == "reference" and not reference_too:
        raise VersionError(
            f"{name} is a reference model of the deploy (model_artifacts/, cdk.json): remove it there and deploy, "
            "or pass --reference to remove it from this store until the next deploy writes it again"
        )
    store.delete(name)
    return version


class FolderStore:
    """Versions on this machine: reference models in ``reference_dir``, published ones in ``state_dir``."""

    def __init__(self, reference_dir: Path, state_dir: Path) -> None:
        self.reference_dir = reference_dir
        self.models_dir = state_dir / "models"
        self.records_dir = state_dir / "published"
        self.where = str(self.models_dir)

    def location(self, target: str) -> str:
        return str(self.models_dir / target)

    def archives(self) -> dict[str, int]:
        folders = (self.reference_dir, self.models_dir)
        return {p.name: p.stat().st_size for d in folders if d.is_dir() for p in d.glob(f"*{SUFFIX}")}

    def reference(self) -> list[dict[str, Any]]:
        return read_manifest(self.reference_dir)

    def records(self) -> dict[str, Record]:
        if not self.records_dir.is_dir():
            return {}
        return {p.stem: _record(p.read_bytes(), str(p)) for p in sorted(self.records_dir.glob("*.json"))}

    def put(self, packaged: Packaged, record: Record, progress: Progress) -> None:
        archive = self.models_dir / packaged.target_model
        try:
            write_atomically(archive, packaged.archive.read_bytes())
            progress(packaged.size_bytes)
            write_atomically(self.records_dir / f"{record.name}.json", record.to_json())
        except BaseException:
            archive.unlink(missing_ok=True)
            raise

    def pins(self) -> dict[str, str]:
        folder = self.records_dir / COMPONENTS
        try:
            pins = [json.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
            return {pin["component"]: pin["version"] for pin in pins}
        except (ValueError, KeyError, TypeError) as e:
            raise VersionError(f"a record in {folder} cannot be read ({e!r}): fix or remove it") from e

    def pin(self, component: str, version: str, pinned_by: str) -> None:
        """Record ``version`` as live on ``component``: the local endpoint switches on the next invocation."""
        pin = {"component": component, "version": version, "pinned_at": now(), "pinned_by": pinned_by}
        write_atomically(self.records_dir / COMPONENTS / f"{component}.json", json.dumps(pin, indent=2).encode())

    def delete(self, name: str) -> None:
        if (self.reference_dir / f"{name}{SUFFIX}").exists():
            raise VersionError(f"{name} is in {self.reference_dir}, which is the repository's: delete it there")
        (self.models_dir / f"{name}{SUFFIX}").unlink(missing_ok=True)
        (self.records_dir / f"{name}.json").unlink(missing_ok=True)


class S3Store:
    """Versions in the model bucket of a deployed stack, under the prefix its multi-model Model reads."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.where = f"s3://{bucket}/{prefix}"

    def location(self, target: str) -> str:
        return f"{self.prefix}{target}"

    def archives(self) -> dict[str, int]:
        objects = self._objects(self.prefix, Delimiter="/")
        return {key[len(self.prefix) :]: size for key, size in objects if key.endswith(SUFFIX)}

    def reference(self) -> list[dict[str, Any]]:
        try:
            body = call(self.s3, "GetObject", Bucket=self.bucket, Key=f"{self.prefix}{MANIFEST}")["Body"].read()
        except AwsCallError as e:
            if e.code in ("NoSuchKey", "404"):
                return []
            raise
        models: list[dict[str, Any]] = json.loads(body)["models"]
        return models

    def records(self) -> dict[str, Record]:
        records = {}
        for key, _ in self._objects(RECORDS, Delimiter="/"):
            record = _record(call(self.s3, "GetObject", Bucket=self.bucket, Key=key)["Body"].read(), key)
            records[record.name] = record
        return records

    def _objects(self, prefix: str, **options: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, all pages of ListObjectsV2."""
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=self.bucket, Prefix=prefix, **options))
        except (ClientError, BotoCoreError) as e:
            raise _aws_error("ListObjectsV2", e) from e
        return [(item["Key"], int(item["Size"])) for page in pages for item in page.get("Contents", [])]

    def put(self, packaged: Packaged, record: Record, progress: Progress) -> None:
        key = f"{self.prefix}{packaged.target_model}"
        metadata = {"origin": "published", "sha256": packaged.sha256, "code-sha256": packaged.code_sha256}
        try:  # a multipart upload that fails is aborted by s3transfer: the object appears whole or not at all
            self._upload(packaged.archive, key, metadata, progress)
            self._check_whole(key, packaged.size_bytes)
            call(self.s3, "PutObject", Bucket=self.bucket, Key=f"{RECORDS}{record.name}.json", Body=record.to_json())
        except BaseException:
            try:
                self._delete(key)
            except AwsCallError as e:  # the first error is the one to report
                log.error("could not remove s3://%s/%s after a failed publish: %s", self.bucket, key, e)
            raise

    def _upload(self, archive: Path, key: str, metadata: dict[str, str], progress: Progress) -> None:
        try:
            self.s3.upload_file(str(archive), self.bucket, key, ExtraArgs={"Metadata": metadata}, Callback=progress)
        except (S3UploadFailedError, ClientError, BotoCoreError) as e:
            raise _aws_error("PutObject", e) from e

    def pins(self) -> dict[str, str]:
        try:
            return components.pins(self.s3, self.bucket)
        except (ClientError, BotoCoreError) as e:
            raise _aws_error("ListObjectsV2", e) from e

    def _check_whole(self, key: str, size: int) -> None:
        """The object is there with every byte: a transfer cut short can end without an error from s3transfer."""
        try:
            stored = call(self.s3, "HeadObject", Bucket=self.bucket, Key=key)["ContentLength"]
        except AwsCallError as e:
            raise AwsCallError("PutObject", "IncompleteUpload", f"s3://{self.bucket}/{key} is not there: {e}") from e
        if stored != size:
            raise AwsCallError(
                "PutObject", "IncompleteUpload", f"s3://{self.bucket}/{key} has {stored} of {size} bytes"
            )

    def delete(self, name: str) -> None:
        self._delete(f"{self.prefix}{name}{SUFFIX}")
        self._delete(f"{RECORDS}{name}.json")

    def _delete(self, key: str) -> None:
        call(self.s3, "DeleteObject", Bucket=self.bucket, Key=key)


def _record(data: bytes, where: str) -> Record:
    try:
        return Record.from_json(data)
    except (ValueError, KeyError, TypeError) as e:
        raise VersionError(f"the record {where} cannot be read ({e!r}): fix or remove it") from e


def _aws_error(api: str, error: Exception) -> AwsCallError:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return AwsCallError(api, details.get("Code", "Unknown"), details.get("Message", str(error)))
    cause = error.__cause__ or error.__context__  # S3UploadFailedError wraps the ClientError
    if isinstance(cause, ClientError):
        return _aws_error(api, cause)
    return AwsCallError(api, type(error).__name__, str(error))
