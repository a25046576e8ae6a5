"""Failures of the local machine, of the model server or of the model reach boto3 as SageMaker's service errors;
a client's mistake is never a 5xx from the front."""

from __future__ import annotations

from typing import Any

import pytest

from creative_scoring.paths import SAMPLES
from tests.artifacts.test_handler_chain import NOT_UTF8
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, sagemaker_runtime

CREATIVES = (SAMPLES / "creatives.json").read_bytes()
V1 = "creative-scorer-v1.tar.gz"


def _invoke(client: Any, target: str = "creative-scorer-v1.tar.gz") -> Any:
    return client.invoke_endpoint(
        EndpointName=DEV_ENDPOINT, TargetModel=target, Body=CREATIVES, ContentType="application/json"
    )


def test_unreachable_model_server_is_service_unavailable(unavailable_server: LocalServer) -> None:
    client = sagemaker_runtime(unavailable_server.url)
    with pytest.raises(client.exceptions.ServiceUnavailable) as raised:
        _invoke(client)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_local_failure_is_internal_failure_with_the_traceback_only_in_the_log(broken_server: LocalServer) -> None:
    client = sagemaker_runtime(broken_server.url)
    with pytest.raises(client.exceptions.InternalFailure) as raised:
        _invoke(client)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "Traceback" not in raised.value.response["Error"]["Message"]
    assert "Traceback" in broken_server.log()


def test_a_model_that_does_not_answer_in_time_is_a_model_error_with_status_0(slow_server: LocalServer) -> None:
    client = sagemaker_runtime(slow_server.url)
    with pytest.raises(client.exceptions.ModelError) as raised:
        _invoke(client, "slow-answer.tar.gz")
    assert raised.value.response["OriginalStatusCode"] == 0
    assert "timed out while waiting for a response from container primary" in raised.value.response["OriginalMessage"]


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_body_that_is_not_utf8_is_the_models_error_with_its_original_500(
    dev_server: LocalServer, body: bytes
) -> None:
    client = sagemaker_runtime(dev_server.url)
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName=DEV_ENDPOINT, TargetModel=V1, Body=body, ContentType="application/json")
    error: dict[str, Any] = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert error["OriginalMessage"].startswith("'utf-8' codec can't decode")
