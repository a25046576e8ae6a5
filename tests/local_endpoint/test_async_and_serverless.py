"""InvokeEndpointAsync and serverless limits through boto3 against the running local endpoint, with a real
S3 server (moto's, on loopback) that outlives the endpoint, so a kill and a restart can be tested."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.conftest import ARTIFACTS, SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, free_port, sagemaker_runtime
from training.dataset import generate

ASYNC = "creative-scoring-dev-async"
SERVERLESS = "creative-scoring-dev-serverless"
INPUTS = "async-inputs"
CREATIVES = (SAMPLES / "creatives.json").read_bytes()


@pytest.fixture(scope="module")
def s3(s3_url: str) -> Any:
    client = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    client.create_bucket(Bucket=INPUTS)
    return client


def _start(tmp: Path, s3_url: str, state: Path) -> LocalServer:
    return LocalServer(tmp, "--env", "dev", "--s3-endpoint-url", s3_url, "--state-dir", str(state))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_url: str) -> Iterator[LocalServer]:
    tmp = tmp_path_factory.mktemp("async")
    server = _start(tmp, s3_url, tmp / "state")
    yield server
    server.stop()


def _object(s3: Any, uri: str) -> bytes | None:
    bucket, key = uri[5:].split("/", 1)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    except ClientError:
        return None


def _wait_for_one(s3: Any, response: dict[str, Any], timeout: float = 60) -> tuple[bytes | None, bytes | None]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output, failure = _object(s3, response["OutputLocation"]), _object(s3, response["FailureLocation"])
        if output is not None or failure is not None:
            return output, failure
        time.sleep(0.1)
    raise AssertionError(f"no output or failure object for {response['InferenceId']}")


def _submit(server: LocalServer, s3: Any, key: str, body: bytes | None, **extra: Any) -> dict[str, Any]:
    if body is not None:
        s3.put_object(Bucket=INPUTS, Key=key, Body=body)
    params = {"ContentType": "application/json", **extra}
    response: dict[str, Any] = sagemaker_runtime(server.url).invoke_endpoint_async(
        EndpointName=ASYNC, InputLocation=f"s3://{INPUTS}/{key}", **params
    )
    return response


def test_async_request_is_answered_in_s3_with_a_success_notification(server: LocalServer, s3: Any) -> None:
    response = _submit(server, s3, "ok.json", CREATIVES, InferenceId="inf-ok", Accept="application/json")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "inf-ok"
    assert response["OutputLocation"].endswith("/inf-ok.out")
    output, failure = _wait_for_one(s3, response)
    assert failure is None
    assert output is not None
    assert {p["model"] for p in json.loads(output)["predictions"]} == {"creative-scorer-v2"}
    described = next(e for e in server.describe()["endpoints"] if e["name"] == ASYNC)
    sink = Path(described["async"]["notifications"]["success"])
    notices = [json.loads(line) for line in sink.read_text().splitlines()]
    notice = next(n for n in notices if n["inferenceId"] == "inf-ok")
    assert notice["invocationStatus"] == "Completed"
    assert notice["responseParameters"]["outputLocation"] == response["OutputLocation"]
    assert notice["requestParameters"]["inputLocation"] == f"s3://{INPUTS}/ok.json"


@pytest.mark.parametrize(
    ("key", "body", "content_type", "reason"),
    [
        ("missing.json", None, "application/json", "Failed to download input data"),
        ("malformed.json", b'{"instances": [{"headline": 1}]}', "application/json", "Received client error (400)"),
        ("unsupported.csv", b"a,b", "text/csv", "Received client error (415)"),
    ],
)
def test_bad_inputs_end_in_a_failure_object(
    server: LocalServer, s3: Any, key: str, body: bytes | None, content_type: str, reason: str
) -> None:
    response = _submit(server, s3, key, body, ContentType=content_type)
    output, failure = _wait_for_one(s3, response)
    assert output is None
    assert failure is not None
    assert reason in json.loads(failure)["failureReason"]


@pytest.mark.parametrize(
    "location",
    [f"s3://{INPUTS}", f"s3://{INPUTS}/", "s3://Not_A_Bucket!/x.json", "s3://no-such-bucket-here/x.json"],
)
def test_input_locations_that_name_no_object_end_in_a_failure_object(
    server: LocalServer, s3: Any, location: str
) -> None:
    response = sagemaker_runtime(server.url).invoke_endpoint_async(EndpointName=ASYNC, InputLocation=location)
    output, failure = _wait_for_one(s3, response, timeout=20)
    assert output is None
    assert failure is not None
    assert f"Failed to download input data from {location}" in json.loads(failure)["failureReason"]


def test_reusing_an_inference_id_answers_the_new_request_not_the_earlier_object(server: LocalServer, s3: Any) -> None:
    first = _submit(server, s3, "reused-ok.json", CREATIVES, InferenceId="inf-reused")
    assert _wait_for_one(s3, first)[0] is not None
    bad = b'{"instances": [{"headline": 1}]}'
    second = _submit(server, s3, "reused-bad.json", bad, InferenceId="inf-reused")
    assert second["OutputLocation"] == first["OutputLocation"]
    deadline = time.monotonic() + 30
    while (failure := _object(s3, second["FailureLocation"])) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert failure is not None
    assert "Received client error (400)" in json.loads(failure)["failureReason"]
    assert _object(s3, second["OutputLocation"]) is None  # the earlier answer is not read as this one's


def test_an_endpoint_started_before_its_s3_queues_requests_and_answers_them_once_s3_is_up(
    tmp_path: Path, s3: Any
) -> None:
    port = free_port()  # nothing listens there yet
    server = _start(tmp_path, f"http://127.0.0.1:{port}", tmp_path / "state")
    late_s3 = None
    try:
        response = sagemaker_runtime(server.url).invoke_endpoint_async(
            EndpointName=ASYNC, InputLocation=f"s3://{INPUTS}/late.json", ContentType="application/json"
        )
        time.sleep(4)  # the worker tries, fails and backs off; the server stays up
        assert server.process.poll() is None
        s3.put_object(Bucket=INPUTS, Key="late.json", Body=CREATIVES)  # moto's state is shared in this process
        late_s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        late_s3.start()
        output, failure = _wait_for_one(s3, response, timeout=90)
    finally:
        server.stop()
        if late_s3 is not None:
            late_s3.stop()
    assert failure is None
    assert output is not None
    log = server.log()
    assert "stays queued" in log
    assert log.count("stays queued") < 10, "the worker retried in a loop instead of backing off"
    assert "Traceback" not in log


def test_async_call_on_a_real_time_endpoint_and_real_time_call_on_async_are_validation_errors(
    server: LocalServer,
) -> None:
    client = sagemaker_runtime(server.url)
    with pytest.raises(client.exceptions.ValidationError, match="not an asynchronous endpoint"):
        client.invoke_endpoint_async(EndpointName=DEV_ENDPOINT, InputLocation=f"s3://{INPUTS}/ok.json")
    with pytest.raises(client.exceptions.ValidationError, match="is an asynchronous endpoint"):
        client.invoke_endpoint(EndpointName=ASYNC, Body=CREATIVES, ContentType="application/json")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"RequestTTLSeconds": 30_000}, "RequestTTLSeconds must be a whole number of seconds from 60 to 21600"),
        (
            {"InvocationTimeoutSeconds": 3601},
            "InvocationTimeoutSeconds must be a whole number of seconds from 1 to 3600",
        ),
        ({"ContentType": "application/" + "x" * 1020}, "X-Amzn-SageMaker-Content-Type must be at most 1024"),
        ({"InferenceId": "caf\u00e9"}, "must be 1 to 64 printable ASCII characters"),
    ],
)
def test_async_limits_are_validated(server: LocalServer, extra: dict[str, Any], message: str) -> None:
    client = sagemaker_runtime(server.url)
    with pytest.raises(client.exceptions.ValidationError, match=message):
        client.invoke_endpoint_async(EndpointName=ASYNC, InputLocation=f"s3://{INPUTS}/ok.json", **extra)


def test_serverless_endpoint_scores_and_refuses_bodies_over_4_mb(server: LocalServer) -> None:
    client = sagemaker_runtime(server.url)
    response = client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
    assert {p["model"] for p in json.loads(response["Body"].read())["predictions"]} == {"creative-scorer-v1"}
    with pytest.raises(client.exceptions.ValidationError, match="has oversize body"):
        client.invoke_endpoint(
            EndpointName=SERVERLESS, Body=b" " * (4 * 1024 * 1024 + 1), ContentType="application/json"
        )


def test_serverless_endpoint_throttles_over_its_max_concurrency(server: LocalServer) -> None:
    client = sagemaker_runtime(server.url)
    heavy = json.dumps({"instances": generate(1000, seed=5).creatives}).encode()

    def call(_: int) -> str:
        try:
            client.invoke_endpoint(EndpointName=SERVERLESS, Body=heavy, ContentType="application/json")
            return "ok"
        except ClientError as e:
            return str(e.response["Error"]["Code"])

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(call, range(24)))
    assert set(outcomes) == {"ok", "ThrottlingException"}


def test_accepted_requests_survive_a_kill_and_each_ends_with_exactly_one_object(
    tmp_path: Path, s3_url: str, s3: Any
) -> None:
    state = tmp_path / "state"
    server = _start(tmp_path, s3_url, state)
    body = json.dumps({"instances": generate(1000, seed=7).creatives}).encode()
    keys = [f"kill/{i}.json" for i in range(40)]
    for key in keys:
        s3.put_object(Bucket=INPUTS, Key=key, Body=body)
    s3.delete_object(Bucket=INPUTS, Key=keys[7])  # one of them will fail: exactly one failure object
    responses = [_submit(server, s3, key, None) for key in keys]
    while not any(_object(s3, r["OutputLocation"]) for r in responses):
        time.sleep(0.05)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    done_at_kill = sum(_object(s3, r["OutputLocation"]) is not None for r in responses)
    assert done_at_kill < len(responses), "the kill came too late to interrupt the queue"
    restarted = _start(tmp_path, s3_url, state)
    try:
        results = [_wait_for_one(s3, r, timeout=120) for r in responses]
        time.sleep(0.5)  # nothing more may appear
        final = [(_object(s3, r["OutputLocation"]), _object(s3, r["FailureLocation"])) for r in responses]
    finally:
        restarted.stop()
    assert all((output is None) != (failure is None) for output, failure in final)
    assert [i for i, (output, _) in enumerate(results) if output is None] == [7]


def test_a_model_missing_at_start_leaves_the_server_up_and_loads_once_its_archive_appears(
    tmp_path: Path, s3_url: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(ARTIFACTS / "manifest.json", models)  # the configuration is valid; the archives are not there
    server = LocalServer(
        tmp_path, "--env", "dev", "--models-dir", str(models), "--s3-endpoint-url", s3_url,
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    try:
        client = sagemaker_runtime(server.url)
        with pytest.raises(client.exceptions.ValidationError, match=r"creative-scorer-v1\.tar\.gz"):
            client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
        shutil.copy(ARTIFACTS / "creative-scorer-v1.tar.gz", models)
        response = client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
        assert {p["model"] for p in json.loads(response["Body"].read())["predictions"]} == {"creative-scorer-v1"}
        assert "creative-scorer-v1.tar.gz did not load" in server.log()
    finally:
        server.stop()
