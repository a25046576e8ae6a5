"""A version goes live on one inference component: the exact SageMaker calls (a stubbed real client, so botocore
validates every request), the record the next deploy reads (moto's S3), and the carry-over's answer for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from creative_scoring.artifacts.published import archive_attribute, pin_key
from creative_scoring.artifacts.versions import VersionError
from ops.carry_over import carry_over, component_archives
from ops.components import ComponentUpdateFailed, model_name, pins, put_live
from ops.versions import S3Store, publish, retire
from tests.ops.conftest import BUCKET, PREFIX, deploy_reference_models
from tests.ops.test_versions import V1

COMPONENT = "creative-scoring-prod-creative-scorer-v1"
CURRENT_MODEL = "ProdV1Model-AbCdEf"
ROLE = "arn:aws:iam::123456789012:role/creative-scoring-prod-execution"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-gpu-py312-cu124-ubuntu22.04-sagemaker"
REQUIREMENTS = {"NumberOfAcceleratorDevicesRequired": 1, "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 4096}
CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def _component(status: str, model: str = CURRENT_MODEL, **extra: Any) -> dict[str, Any]:
    return {
        "InferenceComponentName": COMPONENT,
        "InferenceComponentArn": f"arn:aws:sagemaker:us-east-1:123456789012:inference-component/{COMPONENT}",
        "EndpointName": "creative-scoring-prod",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/creative-scoring-prod",
        "Specification": {"ModelName": model, "ComputeResourceRequirements": REQUIREMENTS},
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED,
        "InferenceComponentStatus": status,
        **extra,
    }


ROLLOUT = {
    "RollingUpdatePolicy": {
        "MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1},
        "WaitIntervalInSeconds": 120,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "creative-scoring-prod-ModelLatencyP99-critical"}]},
}


def _queue(
    sagemaker: Stubber, archive_key: str, sha256: str, final: str, *, rolled_back: bool = False, **extra: Any
) -> str:
    new_model = model_name(COMPONENT, "creative-scorer-v1-1", sha256)
    sagemaker.add_response(
        "describe_inference_component",
        _component("InService", LastDeploymentConfig=ROLLOUT),
        {"InferenceComponentName": COMPONENT},
    )
    container = {"Image": IMAGE, "Mode": "SingleModel", "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    sagemaker.add_response(
        "describe_model",
        {
            "ModelName": CURRENT_MODEL,
            "ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{CURRENT_MODEL}",
            "CreationTime": CREATED,
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {**container, "ModelDataUrl": f"s3://{BUCKET}/{PREFIX}creative-scorer-v1.tar.gz"},
        },
        {"ModelName": CURRENT_MODEL},
    )
    sagemaker.add_response(
        "create_model",
        {"ModelArn": f"arn:aws:sagemaker:us-east-1:123456789012:model/{new_model}"},
        {
            "ModelName": new_model,
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {**container, "ModelDataUrl": f"s3://{BUCKET}/{archive_key}"},
        },
    )
    sagemaker.add_response(
        "update_inference_component",
        {"InferenceComponentArn": _component("Updating")["InferenceComponentArn"]},
        {
            "InferenceComponentName": COMPONENT,
            "Specification": {"ModelName": new_model, "ComputeResourceRequirements": REQUIREMENTS},
            "DeploymentConfig": ROLLOUT,  # the stack's rollout, not SageMaker's default
        },
    )
    # Before SageMaker starts, the component still reads InService on the old Model: not a failure.
    last = CURRENT_MODEL if rolled_back else new_model
    for status, serving in (("InService", CURRENT_MODEL), ("Updating", new_model), (final, last)):
        sagemaker.add_response(
            "describe_inference_component",
            _component(status, serving, **extra),
            {"InferenceComponentName": COMPONENT},
        )
    return new_model


def _live(sagemaker: Stubber, s3: Any, record: Any) -> Any:
    return put_live(
        sagemaker.client,
        s3,
        BUCKET,
        component=COMPONENT,
        version=record.name,
        archive_key=record.archive,
        sha256=record.sha256,
        pinned_by="tester",
        poll_s=0,
    )


def test_a_version_goes_live_on_its_component_only_and_the_next_deploy_keeps_it(sagemaker: Stubber, s3: Any) -> None:
    record = publish(S3Store(s3, BUCKET, PREFIX), "creative-scorer-v1-1", V1, published_by="tester").record
    new_model = _queue(sagemaker, record.archive, record.sha256, "InService")
    live = _live(sagemaker, s3, record)  # the stubber refuses any call not queued: no endpoint, no config
    assert (live.model_name, live.previous_model) == (new_model, CURRENT_MODEL)
    assert pins(s3, BUCKET) == {COMPONENT: "creative-scorer-v1-1"}
    # The next deploy, same code: the carry-over answers the live version for this component, the reference
    # archive for the others.
    components = {
        COMPONENT: {"Attribute": archive_attribute(COMPONENT), "Archive": "creative-scorer-v1.tar.gz"},
        "creative-scoring-prod-creative-scorer-v2": {
            "Attribute": archive_attribute("creative-scoring-prod-creative-scorer-v2"),
            "Archive": "creative-scorer-v2.tar.gz",
        },
    }
    assert component_archives(s3, BUCKET, PREFIX, components) == {
        archive_attribute(COMPONENT): f"{PREFIX}creative-scorer-v1-1.tar.gz",
        archive_attribute("creative-scoring-prod-creative-scorer-v2"): f"{PREFIX}creative-scorer-v2.tar.gz",
    }
    # A deploy with new code carries the live version to the new prefix, and answers it there.
    deploy_reference_models(s3, BUCKET, "models/new/")
    assert carry_over(s3, BUCKET, "models/new/") == ["creative-scorer-v1-1"]
    assert component_archives(s3, BUCKET, "models/new/", components)[archive_attribute(COMPONENT)] == (
        "models/new/creative-scorer-v1-1.tar.gz"
    )


def test_a_failed_update_leaves_the_component_s_record_as_it_was(sagemaker: Stubber, s3: Any) -> None:
    record = publish(S3Store(s3, BUCKET, PREFIX), "creative-scorer-v1-1", V1, published_by="tester").record
    _queue(sagemaker, record.archive, record.sha256, "Failed", FailureReason="health check failed")
    with pytest.raises(ComponentUpdateFailed, match=r"health check failed; it serves Model"):
        _live(sagemaker, s3, record)
    assert pins(s3, BUCKET) == {}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=pin_key(COMPONENT))


def test_an_update_sagemaker_rolled_back_is_a_failure_and_the_record_stays_as_it_was(
    sagemaker: Stubber, s3: Any
) -> None:
    record = publish(S3Store(s3, BUCKET, PREFIX), "creative-scorer-v1-1", V1, published_by="tester").record
    _queue(sagemaker, record.archive, record.sha256, "InService", rolled_back=True)
    with pytest.raises(ComponentUpdateFailed, match=f"rolled the update back; it serves Model {CURRENT_MODEL}"):
        _live(sagemaker, s3, record)
    assert pins(s3, BUCKET) == {}


def test_a_version_live_on_a_component_cannot_be_retired(sagemaker: Stubber, s3: Any) -> None:
    store = S3Store(s3, BUCKET, PREFIX)
    record = publish(store, "creative-scorer-v1-1", V1, published_by="tester").record
    _queue(sagemaker, record.archive, record.sha256, "InService")
    _live(sagemaker, s3, record)
    with pytest.raises(VersionError, match=f"is live on inference component.*{COMPONENT}.*--component"):
        retire(store, "creative-scorer-v1-1")
    assert "creative-scorer-v1-1.tar.gz" in store.archives()


def test_model_names_fit_sagemaker_s_limit_and_differ_per_archive() -> None:
    long = model_name(COMPONENT, "v" * 100, "a" * 64)
    assert len(long) <= 63
    assert model_name(COMPONENT, "x.1", "a" * 64) != model_name(COMPONENT, "x.1", "b" * 64)
    assert "." not in model_name(COMPONENT, "x.1", "a" * 64)


def test_component_names_differing_only_in_punctuation_get_different_attributes() -> None:
    assert archive_attribute("prod-scorer-2") != archive_attribute("prod-scorer2")
    assert archive_attribute(COMPONENT).isalnum()
