"""InvokeEndpoint through boto3, unchanged but for the endpoint URL, against the running local endpoint: each
hosting mode, the validation errors, and the model's errors as ModelError."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, PROD_ENDPOINT, invoke_json

CREATIVES = (SAMPLES / "creatives.json").read_bytes()
SOCIAL = (SAMPLES / "social.jsonl").read_bytes()
SAMPLE_FOR = {"creative-scorer-social-v1": (SOCIAL, "application/jsonlines")}


def _predictions(response: dict[str, Any]) -> list[dict[str, Any]]:
    body = response["Body"].read().decode()
    if response["ContentType"] == "application/jsonlines":
        return [json.loads(line) for line in body.splitlines()]
    return list(json.loads(body)["predictions"])


def _sample(model: str) -> tuple[bytes, str]:
    """The sample request body each model reads, and its content type."""
    return SAMPLE_FOR.get(model, (CREATIVES, "application/json"))


def _score(client: Any, model: str, **target: str) -> dict[str, Any]:
    body, content_type = _sample(model)
    response: dict[str, Any] = client.invoke_endpoint(Body=body, ContentType=content_type, **target)
    return response


@pytest.mark.parametrize("model", ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"])
def test_every_model_scores_through_target_model_on_the_multi_model_endpoint(dev: Any, model: str) -> None:
    content_type = _sample(model)[1]
    response = _score(dev, model, EndpointName=DEV_ENDPOINT, TargetModel=f"{model}.tar.gz", Accept=content_type)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["ContentType"] == content_type
    assert {p["model"] for p in _predictions(response)} == {model}
    assert response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("model", ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"])
def test_every_model_scores_through_its_inference_component(prod: Any, model: str) -> None:
    response = _score(prod, model, EndpointName=PROD_ENDPOINT, InferenceComponentName=f"{PROD_ENDPOINT}-{model}")
    assert {p["model"] for p in _predictions(response)} == {model}
    assert response["ContentType"] == "application/json"  # missing Accept: the toolkit's default


def _error(call: Any, *args: Any, **params: Any) -> Any:
    with pytest.raises(ClientError) as raised:
        call(*args, **params)
    return raised.value


def test_unknown_endpoint_is_a_validation_error(dev: Any) -> None:
    error = _error(dev.invoke_endpoint, EndpointName="no-such-endpoint", Body=b"{}", ContentType="application/json")
    assert isinstance(error, dev.exceptions.ValidationError)
    assert error.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 000000000000 not found."
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"EndpointName": "bad_name!"}, "failed to satisfy constraint"),
        ({"EndpointName": DEV_ENDPOINT}, "is missing a target model header"),
        ({"EndpointName": DEV_ENDPOINT, "TargetModel": "no-such-model.tar.gz"}, "Failed to download model data"),
        ({"EndpointName": DEV_ENDPOINT, "TargetModel": "../cdk.json"}, "Failed to download model data"),
        (
            {"EndpointName": DEV_ENDPOINT, "TargetModel": "creative-scorer-v1.tar.gz", "TargetVariant": "Blue"},
            "Variant Blue does not exist",
        ),
        ({"EndpointName": DEV_ENDPOINT, "TargetModel": "x.tar.gz", "InferenceId": "i" * 65}, "1 to 64 printable"),
        ({"EndpointName": DEV_ENDPOINT, "TargetModel": "x.tar.gz", "CustomAttributes": "a" * 1025}, "1024 ASCII"),
    ],
)
def test_malformed_requests_are_validation_errors(dev: Any, params: dict[str, str], message: str) -> None:
    error = _error(dev.invoke_endpoint, Body=CREATIVES, ContentType="application/json", **params)
    assert isinstance(error, dev.exceptions.ValidationError)
    assert message in error.response["Error"]["Message"]


def test_target_model_on_an_inference_component_endpoint_is_a_validation_error(prod: Any) -> None:
    error = _error(invoke_json, prod, PROD_ENDPOINT, "creative-scorer-v1.tar.gz")
    assert isinstance(error, prod.exceptions.ValidationError)
    assert "is not a multi-model endpoint and does not support target model header" in str(error)


def test_missing_inference_component_name_is_a_validation_error(prod: Any) -> None:
    error = _error(prod.invoke_endpoint, EndpointName=PROD_ENDPOINT, Body=CREATIVES, ContentType="application/json")
    assert isinstance(error, prod.exceptions.ValidationError)
    assert "Inference Component Name header is required" in str(error)


def test_body_over_6_mib_is_a_validation_error(dev: Any) -> None:
    body = b" " * (6 * 1024 * 1024 + 1)
    error = _error(invoke_json, dev, DEV_ENDPOINT, "creative-scorer-v1.tar.gz", body)
    assert isinstance(error, dev.exceptions.ValidationError)
    assert "has oversize body" in str(error)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"a,b", "text/csv", 415, "Content-Type 'text/csv' is not supported"),
        (b'{"instances": [{"headline": 1}]}', "application/json", 400, "instances[0].headline"),
        (b"{oops", "application/json", 400, "the body is not valid JSON"),
    ],
)
def test_handler_errors_are_model_errors_keeping_the_handlers_status(
    dev: Any, body: bytes, content_type: str, status: int, message: str
) -> None:
    error = _error(
        dev.invoke_endpoint,
        EndpointName=DEV_ENDPOINT,
        TargetModel="creative-scorer-v1.tar.gz",
        Body=body,
        ContentType=content_type,
    )
    assert isinstance(error, dev.exceptions.ModelError)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error.response["OriginalStatusCode"] == status
    assert message in error.response["OriginalMessage"]
    assert "Traceback" not in error.response["OriginalMessage"]
    assert error.response["LogStreamArn"].endswith(f":log-group:/aws/sagemaker/Endpoints/{DEV_ENDPOINT}")
    assert f"Received client error ({status}) from primary" in error.response["Error"]["Message"]
