"""The client harnesses (clients.py) against a stub of the runtime API: what each AWS client returns or raises.

The stub answers ``POST /endpoints/{EndpointName}/invocations`` with a canned response per endpoint name, in the
wire form of the SageMaker runtime (contract §2.1, §3): the ``x-amzn-ErrorType`` header names the error shape,
the JSON body carries its members. It proves the harnesses and pins down how the JavaScript SDK v3, boto3 and
the AWS CLI read the same bytes; the real local endpoint is tested elsewhere.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
import botocore.config  # type: ignore[import-untyped, unused-ignore]
import botocore.exceptions  # type: ignore[import-untyped, unused-ignore]
import pytest

from tests.local_endpoint.sdk import clients
from tests.local_endpoint.sdk.clients import ClientSetupError, CliResult, invoke_cli, invoke_js

ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker/"
SUCCESS_BODY = b'{"predictions":[1]}'
LOG_STREAM_ARN = "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/modelerror"
MODEL_ERROR_MESSAGE = 'Received client error (400) from primary with message "bad". See ...'
MODEL_ERROR_BODY = {
    "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
    "Message": MODEL_ERROR_MESSAGE,
    "OriginalStatusCode": 400,
    "OriginalMessage": "bad",
    "LogStreamArn": LOG_STREAM_ARN,
}
CLI_SERVICE_ERROR_CODES = (254, 255)  # v2, v1


@dataclass(frozen=True)
class Canned:
    status: int
    error_type: str | None  # the x-amzn-ErrorType header, None for none
    body: dict[str, Any]
    content_type: str | None = None  # None: no Content-Type header on the response


# Error responses carry no Content-Type and no `__type`: the header alone must be enough for every client.
ERRORS = {
    "modelerror": Canned(424, "ModelError" + ERROR_TYPE_SUFFIX, MODEL_ERROR_BODY),
    "validation": Canned(
        400,
        "ValidationError" + ERROR_TYPE_SUFFIX,
        {"Message": "Endpoint validation of account 000000000000 not found."},
    ),
    "notready": Canned(
        429,
        "ModelNotReadyException" + ERROR_TYPE_SUFFIX,
        {"Message": "Model creative-scorer-v1.tar.gz is not ready yet."},
    ),
    "internal": Canned(500, "InternalFailure" + ERROR_TYPE_SUFFIX, {"Message": "An internal error occurred."}),
    "unavailable": Canned(503, "ServiceUnavailable" + ERROR_TYPE_SUFFIX, {"Message": "Service is unavailable."}),
    # The error shape only in the body's `__type` (as some AWS services send it), with a JSON Content-Type.
    "modelerror-bodytype": Canned(424, None, {"__type": "ModelError", **MODEL_ERROR_BODY}, "application/json"),
    # Neither header nor `__type`: the clients disagree (see test_untyped_error_*).
    "modelerror-untyped": Canned(424, None, MODEL_ERROR_BODY, "application/json"),
}

# (endpoint name, shape, HTTP status, fault) for the modeled errors, with the message the body carries.
MODELED = [
    ("modelerror", "ModelError", 424, "client"),
    ("validation", "ValidationError", 400, "client"),
    ("notready", "ModelNotReadyException", 429, "client"),
    ("internal", "InternalFailure", 500, "server"),
    ("unavailable", "ServiceUnavailable", 503, "server"),
    ("modelerror-bodytype", "ModelError", 424, "client"),
]
MODEL_ERROR_FIELDS = {"OriginalStatusCode": 400, "OriginalMessage": "bad", "LogStreamArn": LOG_STREAM_ARN}


@dataclass
class Stub:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def headers_of_only_request(self) -> dict[str, str]:
        assert len(self.requests) == 1, [path for path, _, _ in self.requests]
        return self.requests[0][1]


def _sdk_request_field(headers: dict[str, str], name: str) -> str:
    """A field of the ``amz-sdk-request`` header, e.g. ``attempt`` in ``ttl=...; attempt=2; max=2``."""
    fields = dict(part.strip().split("=", 1) for part in headers["amz-sdk-request"].split(";"))
    return fields[name]


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            stub.requests.append((self.path, headers, body))
            parts = self.path.split("/")
            name = parts[2] if len(parts) == 4 and parts[1] == "endpoints" and parts[3] == "invocations" else ""
            request_id = f"req-{name}"
            if name == "ok":
                self._answer(
                    200,
                    {
                        "Content-Type": "application/json",
                        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
                        "X-Amzn-SageMaker-Custom-Attributes": "echo=1",
                        "x-amzn-RequestId": "req-1",
                    },
                    SUCCESS_BODY,
                )
                return
            canned = ERRORS.get(name, Canned(404, None, {"message": f"no route {self.path}"}, "application/json"))
            headers_out = {"x-amzn-RequestId": request_id}
            if canned.error_type is not None:
                headers_out["x-amzn-ErrorType"] = canned.error_type
            if canned.content_type is not None:
                headers_out["Content-Type"] = canned.content_type
            self._answer(canned.status, headers_out, json.dumps(canned.body).encode())

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def stub_server() -> Iterator[Stub]:
    stub = Stub(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="sagemaker-stub", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def stub(stub_server: Stub) -> Stub:
    stub_server.requests.clear()
    return stub_server


@pytest.fixture(scope="module")
def boto3_client(stub_server: Stub) -> Iterator[Any]:
    client = boto3.client(
        "sagemaker-runtime",
        endpoint_url=stub_server.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    yield client
    client.close()


REQUEST_PARAMS = {
    "ContentType": "application/json",
    "Accept": "application/json",
    "CustomAttributes": "trace=1",
    "TargetModel": "creative-scorer-v1.tar.gz",
    "TargetVariant": "AllTraffic",
    "InferenceId": "iid-1",
    "InferenceComponentName": "scorer-ic",
}
# InvokeEndpoint parameter -> the request header every client must send it as (contract §2.1).
REQUEST_HEADERS = {
    "ContentType": "content-type",
    "Accept": "accept",
    "CustomAttributes": "x-amzn-sagemaker-custom-attributes",
    "TargetModel": "x-amzn-sagemaker-target-model",
    "TargetVariant": "x-amzn-sagemaker-target-variant",
    "InferenceId": "x-amzn-sagemaker-inference-id",
    "InferenceComponentName": "x-amzn-sagemaker-inference-component",
}
# Non-ASCII, so that a client that base64-decodes or re-encodes the body would be caught.
REQUEST_BODY = '{"creatives":[{"headline":"Été à Zürich"}]}'


def _assert_request_as_sent(stub: Stub) -> None:
    (path, headers, body) = stub.requests[0]
    assert len(stub.requests) == 1
    assert path == "/endpoints/ok/invocations"
    assert body == REQUEST_BODY.encode("utf-8")
    for param, header in REQUEST_HEADERS.items():
        assert headers.get(header) == REQUEST_PARAMS[param], header
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/sagemaker/aws4_request" in headers["authorization"]


# --- success -------------------------------------------------------------------------------------------------------


def test_js_success(stub: Stub) -> None:
    result = invoke_js(stub.url, EndpointName="ok", Body=REQUEST_BODY, **REQUEST_PARAMS)
    assert result == {
        "ok": True,
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
        "CustomAttributes": "echo=1",
        "Body": SUCCESS_BODY.decode(),
        "httpStatusCode": 200,
        "requestId": "req-1",
    }
    _assert_request_as_sent(stub)


def test_boto3_success(stub: Stub, boto3_client: Any) -> None:
    response = boto3_client.invoke_endpoint(EndpointName="ok", Body=REQUEST_BODY.encode("utf-8"), **REQUEST_PARAMS)
    assert response["Body"].read() == SUCCESS_BODY
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert response["CustomAttributes"] == "echo=1"
    assert response["ResponseMetadata"]["RequestId"] == "req-1"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    _assert_request_as_sent(stub)


def test_cli_success(stub: Stub, tmp_path: Path) -> None:
    result = invoke_cli(stub.url, tmp_path / "out.json", EndpointName="ok", Body=REQUEST_BODY, **REQUEST_PARAMS)
    assert result == CliResult(
        returncode=0,
        stdout={
            "ContentType": "application/json",
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": "echo=1",
        },
        stderr="",
        body=SUCCESS_BODY,
    )
    _assert_request_as_sent(stub)


def test_content_type_when_not_given(stub: Stub, boto3_client: Any, tmp_path: Path) -> None:
    """boto3 and the CLI send no Content-Type without ContentType; the JavaScript SDK sends application/octet-stream."""
    invoke_js(stub.url, EndpointName="ok", Body="x")
    boto3_client.invoke_endpoint(EndpointName="ok", Body=b"x")
    invoke_cli(stub.url, tmp_path / "out", EndpointName="ok", Body="x")
    sent = [headers.get("content-type") for _, headers, _ in stub.requests]
    assert sent == ["application/octet-stream", None, None]


# --- modeled errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "shape", "status", "fault"), MODELED)
def test_js_modeled_error(stub: Stub, endpoint: str, shape: str, status: int, fault: str) -> None:
    result = invoke_js(stub.url, EndpointName=endpoint, Body="{}", ContentType="application/json")
    model_error = shape == "ModelError"
    assert result == {
        "ok": False,
        "name": shape,
        "message": ERRORS[endpoint].body["Message"],
        "fault": fault,
        "httpStatusCode": status,
        "requestId": f"req-{endpoint}",
        "OriginalStatusCode": 400 if model_error else None,
        "OriginalMessage": "bad" if model_error else None,
        "LogStreamArn": LOG_STREAM_ARN if model_error else None,
    }
    stub.headers_of_only_request()  # maxAttempts 1: no retry, even of 429 / 500 / 503


@pytest.mark.parametrize(("endpoint", "shape", "status", "fault"), MODELED)
def test_boto3_modeled_error(stub: Stub, boto3_client: Any, endpoint: str, shape: str, status: int, fault: str) -> None:
    with pytest.raises(getattr(boto3_client.exceptions, shape)) as raised:
        boto3_client.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
    response = raised.value.response
    message = ERRORS[endpoint].body["Message"]
    assert response["Error"] == {"Code": shape, "Message": message}
    assert response["Message"] == message
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["RequestId"] == f"req-{endpoint}"
    modeled = {key: response.get(key) for key in MODEL_ERROR_FIELDS}
    assert modeled == (MODEL_ERROR_FIELDS if shape == "ModelError" else dict.fromkeys(MODEL_ERROR_FIELDS))
    # Config(retries={"max_attempts": 1}) counts retries, not attempts: a 500 / 503 is sent twice (429 is no
    # retryable error in standard mode). retries={"total_max_attempts": 1} would make it one attempt.
    attempts = 2 if status in (500, 503) else 1
    assert [_sdk_request_field(headers, "attempt") for _, headers, _ in stub.requests] == [
        str(n) for n in range(1, attempts + 1)
    ]


@pytest.mark.parametrize(("endpoint", "shape", "status", "fault"), MODELED)
def test_cli_modeled_error(stub: Stub, tmp_path: Path, endpoint: str, shape: str, status: int, fault: str) -> None:
    outfile = tmp_path / "out.json"
    outfile.write_bytes(b"stale")
    result = invoke_cli(stub.url, outfile, EndpointName=endpoint, Body="{}", ContentType="application/json")
    assert result.returncode in CLI_SERVICE_ERROR_CODES
    assert result.stdout is None
    assert result.body is None  # nothing written; the stale file was removed first
    message = ERRORS[endpoint].body["Message"]
    assert f"An error occurred ({shape}) when calling the InvokeEndpoint operation" in result.stderr
    assert result.stderr.strip().endswith(message)
    stub.headers_of_only_request()


# --- an error with neither x-amzn-ErrorType nor __type: where the clients disagree --------------------------------


def test_untyped_error_js_gives_unknown_but_keeps_the_members(stub: Stub) -> None:
    result = invoke_js(stub.url, EndpointName="modelerror-untyped", Body="{}")
    assert result["name"] == "Unknown"
    assert result["httpStatusCode"] == 424
    assert result["message"] == MODEL_ERROR_MESSAGE
    assert {key: result[key] for key in MODEL_ERROR_FIELDS} == MODEL_ERROR_FIELDS


def test_untyped_error_boto3_gives_the_status_as_code(stub: Stub, boto3_client: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        boto3_client.invoke_endpoint(EndpointName="modelerror-untyped", Body=b"{}")
    assert type(raised.value) is botocore.exceptions.ClientError
    assert raised.value.response["Error"] == {"Code": "424", "Message": MODEL_ERROR_MESSAGE}
    assert "OriginalStatusCode" not in raised.value.response


def test_untyped_error_cli_gives_the_status_as_code(stub: Stub, tmp_path: Path) -> None:
    result = invoke_cli(stub.url, tmp_path / "out", EndpointName="modelerror-untyped", Body="{}")
    assert result.returncode in CLI_SERVICE_ERROR_CODES
    assert "An error occurred (424) when calling the InvokeEndpoint operation" in result.stderr


# --- the harnesses themselves ------------------------------------------------------------------------------------


def test_invoke_js_says_to_run_npm_ci_without_the_sdk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(clients, "ROOT", tmp_path)
    with pytest.raises(ClientSetupError, match="npm ci"):
        invoke_js("http://127.0.0.1:9", EndpointName="ok", Body="{}")


def test_harnesses_reject_unknown_parameters(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Bodyy"):
        invoke_js("http://127.0.0.1:9", EndpointName="ok", Bodyy="{}")
    with pytest.raises(TypeError, match="Body"):
        invoke_cli("http://127.0.0.1:9", tmp_path / "out", EndpointName="ok")


def test_cli_is_the_one_installed_beside_python() -> None:
    assert Path(clients.aws_executable()).parent == Path(sys.executable).parent
