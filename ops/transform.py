"""Batch transform on a deployed model: validate a request, find the model in the stack outputs, run the job.

Batch transform has no CloudFormation resource, so a job is created through the API. botocore checks only
required members, types and minimums before sending; ``build_request`` checks what else SageMaker documents
(maximums, enums, patterns, the rules between parameters), so a bad request fails here, naming the fix,
instead of as a ``ValidationException`` from the service.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from types import MappingProxyType
from typing import Any, Literal

import botocore.session
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from creative_scoring.config.naming import output_id

SplitType = Literal["None", "Line"]
Compression = Literal["None", "Gzip"]
BatchStrategy = Literal["SingleRecord", "MultiRecord"]
AssembleWith = Literal["None", "Line"]

JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MODEL_NAME = re.compile(r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+")
ENV_KEY = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")
KMS_KEY = re.compile(r"[a-zA-Z0-9:/_-]{1,2048}")
MEDIA_TYPE = re.compile(r"[^\r\n\x85\u2028\u2029]{1,256}")  # the model's ".*", which stops at line breaks
MAX_PAYLOAD_TIMES_CONCURRENCY_MB = 100
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
LOG_GROUP = "/aws/sagemaker/TransformJobs"
HEARTBEAT_S = 600.0


class TransformError(ValueError):
    """A transform request SageMaker would reject, or a job that did not complete; the message names the fix."""


class JobFailed(TransformError):
    """The job ended ``Failed`` or ``Stopped``; ``description`` is its last DescribeTransformJob response."""

    def __init__(self, message: str, description: dict[str, Any]) -> None:
        super().__init__(message)
        self.description = description


class AwsCallError(Exception):
    """An AWS API call failed: ``api`` is the operation (``CreateTransformJob``), ``code`` the error code,
    ``job_name`` the ``TransformJobName`` it was called with, if any."""

    def __init__(self, api: str, code: str, message: str, job_name: str | None = None) -> None:
        super().__init__(f"{api} failed: {code}: {message}")
        self.api, self.code, self.message, self.job_name = api, code, message, job_name


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in ``run``: the job ``job_name`` was ``created`` (True), or perhaps (None: during CreateTransformJob).

    A ``KeyboardInterrupt``, so callers that do not know it still stop; the job itself keeps running.
    """

    def __init__(self, job_name: str, created: bool | None) -> None:
        super().__init__(job_name)
        self.job_name, self.created = job_name, created


@dataclass(frozen=True)
class TransformRequest:
    """One CreateTransformJob request; build it with ``build_request`` so that it is valid."""

    job_name: str
    model_name: str
    input_uri: str
    output_uri: str
    content_type: str = "application/jsonlines"
    split_type: SplitType = "Line"
    compression: Compression = "None"
    batch_strategy: BatchStrategy | None = "MultiRecord"
    max_payload_mb: int = 6
    max_concurrent_transforms: int = 1
    assemble_with: AssembleWith = "Line"
    accept: str = "application/jsonlines"
    kms_key_id: str | None = None
    instance_type: str = "ml.c5.xlarge"
    instance_count: int = 1
    invocation_timeout_s: int = 600
    invocation_max_retries: int = 3
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def build_request(job_name: str, model_name: str, input_uri: str, output_uri: str, **options: Any) -> TransformRequest:
    """A validated request; ``options`` are the other ``TransformRequest`` fields. Raises ``TransformError``."""
    if "environment" in options:
        options["environment"] = MappingProxyType(dict(options["environment"]))
    request = TransformRequest(job_name, model_name, input_uri, output_uri, **options)
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
            "CompressionType": request.compression,
            "SplitType": request.split_type,
        },
        "TransformOutput": {
            "S3OutputPath": request.output_uri,
            "Accept": request.accept,
            "AssembleWith": request.assemble_with,
        },
        "TransformResources": {"InstanceType": request.instance_type, "InstanceCount": request.instance_count},
    }
    if request.batch_strategy is not None:
        params["BatchStrategy"] = request.batch_strategy
    if request.environment:
        params["Environment"] = dict(request.environment)
    if request.kms_key_id is not None:
        params["TransformOutput"]["KmsKeyId"] = request.kms_key_id
    return params


def stack_outputs(cloudformation_client: Any, stack_name: str) -> dict[str, str]:
    """``stack_name``'s outputs, by key (one DescribeStacks)."""
    stacks = call(cloudformation_client, "DescribeStacks", StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: str(o["OutputValue"]) for o in stacks[0].get("Outputs", [])}


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
    """``client``'s operation ``api`` (e.g. ``DescribeStacks``), its failures raised as typed errors."""
    job_name = params.get("TransformJobName")
    try:
        response: dict[str, Any] = getattr(client, xform_name(api))(**params)
    except ClientError as e:
        error = e.response.get("Error", {})
        raise AwsCallError(api, error.get("Code", "Unknown"), error.get("Message", str(e)), job_name) from e
    except ParamValidationError as e:
        raise TransformError(f"botocore rejected the {api} parameters: {e}") from e
    except BotoCoreError as e:
        raise AwsCallError(api, type(e).__name__, str(e), job_name) from e
    return response


def _describe(client: Any, job_name: str) -> dict[str, Any]:
    return call(client, "DescribeTransformJob", TransformJobName=job_name)


def _failure_message(request: TransformRequest, description: dict[str, Any]) -> str:
    reason = description.get("FailureReason", "no FailureReason given")
    return (
        f"transform job {request.job_name} {description['TransformJobStatus']}: {reason}. Input objects that "
        f"succeeded have their .out objects under {request.output_uri}; the container's logs are in the "
        f"CloudWatch log group {LOG_GROUP}, streams {request.job_name}/..."
    )


def _invalid(name: str, api: str, value: object, problem: str) -> TransformError:
    shown = repr(value)
    if len(shown) > 80:
        shown = f"{shown[:60]}... ({len(value) if isinstance(value, str) else len(shown)} chars)"
    return TransformError(f"{name} ({api}) = {shown}: {problem}")


def _check_int(request: TransformRequest, name: str, api: str, low: int, high: int | None) -> None:
    value = getattr(request, name)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return
    allowed = f"{low}..{high}" if high is not None else f"{low} or more"
    raise _invalid(name, api, value, f"must be an integer {allowed}")


def _check_choice(request: TransformRequest, name: str, api: str, allowed: tuple[object, ...]) -> None:
    value = getattr(request, name)
    if value not in allowed:
        raise _invalid(name, api, value, f"must be one of {', '.join(map(repr, allowed))}")


def _check_names(request: TransformRequest) -> None:
    if len(request.job_name) > 63 or not JOB_NAME.fullmatch(request.job_name):
        raise _invalid(
            "job_name",
            "TransformJobName",
            request.job_name,
            "use 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit "
            "(e.g. creative-scoring-dev-async-20250101-120000); job names are unique per account and region",
        )
    if len(request.model_name) > 63 or not MODEL_NAME.fullmatch(request.model_name):
        raise _invalid(
            "model_name",
            "ModelName",
            request.model_name,
            "use the name of a deployed SageMaker Model: 1 to 63 letters, digits and hyphens",
        )


def _check_uris(request: TransformRequest) -> None:
    for name, api in (("input_uri", "S3Uri"), ("output_uri", "S3OutputPath")):
        value = getattr(request, name)
        if len(value) > 1024 or not S3_URI.fullmatch(value):
            raise _invalid(
                name, api, value, "must be s3://bucket/key (a bucket name, then a key or prefix), at most 1024 chars"
            )


def _check_media_types(request: TransformRequest) -> None:
    for name, api in (("content_type", "ContentType"), ("accept", "Accept")):
        value = getattr(request, name)
        if not MEDIA_TYPE.fullmatch(value):
            raise _invalid(
                name, api, value, "must be a MIME type of 1 to 256 characters on one line, e.g. application/jsonlines"
            )


def _check_enums(request: TransformRequest) -> None:
    _check_choice(request, "split_type", "SplitType", ("None", "Line"))
    _check_choice(request, "compression", "CompressionType", ("None", "Gzip"))
    _check_choice(request, "batch_strategy", "BatchStrategy", ("SingleRecord", "MultiRecord", None))
    _check_choice(request, "assemble_with", "AssembleWith", ("None", "Line"))
    if request.instance_type not in transform_instance_types():
        raise _invalid(
            "instance_type",
            "TransformResources.InstanceType",
            request.instance_type,
            "not a batch transform instance type in this botocore's SageMaker model; use one such as "
            "ml.c5.xlarge, ml.m5.xlarge or ml.g5.xlarge (or upgrade boto3 for newer types)",
        )


def _check_batch_strategy(request: TransformRequest) -> None:
    if request.batch_strategy is not None and request.split_type == "None":
        raise _invalid(
            "batch_strategy",
            "BatchStrategy",
            request.batch_strategy,
            "needs split_type 'Line' (SageMaker batches records only once it splits objects into records); "
            "with split_type 'None' each S3 object is one request, so set batch_strategy None (--batch-strategy None)",
        )


def _check_numbers(request: TransformRequest) -> None:
    _check_int(request, "max_payload_mb", "MaxPayloadInMB", 0, 100)
    _check_int(request, "max_concurrent_transforms", "MaxConcurrentTransforms", 1, None)
    _check_int(request, "instance_count", "TransformResources.InstanceCount", 1, None)
    _check_int(request, "invocation_timeout_s", "ModelClientConfig.InvocationsTimeoutInSeconds", 1, 3600)
    _check_int(request, "invocation_max_retries", "ModelClientConfig.InvocationsMaxRetries", 0, 3)
    total = request.max_payload_mb * request.max_concurrent_transforms
    if total > MAX_PAYLOAD_TIMES_CONCURRENCY_MB:
        raise _invalid(
            "max_concurrent_transforms",
            "MaxConcurrentTransforms",
            request.max_concurrent_transforms,
            f"times max_payload_mb {request.max_payload_mb} is {total} MB, over SageMaker's "
            f"{MAX_PAYLOAD_TIMES_CONCURRENCY_MB} MB; lower one so that their product is at most "
            f"{MAX_PAYLOAD_TIMES_CONCURRENCY_MB}",
        )


def _check_environment(request: TransformRequest) -> None:
    env = request.environment
    if len(env) > 16:
        raise _invalid(
            "environment", "Environment", sorted(env), f"has {len(env)} entries; SageMaker allows at most 16"
        )
    for key, value in env.items():
        if not ENV_KEY.fullmatch(key):
            raise _invalid("environment", "Environment", key, "keys are letters, digits and _, not starting a digit")
        if not isinstance(value, str) or len(value) > 10240:
            raise _invalid("environment", f"Environment[{key}]", value, "values are strings of at most 10240 chars")


def _check_kms_key(request: TransformRequest) -> None:
    if request.kms_key_id is not None and not KMS_KEY.fullmatch(request.kms_key_id):
        raise _invalid(
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


CHECKS: tuple[Callable[[TransformRequest], None], ...] = (
    _check_names,
    _check_uris,
    _check_media_types,
    _check_enums,
    _check_batch_strategy,
    _check_numbers,
    _check_environment,
    _check_kms_key,
)
