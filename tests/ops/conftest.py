"""Real boto3 clients behind botocore's Stubber: every request the code builds passes botocore's validation.

No test reaches AWS: the environment holds no credentials and no config, and the HTTP layer refuses to send
anywhere but to a server on the loopback address (moto's S3 and CloudFormation).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.httpsession
import pytest
from botocore.stub import Stubber

from creative_scoring.paths import MODEL_ARTIFACTS
from tests.conftest import moto_server

REGION = "us-east-1"
STACK = "CreativeScoring-dev"
ENDPOINT = "creative-scoring-dev-async"
MODEL = "ModelCreativeScoringDevAsync-1a2B3c4D"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:transform-job/{}"
CREATED = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
BUCKET = "creative-scoring-models-test"
PREFIX = "models/0123abcd/"  # where the deploy put the reference models


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, config or instance metadata to find, and no HTTP request leaves the process."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    send = botocore.httpsession.URLLib3Session.send

    def loopback_only(session: Any, request: Any) -> Any:
        if urlsplit(request.url).hostname != "127.0.0.1":  # a local S3 server (moto) is the only one allowed
            raise AssertionError(f"a test tried to send an HTTP request to {request.url}")
        return send(session, request)

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", loopback_only)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


@pytest.fixture
def sagemaker() -> Iterator[Stubber]:
    """A stubbed SageMaker client (``stubber.client``); every queued response must be consumed."""
    with Stubber(client("sagemaker")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def cloudformation() -> Iterator[Stubber]:
    with Stubber(client("cloudformation")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def describe_stacks_response(outputs: dict[str, str]) -> dict[str, Any]:
    listed = [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]
    return {
        "Stacks": [{"StackName": STACK, "CreationTime": CREATED, "StackStatus": "CREATE_COMPLETE", "Outputs": listed}]
    }


def job_description(params: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    """A DescribeTransformJob response for the job created with CreateTransformJob ``params``."""
    return {
        "TransformJobName": params["TransformJobName"],
        "TransformJobArn": ARN.format(params["TransformJobName"]),
        "TransformJobStatus": status,
        "ModelName": params["ModelName"],
        "TransformInput": params["TransformInput"],
        "TransformOutput": params["TransformOutput"],
        "TransformResources": params["TransformResources"],
        "CreationTime": CREATED,
        **extra,
    }


def queue_job(stubber: Stubber, params: dict[str, Any], statuses: list[str], **final: Any) -> None:
    """Expect CreateTransformJob with exactly ``params``, then one DescribeTransformJob per status."""
    name = params["TransformJobName"]
    stubber.add_response("create_transform_job", {"TransformJobArn": ARN.format(name)}, params)
    for i, status in enumerate(statuses):
        extra = final if i == len(statuses) - 1 else {}
        stubber.add_response(
            "describe_transform_job", job_description(params, status, **extra), {"TransformJobName": name}
        )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(moto_url: str) -> Iterator[Any]:
    """An S3 client of moto's server, with the model bucket as the deploy leaves it: reference models at PREFIX."""
    client = moto_client(moto_url, "s3")
    client.create_bucket(Bucket=BUCKET)
    deploy_reference_models(client, BUCKET, PREFIX)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def moto_client(url: str, service: str, region: str | None = None) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=region or "us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def deploy_reference_models(s3: Any, bucket: str, prefix: str, artifacts: Path = MODEL_ARTIFACTS) -> None:
    """What the deploy's BucketDeployment writes: every file of the artifacts folder under the prefix."""
    for path in sorted(artifacts.iterdir()):
        s3.put_object(Bucket=bucket, Key=f"{prefix}{path.name}", Body=path.read_bytes())
