"""Batch transform on a deployed model: validate a request, find the model in the stack outputs, run the job.

Batch transform has no CloudFormation resource, so a job is created through the API. botocore checks only
required members, types and minimums before sending; ``build_request`` checks what else SageMaker documents
(maximums, enums, patterns, the rules between parameters), so a bad request fails here, naming the fix,
instead of as a ``ValidationException`` from the service. The settings of the requests to the model and of the
outputs, their defaults and rules, are the ones the local batch transform uses too (`TransformSettings`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import botocore.session

from creative_scoring.artifacts.transform_request import TransformError as TransformError  # raised by this module
from creative_scoring.artifacts.transform_request import TransformSettings, check_int, invalid
from creative_scoring.config.naming import output_id
from ops import aws
from ops.aws import AwsCallError as AwsCallError  # raised by this module
from ops.aws import stack_outputs as stack_outputs

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MODEL_NAME = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+")
KMS_KEY = re.compile(r"[a-zA-Z0-9:/_-]{1,2048}")
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
LOG_GROUP = "/aws/sagemaker/TransformJobs"
HEARTBEAT_S = 600.0


class JobFailed(TransformError):
    """The job ended ``Failed`` or ``Stopped``; ``description`` is its last DescribeTransformJob response."""

    def __init__(self, message: str, description: dict[str, Any]) -> None:
        super().__init__(message)
        self.description = description


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in ``run``: the job ``job_name`` was ``created`` (True), or perhaps (None: during CreateTransformJob).

    A ``KeyboardInterrupt``, so callers that do not know it still stop; the job itself keeps running.
    """

    def __init__(self, job_name: str, created: bool | None) -> None:
        super().__init__(job_name)
        self.job_name, self.created = job_name, created


@dataclass(frozen=True, kw_only=True)
class TransformRequest(TransformSettings):
    """One CreateTransformJob request; build it with ``build_request`` so that it is valid. Its `TransformSettings`
    are checked on construction, the rest (names, locations, resources) by ``build_request``."""

    job_name: str
    model_name: str
    input_uri: str
    output_uri: str
    kms_key_id: str | None = None
    instance_type: str = "ml.c5.xlarge"
    instance_count: int = 1
    invocation_timeout_s: int = 600


def build_request(job_name: str, model_name: str, input_uri: str, output_uri: str, **options: Any) -> TransformRequest:
    """A validated request; ``options`` are the other ``TransformRequest`` fields. Raises ``TransformError``."""
    request = TransformRequest(
        job_name=job_name, model_name=model_name, input_uri=input_uri, output_uri=output_uri, **options
    )
    for check in CHECKS:
        check(request)
    return request


def to_api(request: TransformRequest) -> dict[str, Any]:
    """The CreateTransformJob parameters: S3Prefix input, ModelClientConfig set, DataProcessing left default."""
    params: dict[str, Any] = {
        "TransformJobName": request.job_name,
        "ModelName": request.model_name,
        "MaxConcurrentTransforms": request.max_concurrent_transforms,
        "MaxPayloadInMB": request.max_payload_mb,
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": request.invocation_timeout_s,
            "InvocationsMaxRetries": request.invocation_max_retries,
        },
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": request.input_uri}},
            "ContentType": request.content_type,
            "CompressionType": request.compression_type,
            "SplitType": request.split_type,
        },
        "TransformOutput": {"S3OutputPath": request.output_uri, "AssembleWith": request.assemble_with},
        "TransformResources": {"InstanceType": request.instance_type, "InstanceCount": request.instance_count},
    }
    if request.batch_strategy is not None:
        params["BatchStrategy"] = request.batch_strategy
    if request.accept is not None:
        params["TransformOutput"]["Accept"] = request.accept
    if request.environment:
        params["Environment"] = dict(request.environment)
    if request.kms_key_id is not None:
        params["TransformOutput"]["KmsKeyId"] = request.kms_key_id
    return params


def find_model(
    cloudformation_client: Any, stack_name: str, endpoint_name: str, outputs: Mapping[str, str] | None = None
) -> str:
    """The Model name in ``stack_name``'s output ``output_id(endpoint_name, "ModelName")``; ``outputs``, if
    given, are the stack's outputs already read."""
    if outputs is None:
        outputs = stack_outputs(cloudformation_client, stack_name)
    fix = "deploy a stack that exports the endpoint's single Model, or pass --model NAME"
    return stack_output(
        outputs, stack_name, endpoint_name, "ModelName", f"the Model of endpoint {endpoint_name!r}", fix
    )


def default_output_uri(outputs: Mapping[str, str], stack_name: str, endpoint_name: str, job_name: str) -> str:
    """``<endpoint>BatchOutputPath`` + ``<job_name>/``: each job's results under their own prefix, inside the
    output prefix that the stack grants the Model's role."""
    path = stack_output(
        outputs,
        stack_name,
        endpoint_name,
        "BatchOutputPath",
        f"the batch output prefix of endpoint {endpoint_name!r}",
        "pass --output S3_URI (an S3 prefix the Model's role may write)",
    )
    return f"{path.rstrip('/')}/{job_name}/"


def stack_output(
    outputs: Mapping[str, str], stack_name: str, endpoint_name: str, what: str, meaning: str, fix: str
) -> str:
    """The value of output ``output_id(endpoint_name, what)``; a ``TransformError`` naming ``fix`` if missing."""
    key = output_id(endpoint_name, what)
    if key not in outputs:
        raise TransformError(
            f"stack {stack_name} has no output {key} ({meaning}); its outputs are {sorted(outputs) or 'none'}. "
            f"Check --endpoint and --env, or {fix}"
        )
    return outputs[key]


def run(
    sagemaker_client: Any,
    request: TransformRequest,
    *,
    wait: bool = True,
    poll_s: float = 30.0,
    progress: Callable[[str], None] = lambda line: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    heartbeat_s: float = HEARTBEAT_S,
) -> dict[str, Any]:
    """Create the job, then describe it (until it ends, if ``wait``), calling ``progress`` per status change
    and, while the status stays the same, every ``heartbeat_s``, so that a long wait does not look hung.

    Returns the last DescribeTransformJob response; raises ``JobFailed`` for a Failed or Stopped job,
    ``AwsCallError`` when a call fails and ``Interrupted`` on Ctrl-C (the job keeps running).
    """
    started = clock()
    try:
        call(sagemaker_client, "CreateTransformJob", **to_api(request))
    except KeyboardInterrupt:
        raise Interrupted(request.job_name, created=None) from None
    try:
        description, status, reported = _describe(sagemaker_client, request.job_name), None, started
        while True:
            now = clock()
            if description["TransformJobStatus"] != status or now - reported >= heartbeat_s:
                status, reported = description["TransformJobStatus"], now
                progress(f"[{timedelta(seconds=int(now - started))}] {request.job_name}: {status}")
            if not wait or status in TERMINAL:
                break
            sleep(poll_s)
            description = _describe(sagemaker_client, request.job_name)
    except KeyboardInterrupt:
        raise Interrupted(request.job_name, created=True) from None
    if status in ("Failed", "Stopped"):
        raise JobFailed(_failure_message(request, description), description)
    return description


def call(client: Any, api: str, **params: Any) -> dict[str, Any]:
    """``client``'s operation ``api``; parameters botocore refuses are a `TransformError`."""
    try:
        return aws.call(client, api, job_name=params.get("TransformJobName"), **params)
    except aws.InvalidParameters as e:
        raise TransformError(str(e)) from e


def _describe(client: Any, job_name: str) -> dict[str, Any]:
    return call(client, "DescribeTransformJob", TransformJobName=job_name)


def _failure_message(request: TransformRequest, description: dict[str, Any]) -> str:
    reason = description.get("FailureReason", "no FailureReason given")
    return (
        f"transform job {request.job_name} {description['TransformJobStatus']}: {reason}. Input objects that "
        f"succeeded have their .out objects under {request.output_uri}; the container's logs are in the "
        f"CloudWatch log group {LOG_GROUP}, streams {request.job_name}/..."
    )


def _check_names(request: TransformRequest) -> None:
    if len(request.job_name) > 63 or not JOB_NAME.fullmatch(request.job_name):
        raise invalid(
            "job_name",
            "TransformJobName",
            request.job_name,
            "use 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit "
            "(e.g. creative-scoring-dev-async-20250101-120000); job names are unique per account and region",
        )
    if len(request.model_name) > 63 or not MODEL_NAME.fullmatch(request.model_name):
        raise invalid(
            "model_name",
            "ModelName",
            request.model_name,
            "use the name of a deployed SageMaker Model: 1 to 63 letters, digits and hyphens",
        )


def _check_uris(request: TransformRequest) -> None:
    for name, api in (("input_uri", "S3Uri"), ("output_uri", "S3OutputPath")):
        value = getattr(request, name)
        if len(value) > 1024 or not S3_URI.fullmatch(value):
            raise invalid(
                name, api, value, "must be s3://bucket/key (a bucket name, then a key or prefix), at most 1024 chars"
            )


def _check_resources(request: TransformRequest) -> None:
    check_int(request.instance_count, "instance_count", "TransformResources.InstanceCount", 1, None)
    timeout_api = "ModelClientConfig.InvocationsTimeoutInSeconds"
    check_int(request.invocation_timeout_s, "invocation_timeout_s", timeout_api, 1, 3600)
    if request.instance_type not in transform_instance_types():
        raise invalid(
            "instance_type",
            "TransformResources.InstanceType",
            request.instance_type,
            "not a batch transform instance type in this botocore's SageMaker model; use one such as "
            "ml.c5.xlarge, ml.m5.xlarge or ml.g5.xlarge (or upgrade boto3 for newer types)",
        )


def _check_kms_key(request: TransformRequest) -> None:
    if request.kms_key_id is not None and not KMS_KEY.fullmatch(request.kms_key_id):
        raise invalid(
            "kms_key_id",
            "TransformOutput.KmsKeyId",
            request.kms_key_id,
            "use a KMS key id, key ARN, alias name (alias/...) or alias ARN, at most 2048 characters",
        )


@cache
def transform_instance_types() -> frozenset[str]:
    """The batch transform instance types of the installed botocore's SageMaker model (its enum)."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TransformInstanceType").enum)


CHECKS: tuple[Callable[[TransformRequest], None], ...] = (_check_names, _check_uris, _check_resources, _check_kms_key)
"""The checks of what only a request in AWS has; `TransformSettings` checks the rest on construction."""
