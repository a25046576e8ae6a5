"""The same requests through boto3, the JavaScript SDK v3 and the AWS CLI: each client raises SageMaker's
exception class with its fields, or returns the scores, against the running local endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, PROD_ENDPOINT, LocalServer, sagemaker_runtime
from tests.local_endpoint.sdk.clients import invoke_cli, invoke_js

CREATIVES = (SAMPLES / "creatives.json").read_text()
SOCIAL = (SAMPLES / "social.jsonl").read_text()
JSON = "application/json"


@dataclass(frozen=True)
class Case:
    id: str
    server: str
    params: dict[str, str]
    shape: str | None = None  # None: success
    status: int = 200
    original_status: int | None = None
    models: set[str] = field(default_factory=set)


def _dev(target: str, body: str = CREATIVES, **extra: str) -> dict[str, str]:
    return {"EndpointName": DEV_ENDPOINT, "TargetModel": target, "Body": body, "ContentType": JSON, **extra}


def _prod(model: str, body: str = CREATIVES) -> dict[str, str]:
    name = f"{PROD_ENDPOINT}-{model}"
    return {"EndpointName": PROD_ENDPOINT, "InferenceComponentName": name, "Body": body, "ContentType": JSON}


def _social(body: str) -> str:
    return json.dumps({"instances": [json.loads(line) for line in body.splitlines()]})


CASES = [
    Case("mme-v1", "dev_server", _dev("creative-scorer-v1.tar.gz"), models={"creative-scorer-v1"}),
    Case("mme-v2", "dev_server", _dev("creative-scorer-v2.tar.gz"), models={"creative-scorer-v2"}),
    Case(
        "mme-social",
        "dev_server",
        _dev("creative-scorer-social-v1.tar.gz", _social(SOCIAL)),
        models={"creative-scorer-social-v1"},
    ),
    Case("ic-v1", "prod_server", _prod("creative-scorer-v1"), models={"creative-scorer-v1"}),
    Case("ic-v2", "prod_server", _prod("creative-scorer-v2"), models={"creative-scorer-v2"}),
    Case(
        "ic-social",
        "prod_server",
        _prod("creative-scorer-social-v1", _social(SOCIAL)),
        models={"creative-scorer-social-v1"},
    ),
    Case("unknown-endpoint", "dev_server", {**_dev("x.tar.gz"), "EndpointName": "nope"}, "ValidationError", 400),
    Case("bad-endpoint-name", "dev_server", {**_dev("x.tar.gz"), "EndpointName": "bad_name"}, "ValidationError", 400),
    Case(
        "missing-target-model",
        "dev_server",
        {"EndpointName": DEV_ENDPOINT, "Body": CREATIVES, "ContentType": JSON},
        "ValidationError",
        400,
    ),
    Case(
        "target-model-on-components",
        "prod_server",
        {**_prod("creative-scorer-v1"), "TargetModel": "a.tar.gz"},
        "ValidationError",
        400,
    ),
    Case(
        "oversize-body",
        "dev_server",
        _dev("creative-scorer-v1.tar.gz", " " * (6 * 1024 * 1024 + 1)),
        "ValidationError",
        400,
    ),
    Case(
        "handler-415",
        "dev_server",
        {**_dev("creative-scorer-v1.tar.gz"), "ContentType": "text/csv"},
        "ModelError",
        424,
        415,
    ),
    Case("handler-400", "dev_server", _dev("creative-scorer-v1.tar.gz", '{"instances": [{}]}'), "ModelError", 424, 400),
    Case("model-timeout", "slow_server", _dev("slow-answer.tar.gz"), "ModelError", 424, 0),
    # A model that is still loading is loaded by the next call: each client asks for a model of its own.
    Case("model-not-ready", "slow_server", _dev("slow-load-{client}.tar.gz"), "ModelNotReadyException", 429),
    Case("service-unavailable", "unavailable_server", _dev("creative-scorer-v1.tar.gz"), "ServiceUnavailable", 503),
    Case("internal-failure", "broken_server", _dev("creative-scorer-v1.tar.gz"), "InternalFailure", 500),
]


def _params(case: Case, client: str) -> dict[str, str]:
    return {key: value.replace("{client}", client) for key, value in case.params.items()}


def _server(request: pytest.FixtureRequest, case: Case) -> LocalServer:
    server: LocalServer = request.getfixturevalue(case.server)
    return server


def _models(body: str, content_type: str | None) -> set[str]:
    if content_type == "application/jsonlines":
        return {json.loads(line)["model"] for line in body.splitlines()}
    return {p["model"] for p in json.loads(body)["predictions"]}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_boto3(request: pytest.FixtureRequest, case: Case) -> None:
    client = sagemaker_runtime(_server(request, case).url)
    params: dict[str, Any] = {**_params(case, "boto3"), "Body": case.params["Body"].encode()}
    if case.shape is None:
        response = client.invoke_endpoint(**params)
        assert response["InvokedProductionVariant"] == "AllTraffic"
        assert _models(response["Body"].read().decode(), response["ContentType"]) == case.models
        return
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(**params)
    assert isinstance(raised.value, getattr(client.exceptions, case.shape))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == case.status
    assert raised.value.response["ResponseMetadata"]["RequestId"]
    assert raised.value.response.get("OriginalStatusCode") == case.original_status


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_javascript_sdk_v3(request: pytest.FixtureRequest, case: Case) -> None:
    result = invoke_js(_server(request, case).url, **_params(case, "js"))
    assert result["httpStatusCode"] == case.status
    assert result["requestId"]
    if case.shape is None:
        assert result["ok"] is True
        assert result["InvokedProductionVariant"] == "AllTraffic"
        assert _models(result["Body"], result["ContentType"]) == case.models
        return
    assert (result["ok"], result["name"]) == (False, case.shape)
    assert result["OriginalStatusCode"] == case.original_status
    assert result["fault"] == ("server" if case.status >= 500 else "client")
    if case.shape == "ModelError":
        assert result["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/" + case.params["EndpointName"])
        assert "Traceback" not in result["OriginalMessage"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_aws_cli(request: pytest.FixtureRequest, case: Case, tmp_path: Path) -> None:
    result = invoke_cli(_server(request, case).url, tmp_path / "out.json", **_params(case, "cli"))
    if case.shape is None:
        assert result.returncode == 0, result.stderr
        assert result.stdout is not None
        assert result.stdout["InvokedProductionVariant"] == "AllTraffic"
        assert result.body is not None
        assert _models(result.body.decode(), result.stdout["ContentType"]) == case.models
        return
    assert result.returncode == 255  # CLI v1's exit code for a service error (v2 uses 254)
    assert f"An error occurred ({case.shape}) when calling the InvokeEndpoint operation" in result.stderr
