"""boto3, unchanged but for the endpoint URL, against the running local endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, PROD_ENDPOINT, LocalServer, sagemaker_runtime

CREATIVES = (SAMPLES / "creatives.json").read_bytes()
SOCIAL = (SAMPLES / "social.jsonl").read_bytes()
SAMPLE_FOR = {"creative-scorer-social-v1": (SOCIAL, "application/jsonlines")}


@pytest.fixture(scope="module")
def dev(dev_server: LocalServer) -> Any:
    return sagemaker_runtime(dev_server.url)


@pytest.fixture(scope="module")
def prod(prod_server: LocalServer) -> Any:
    return sagemaker_runtime(prod_server.url)


def _predictions(response: dict[str, Any]) -> list[dict[str, Any]]:
    body = response["Body"].read().decode()
    if response["ContentType"] == "application/jsonlines":
        return [json.loads(line) for line in body.splitlines()]
    return list(json.loads(body)["predictions"])


@pytest.mark.parametrize("model", ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"])
def test_every_model_scores_through_target_model_on_the_multi_model_endpoint(dev: Any, model: str) -> None:
    body, content_type = SAMPLE_FOR.get(model, (CREATIVES, "application/json"))
    response = dev.invoke_endpoint(
        EndpointName=DEV_ENDPOINT,
        TargetModel=f"{model}.tar.gz",
        Body=body,
        ContentType=content_type,
        Accept=content_type,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["ContentType"] == content_type
    assert {p["model"] for p in _predictions(response)} == {model}
    assert response["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize("model", ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"])
def test_every_model_scores_through_its_inference_component(prod: Any, model: str) -> None:
    body, content_type = SAMPLE_FOR.get(model, (CREATIVES, "application/json"))
    response = prod.invoke_endpoint(
        EndpointName=PROD_ENDPOINT,
        InferenceComponentName=f"{PROD_ENDPOINT}-{model}",
        Body=body,
        ContentType=content_type,
    )
    assert {p["model"] for p in _predictions(response)} == {model}
    assert response["ContentType"] == "application/json"  # missing Accept: the toolkit's default


def test_custom_attributes_and_inference_id_are_accepted(dev: Any) -> None:
    response = dev.invoke_endpoint(
        EndpointName=DEV_ENDPOINT,
        TargetModel="creative-scorer-v1.tar.gz",
        Body=CREATIVES,
        ContentType="application/json",
        CustomAttributes="trace=abc",
        InferenceId="inf-1",
        TargetVariant="AllTraffic",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "CustomAttributes" not in response  # our handler sets none, so none comes back


def _error(call: Any, **params: Any) -> Any:
    with pytest.raises(ClientError) as raised:
        call(**params)
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
    error = _error(
        prod.invoke_endpoint,
        EndpointName=PROD_ENDPOINT,
        TargetModel="creative-scorer-v1.tar.gz",
        Body=CREATIVES,
        ContentType="application/json",
    )
    assert isinstance(error, prod.exceptions.ValidationError)
    assert "is not a multi-model endpoint and does not support target model header" in str(error)


def test_missing_inference_component_name_is_a_validation_error(prod: Any) -> None:
    error = _error(prod.invoke_endpoint, EndpointName=PROD_ENDPOINT, Body=CREATIVES, ContentType="application/json")
    assert isinstance(error, prod.exceptions.ValidationError)
    assert "Inference Component Name header is required" in str(error)


def test_body_over_6_mib_is_a_validation_error(dev: Any) -> None:
    body = b" " * (6 * 1024 * 1024 + 1)
    error = _error(
        dev.invoke_endpoint,
        EndpointName=DEV_ENDPOINT,
        TargetModel="creative-scorer-v1.tar.gz",
        Body=body,
        ContentType="application/json",
    )
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


def test_every_request_is_logged_with_endpoint_target_status_and_latency(dev: Any, dev_server: LocalServer) -> None:
    dev.invoke_endpoint(
        EndpointName=DEV_ENDPOINT,
        TargetModel="creative-scorer-v2.tar.gz",
        Body=CREATIVES,
        ContentType="application/json",
        InferenceId="log-check",
    )
    lines = [line for line in dev_server.log().splitlines() if f"/aws/sagemaker/Endpoints/{DEV_ENDPOINT}" in line]
    record = json.loads(lines[-1].split(" AllTraffic/local ", 1)[1])
    assert record["target"] == "creative-scorer-v2.tar.gz"
    assert record["status"] == 200
    assert record["latencyMs"] >= record["modelLatencyMs"] > 0


def test_introspection_lists_endpoints_and_loaded_models(dev: Any, dev_server: LocalServer) -> None:
    dev.invoke_endpoint(
        EndpointName=DEV_ENDPOINT,
        TargetModel="creative-scorer-v1.tar.gz",
        Body=CREATIVES,
        ContentType="application/json",
    )
    described = dev_server.describe()
    assert {e["name"]: e["hosting"] for e in described["endpoints"]} == {
        DEV_ENDPOINT: "multi-model",
        f"{DEV_ENDPOINT}-serverless": "serverless",
        f"{DEV_ENDPOINT}-async": "async",
    }
    v1 = [m for m in described["loaded_models"] if m["target"] == "creative-scorer-v1.tar.gz"]
    # The serverless endpoint's pinned copy and the multi-model cache's copy are separate models.
    assert sorted(m["pinned"] for m in v1) == [False, True]


def test_prod_components_and_the_async_model_are_loaded_at_start(prod_server: LocalServer) -> None:
    assert prod_server.loaded_targets() == [
        "creative-scorer-social-v1.tar.gz",
        "creative-scorer-v1.tar.gz",
        "creative-scorer-v2.tar.gz",  # an inference component of creative-scoring-prod
        "creative-scorer-v2.tar.gz",  # the one model of creative-scoring-prod-async
    ]
    assert all(m["pinned"] for m in prod_server.describe()["loaded_models"])


def test_server_refuses_an_unknown_environment(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="environment 'staging' is not in"):
        LocalServer(tmp_path, "--env", "staging")


def test_custom_attributes_set_by_the_handler_come_back(slow_server: LocalServer) -> None:
    client = sagemaker_runtime(slow_server.url)
    response = client.invoke_endpoint(
        EndpointName=DEV_ENDPOINT,
        TargetModel="echo.tar.gz",
        Body=CREATIVES,
        ContentType="application/json",
        CustomAttributes="trace=42",
    )
    assert response["CustomAttributes"] == "echo:trace=42"
    assert json.loads(response["Body"].read())["predictions"]
