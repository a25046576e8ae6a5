"""Put a published version live on one inference component, touching nothing else: not the Endpoint, not its
EndpointConfig, not the other components.

SageMaker has no way to point a Model at other data, so the version gets a Model of its own, a copy of the
component's current Model (image, role, environment) with the version's archive; then UpdateInferenceComponent
moves the component to it, with the rollout SageMaker applies to component updates. The version is recorded as
live on the component (``published/components/COMPONENT.json``), which the next deploy reads
(`ops.carry_over.component_archives`), so the deploy keeps the component on it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from creative_scoring.artifacts.published import COMPONENTS, RECORDS, now, pin_key
from ops.aws import AwsCallError, call

CONTAINER_KEYS = ("Image", "ImageConfig", "Environment", "Mode")  # DescribeModel members CreateModel takes back
POLL_S = 15.0
TIMEOUT_S = 3600.0


class ComponentUpdateFailed(Exception):
    """The component did not reach InService on the new Model; SageMaker keeps it on the previous one."""


class UpdateUnderWay(Exception):
    """The wait ran out while SageMaker was still updating the component; the update goes on."""


@dataclass(frozen=True)
class Live:
    component: str
    version: str
    model_name: str
    previous_model: str


def model_name(component: str, version: str, sha256: str) -> str:
    """A Model name within SageMaker's 63 characters, unique per (component, version, archive)."""
    tag = hashlib.sha256(f"{component}\0{version}\0{sha256}".encode()).hexdigest()[:10]
    return f"{version[:52].rstrip('-.').replace('.', '-')}-{tag}"


def put_live(
    sagemaker: Any,
    s3: Any,
    bucket: str,
    *,
    component: str,
    version: str,
    archive_key: str,
    sha256: str,
    pinned_by: str,
    progress: Callable[[str], None] = lambda line: None,
    poll_s: float = POLL_S,
    timeout_s: float = TIMEOUT_S,
) -> Live:
    """Create the version's Model, update ``component`` to it, record it as live, and wait for InService."""
    described = call(sagemaker, "DescribeInferenceComponent", InferenceComponentName=component)
    specification = described["Specification"]
    previous = specification["ModelName"]
    current = call(sagemaker, "DescribeModel", ModelName=previous)
    name = model_name(component, version, sha256)
    container = {k: current["PrimaryContainer"][k] for k in CONTAINER_KEYS if k in current["PrimaryContainer"]}
    container["ModelDataUrl"] = f"s3://{bucket}/{archive_key}"
    model: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": current["ExecutionRoleArn"],
        "PrimaryContainer": container,
    }
    if "VpcConfig" in current:
        model["VpcConfig"] = current["VpcConfig"]
    _create_model(sagemaker, model)
    progress(f"created Model {name} for {version}; updating {component}")
    update: dict[str, Any] = {
        "InferenceComponentName": component,
        "Specification": {
            "ModelName": name,
            "ComputeResourceRequirements": specification["ComputeResourceRequirements"],
        },
    }
    if "LastDeploymentConfig" in described:  # the rollout the stack set: batches, waits, alarm rollback
        update["DeploymentConfig"] = described["LastDeploymentConfig"]
    call(sagemaker, "UpdateInferenceComponent", **update)
    before = _read_pin(s3, bucket, component)
    pin = {
        "component": component,
        "version": version,
        "model_name": name,
        "previous_model": previous,
        "pinned_at": now(),
        "pinned_by": pinned_by,
    }
    call(s3, "PutObject", Bucket=bucket, Key=pin_key(component), Body=json.dumps(pin, indent=2).encode())
    try:
        _wait_in_service(sagemaker, component, name, progress, poll_s, timeout_s)
    except ComponentUpdateFailed:  # SageMaker keeps (or rolled back to) the previous Model
        _restore_pin(s3, bucket, component, before)
        raise
    return Live(component, version, name, previous)


def _create_model(sagemaker: Any, model: dict[str, Any]) -> None:
    try:
        call(sagemaker, "CreateModel", **model)
    except AwsCallError as e:
        if not (e.code == "ValidationException" and "already exists" in e.message):  # a retried publish
            raise


def _read_pin(s3: Any, bucket: str, component: str) -> bytes | None:
    try:
        body: bytes = call(s3, "GetObject", Bucket=bucket, Key=pin_key(component))["Body"].read()
    except AwsCallError as e:
        if e.code in ("NoSuchKey", "404"):
            return None
        raise
    return body


def _restore_pin(s3: Any, bucket: str, component: str, before: bytes | None) -> None:
    if before is None:
        call(s3, "DeleteObject", Bucket=bucket, Key=pin_key(component))
    else:
        call(s3, "PutObject", Bucket=bucket, Key=pin_key(component), Body=before)


def _wait_in_service(
    sagemaker: Any, component: str, model: str, progress: Callable[[str], None], poll_s: float, timeout_s: float
) -> None:
    """Until ``component`` is InService on ``model``. Failed, or InService on another Model after the update was
    seen under way (SageMaker rolled it back), is `ComponentUpdateFailed`; running out of time is `UpdateUnderWay`.
    InService on the old Model before any update is seen is the moment before SageMaker starts: keep waiting."""
    deadline = time.monotonic() + timeout_s
    status = None
    started = False
    while time.monotonic() < deadline:
        described = call(sagemaker, "DescribeInferenceComponent", InferenceComponentName=component)
        if described["InferenceComponentStatus"] != status:
            status = described["InferenceComponentStatus"]
            progress(f"{component}: {status}")
        serving = described["Specification"]["ModelName"]
        if status == "InService" and serving == model:
            return
        started = started or status != "InService"
        if status == "Failed" or (status == "InService" and started):
            raise ComponentUpdateFailed(
                f"{component} did not move to Model {model}: "
                f"{described.get('FailureReason', 'SageMaker rolled the update back')}; it serves Model {serving}"
            )
        time.sleep(poll_s)
    raise UpdateUnderWay(
        f"{component} is still updating to Model {model} after {timeout_s:.0f} s; the update goes on in SageMaker "
        f"and the version is recorded as live. Follow it: aws sagemaker describe-inference-component "
        f"--inference-component-name {component}"
    )


def pins(s3: Any, bucket: str) -> dict[str, str]:
    """The version live on each component that the model pipeline put one on, by component."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{RECORDS}{COMPONENTS}")
    found = {}
    for item in (i for page in pages for i in page.get("Contents", [])):
        pin = json.loads(call(s3, "GetObject", Bucket=bucket, Key=item["Key"])["Body"].read())
        found[pin["component"]] = pin["version"]
    return found
