"""A job on this machine: where the model and the data are, and its CreateTransformJob settings, checked on
construction with the shared rules (`TransformSettings`) and this tool's own limits; messages name its flags."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from creative_scoring.artifacts.transform_request import (
    API_NAMES,
    DEFAULT_MAX_PAYLOAD_MB,
    MAX_PAYLOAD_MB,
    TransformError,
    TransformSettings,
    invalid,
)
from creative_scoring.paths import MODEL_ARTIFACTS
from local_endpoint.s3 import split_location

MIB = 1024 * 1024
FLAGS = {name: "--" + name.replace("_", "-") for name in API_NAMES} | {
    "max_concurrent_transforms": "--workers",
    "invocation_max_retries": "--max-retries",
    "environment": "--env",
}
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ENV_STRATEGY = {"SingleRecord": "SINGLE_RECORD", "MultiRecord": "MULTI_RECORD"}


@dataclass(frozen=True, kw_only=True)
class TransformJob(TransformSettings):
    """The settings of one job, named as in ``CreateTransformJob``; checked on construction (`TransformError`)."""

    OPTIONS: ClassVar[Mapping[str, str]] = FLAGS

    model: str  # a .tar.gz path, an s3:// URI, or a model (archive) name of models_dir
    input: str  # TransformInput.DataSource: a folder, one file, or s3://bucket/prefix
    output: str  # TransformOutput.S3OutputPath: a folder or s3://bucket/prefix
    s3_endpoint_url: str | None = None
    models_dir: Path = MODEL_ARTIFACTS
    workdir: Path | None = None  # where the archive is extracted; None: a temporary folder

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_local(self)

    @property
    def workers(self) -> int:
        """Mini-batches in flight at once: MaxConcurrentTransforms; 0 (unset) is 1, as without execution-parameters."""
        return self.max_concurrent_transforms or 1

    @property
    def strategy(self) -> str | None:
        """The batch strategy in effect: None for SplitType None; SingleRecord when unset with SplitType Line."""
        if self.split_type == "None":
            return None
        return self.batch_strategy or "SingleRecord"

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * MIB

    def sagemaker_settings(self) -> dict[str, Any]:
        """The job's settings in effect under their CreateTransformJob names (for reports)."""
        return {
            "ContentType": self.content_type,
            "Accept": self.accept,
            "SplitType": self.split_type,
            "CompressionType": self.compression_type,
            "BatchStrategy": self.strategy,
            "MaxPayloadInMB": self.max_payload_mb,
            "AssembleWith": self.assemble_with,
            "MaxConcurrentTransforms": self.workers,
            "InvocationsMaxRetries": self.invocation_max_retries,
            "Environment": dict(sorted(self.environment.items())),
        }


def _check_local(job: TransformJob) -> None:
    if not job.model.strip():
        raise TransformError(
            "model (--model): empty; give a .tar.gz path, an s3:// URI or a model name of --models-dir"
        )
    _check_location("input (--input)", job.input)
    _check_location("output (--output)", job.output)
    if job.max_payload_mb == 0:
        raise invalid(
            "--max-payload-mb",
            "MaxPayloadInMB",
            0,
            "asks for HTTP chunked streaming, which the local transform does not support: "
            f"give 1 to {MAX_PAYLOAD_MB} (default {DEFAULT_MAX_PAYLOAD_MB})",
        )
    if job.s3_endpoint_url is not None and not job.s3_endpoint_url.startswith(("http://", "https://")):
        raise TransformError(
            f"--s3-endpoint-url {job.s3_endpoint_url!r} is not a URL: give http://host:port or https://host"
        )
    _check_output_outside_input(job.input, job.output)


def _check_location(name: str, value: str) -> None:
    if not value.strip():
        raise TransformError(f"{name}: empty; give a local folder or s3://bucket/prefix")
    if value.startswith("s3://"):
        bucket, _ = split_location(value)
        if not _BUCKET.fullmatch(bucket):
            raise TransformError(
                f"{name} {value!r}: {bucket!r} is not an S3 bucket name (3-63 lower-case letters, digits, '.', '-'); "
                "write s3://bucket/prefix"
            )
    elif "://" in value:
        raise TransformError(f"{name} {value!r}: only local paths and s3://bucket/prefix locations are supported")


def _check_output_outside_input(input_uri: str, output_uri: str) -> None:
    if input_uri.startswith("s3://") and output_uri.startswith("s3://"):
        in_bucket, in_prefix = split_location(input_uri)
        out_bucket, out_prefix = split_location(output_uri)
        inside = in_bucket == out_bucket and output_base(out_prefix).startswith(in_prefix)
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


def output_base(prefix: str) -> str:
    """The key prefix of an S3 output location's objects: ``out`` and ``out/`` both give ``out/``."""
    return prefix.rstrip("/") + "/" if prefix.strip("/") else ""


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
