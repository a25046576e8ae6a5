"""The request log: one line per request, the model's traceback in the endpoint's log and not in the client's
answer, and a client that leaves early is one quiet line."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, invoke_json, sagemaker_runtime

CREATIVES = (SAMPLES / "creatives.json").read_bytes()
V1 = "creative-scorer-v1.tar.gz"


def _wait_for_log(server: LocalServer, offset: int, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = server.log()[offset:]
        if text in new:
            return new
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never reached the log: {server.log()[offset:]}")


def test_every_request_is_logged_with_endpoint_target_status_and_latency(dev: Any, dev_server: LocalServer) -> None:
    invoke_json(dev, DEV_ENDPOINT, "creative-scorer-v2.tar.gz", InferenceId="log-check")
    lines = [line for line in dev_server.log().splitlines() if f"/aws/sagemaker/Endpoints/{DEV_ENDPOINT}" in line]
    record = json.loads(lines[-1].split(" AllTraffic/local ", 1)[1])
    assert record["target"] == "creative-scorer-v2.tar.gz"
    assert record["status"] == 200
    assert record["latencyMs"] >= record["modelLatencyMs"] > 0


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
