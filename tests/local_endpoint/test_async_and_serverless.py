"""InvokeEndpointAsync and serverless limits through boto3 against the running local endpoint, with a real
S3 server (moto's, on loopback) that outlives the endpoint, so a kill and a restart can be tested."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES
from tests.local_endpoint.conftest import (
    DEV_ENDPOINT,
    LocalServer,
    copy_reference_archives,
    free_port,
    sagemaker_runtime,
    write_test_archive,
)

ASYNC = "creative-scoring-dev-async"
SERVERLESS = "creative-scoring-dev-serverless"
INPUTS = "async-inputs"
CREATIVES = (SAMPLES / "creatives.json").read_bytes()
SERVERLESS_MAX_CONCURRENCY = 5  # cdk.json, creative-scoring-dev-serverless


@pytest.fixture(scope="module")
def s3(s3_url: str) -> Any:
    client = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    client.create_bucket(Bucket=INPUTS)
    return client


def _start(tmp: Path, s3_url: str, state: Path, *args: str) -> LocalServer:
    return LocalServer(tmp, "--env", "dev", "--s3-endpoint-url", s3_url, "--state-dir", str(state), *args)


@dataclass(frozen=True)
class HeldModel:
    """What `hold` made: the models folder, the file whose creation releases the held calls, and the folder where
    each call leaves a file ``<process id>-<call number>``, so a test counts the calls one server made."""

    models: Path
    release: Path
    calls: Path

    def calls_by(self, server: LocalServer) -> int:
        return len(list(self.calls.glob(f"{server.process.pid}-*")))


def hold(folder: Path, model: str, *, answered: int = 0) -> HeldModel:
    """The reference models, ``model`` replaced by its weights behind a ``predict_fn`` that answers ``answered``
    calls, then holds the others until ``release`` exists."""
    held = HeldModel(folder / "models", folder / "release", folder / "calls")
    copy_reference_archives(held.models)
    held.calls.mkdir()
    predict = f"""
    import os
    call = next(CALLS)
    open(os.path.join({str(held.calls)!r}, "%d-%d" % (os.getpid(), call)), "w").close()
    while call >= {answered} and not os.path.exists({str(held.release)!r}):
        time.sleep(0.05)
    """
    write_test_archive(
        held.models, model, predict_fn_body=predict, extra="\n\nimport itertools\n\nCALLS = itertools.count()\n"
    )
    return held


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _queue(server: LocalServer) -> dict[str, int]:
    """The async endpoint's requests by status, as the server reports them."""
    described = next(e for e in server.describe()["endpoints"] if e["name"] == ASYNC)
    counts: dict[str, int] = described["async"]["requests"]
    return counts


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
        _wait_until(lambda: server.log().count("stays queued") >= 2, "a try, a pause and a second try failing")
        assert server.process.poll() is None
        assert _queue(server) == {"queued": 1}
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
    assert "Traceback" not in log
    tries = [line for line in log.splitlines() if "stays queued" in line]
    pauses = [int(re.findall(r"next try in (\d+) s", line)[0]) for line in tries]
    assert pauses == [2**i for i in range(len(tries))]  # each failed try doubles the pause
    failed_at = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in tries]  # the log's asctime
    for pause, earlier, later in zip(pauses, failed_at, failed_at[1:], strict=False):
        assert later - earlier >= timedelta(seconds=pause - 0.05), "the worker tried again before its pause ended"


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


def test_serverless_endpoint_throttles_over_its_max_concurrency(tmp_path: Path, s3_url: str) -> None:
    held = hold(tmp_path, "creative-scorer-v1")  # the serverless endpoint's model: every call waits for release
    server = _start(tmp_path, s3_url, tmp_path / "state", "--models-dir", str(held.models))
    client = sagemaker_runtime(server.url)

    def call() -> str:
        try:
            client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
            return "ok"
        except ClientError as e:
            return str(e.response["Error"]["Code"])

    over = 3
    try:
        with ThreadPoolExecutor(SERVERLESS_MAX_CONCURRENCY + over) as pool:
            calls = [pool.submit(call) for _ in range(SERVERLESS_MAX_CONCURRENCY + over)]
            # none is answered before the release: the calls over the limit are the only ones that can end
            ended = f"{over} calls ended while the model held the others"
            _wait_until(lambda: sum(c.done() for c in calls) >= over, ended, timeout=30)
            refused = [c.result() for c in calls if c.done()]
            held.release.touch()
            outcomes = [c.result() for c in calls]
        after = call()
    finally:
        held.release.touch()
        server.stop()
    assert refused == ["ThrottlingException"] * over
    assert sorted(outcomes) == ["ThrottlingException"] * over + ["ok"] * SERVERLESS_MAX_CONCURRENCY
    assert after == "ok"  # the calls that ended freed their places


def test_accepted_requests_survive_a_kill_and_each_ends_with_exactly_one_object(
    tmp_path: Path, s3_url: str, s3: Any
) -> None:
    held = hold(tmp_path, "creative-scorer-v2", answered=3)  # the async endpoint's model
    state = tmp_path / "state"
    keys = [f"kill/{i}.json" for i in range(12)]
    for key in keys:
        s3.put_object(Bucket=INPUTS, Key=key, Body=CREATIVES)
    s3.delete_object(Bucket=INPUTS, Key=keys[1])  # it fails without calling the model: one failure object
    server = _start(tmp_path, s3_url, state, "--models-dir", str(held.models))
    try:
        responses = [_submit(server, s3, key, None) for key in keys]
        settled_first = {"completed": 3, "failed": 1}  # three answers and the missing input; then the model holds
        _wait_until(
            lambda: _queue(server).items() >= settled_first.items() and held.calls_by(server) > 3,
            "three answers, one failure and the model holding a call",
        )
        assert _queue(server) == {**settled_first, "queued": len(keys) - 4}
        os.kill(server.process.pid, signal.SIGKILL)
    finally:
        held.release.touch()  # from here on the model answers every call
        server.stop()
    settled = [
        i for i, r in enumerate(responses) if _object(s3, r["OutputLocation"]) or _object(s3, r["FailureLocation"])
    ]
    assert len(settled) == 4
    assert 1 in settled
    restarted = _start(tmp_path, s3_url, state, "--models-dir", str(held.models))
    try:
        _wait_until(lambda: "queued" not in _queue(restarted), "the queue settled after the restart", timeout=120)
        assert _queue(restarted) == {"completed": len(keys) - 1, "failed": 1}  # each wrote its object before this
        final = [(_object(s3, r["OutputLocation"]), _object(s3, r["FailureLocation"])) for r in responses]
        calls_after_restart = held.calls_by(restarted)
    finally:
        restarted.stop()
    assert all((output is None) != (failure is None) for output, failure in final)
    assert [i for i, (output, _) in enumerate(final) if output is None] == [1]
    assert calls_after_restart == len(keys) - 4  # each request unsettled at the kill ran again, and only those


def test_a_model_missing_at_start_leaves_the_server_up_and_loads_once_its_archive_appears(
    tmp_path: Path, s3_url: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MODEL_ARTIFACTS / "manifest.json", models)  # the configuration is valid; the archives are not there
    server = LocalServer(
        tmp_path, "--env", "dev", "--models-dir", str(models), "--s3-endpoint-url", s3_url,
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    try:
        client = sagemaker_runtime(server.url)
        with pytest.raises(client.exceptions.ValidationError, match=r"creative-scorer-v1\.tar\.gz"):
            client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
        shutil.copy(MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz", models)
        response = client.invoke_endpoint(EndpointName=SERVERLESS, Body=CREATIVES, ContentType="application/json")
        assert {p["model"] for p in json.loads(response["Body"].read())["predictions"]} == {"creative-scorer-v1"}
        assert "creative-scorer-v1.tar.gz did not load" in server.log()
    finally:
        server.stop()
