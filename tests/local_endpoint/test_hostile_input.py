"""Hostile input at the front, through stock boto3 and raw sockets: a client's mistake is never a 5xx from the
front, and what the model server logs goes to the endpoint's log, not to the client."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from tests.artifacts.test_handler_chain import NOT_UTF8
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, sagemaker_runtime

V1 = "creative-scorer-v1.tar.gz"


def _wait_for_log(server: LocalServer, offset: int, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = server.log()[offset:]
        if text in new:
            return new
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never reached the log: {server.log()[offset:]}")


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


def test_the_handlers_traceback_goes_to_the_endpoints_log_and_not_to_the_client(dev_server: LocalServer) -> None:
    client = sagemaker_runtime(dev_server.url)
    offset = len(dev_server.log())
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName=DEV_ENDPOINT, TargetModel=V1, Body=b"\xff", ContentType="application/json")
    assert "Traceback" not in str(raised.value.response)
    logged = _wait_for_log(dev_server, offset, "UnicodeDecodeError")
    assert f"/aws/sagemaker/Endpoints/{DEV_ENDPOINT} AllTraffic/local the model answered 500:" in logged
    assert "Traceback (most recent call last):" in logged


def test_a_client_that_leaves_before_its_body_arrives_is_one_quiet_log_line(dev_server: LocalServer) -> None:
    offset = len(dev_server.log())
    head = (
        f"POST /endpoints/{DEV_ENDPOINT}/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nX-Amzn-SageMaker-Target-Model: {V1}\r\nContent-Length: 5000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", dev_server.port)) as connection:
        connection.sendall(head.encode() + b'{"instances": [')
    logged = _wait_for_log(dev_server, offset, "the client disconnected before its body arrived")
    assert "Traceback" not in logged
    assert "InternalFailure" not in logged
    assert "failed inside the local endpoint" not in logged
    client = sagemaker_runtime(dev_server.url)  # and the server serves on
    body = b'{"instances": []}'
    response = client.invoke_endpoint(
        EndpointName=DEV_ENDPOINT, TargetModel=V1, Body=body, ContentType="application/json"
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
