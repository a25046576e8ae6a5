"""What a SIGKILL does to async inference with the defaults: the local endpoint and its own S3 (no other S3)."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local_endpoint.s3 import is_not_found
from tests.local_endpoint.conftest import LocalServer, sagemaker_runtime
from tests.local_endpoint.test_async_and_serverless import ASYNC, CREATIVES, _queue, _wait_until, hold

INPUTS = "durability-inputs"
REQUESTS = 16
CREATIVE_COUNT = len(json.loads(CREATIVES)["instances"])


def _s3(server: LocalServer) -> Any:
    described = next(e for e in server.describe()["endpoints"] if e["name"] == ASYNC)
    return boto3.client(
        "s3",
        endpoint_url=described["async"]["s3_endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _get(s3: Any, uri: str) -> bytes | None:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if is_not_found(e):
            return None
        raise  # S3 unwell is not "no object"
    return body


def _notified(state: Path) -> Counter[str]:
    """How many notifications (success and error) each inference id got."""
    lines = [
        json.loads(line)
        for topic in ("success", "error")
        if (path := state / "notifications" / f"{ASYNC}-{topic}.jsonl").exists()
        for line in path.read_text().splitlines()
    ]
    return Counter(line["inferenceId"] for line in lines)


def test_a_kill_of_the_endpoint_and_its_s3_mid_queue_loses_nothing_and_answers_each_request_once(
    tmp_path: Path,
) -> None:
    held = hold(tmp_path, "creative-scorer-v2", answered=3)  # the async endpoint's model
    state = tmp_path / "state"
    options = ("--env", "dev", "--state-dir", str(state), "--models-dir", str(held.models))
    server = LocalServer(tmp_path, *options)
    try:
        s3 = _s3(server)
        s3.create_bucket(Bucket=INPUTS)
        for i in range(REQUESTS):
            if i != 1:  # its input is missing: a failure object
                s3.put_object(Bucket=INPUTS, Key=f"in/{i}.json", Body=CREATIVES)
        runtime = sagemaker_runtime(server.url)
        responses = [
            runtime.invoke_endpoint_async(
                EndpointName=ASYNC, InputLocation=f"s3://{INPUTS}/in/{i}.json", ContentType="application/json"
            )
            for i in range(REQUESTS)
        ]
        _wait_until(
            lambda: _queue(server).get("completed") == 3 and held.calls_by(server) > 3,
            "three answers and the model holding a call",
        )
        before = {i: _get(s3, r["OutputLocation"]) for i, r in enumerate(responses)}
        s3_pid = json.loads((state / "s3" / "server.json").read_text())["pid"]
        os.kill(server.process.pid, signal.SIGKILL)  # both at once, mid-queue
        os.killpg(s3_pid, signal.SIGKILL)
        server.process.wait()
    finally:
        held.release.touch()  # from here on the model answers every call
        server.stop()
    url = s3.meta.endpoint_url

    restarted = LocalServer(tmp_path, *options)
    try:
        s3 = _s3(restarted)
        assert s3.meta.endpoint_url == url  # clients keep their address
        _wait_until(lambda: "queued" not in _queue(restarted), "the queue settled after the restart", timeout=120)
        assert _queue(restarted) == {"completed": REQUESTS - 1, "failed": 1}
        final = [(_get(s3, r["OutputLocation"]), _get(s3, r["FailureLocation"])) for r in responses]
        calls_after_restart = held.calls_by(restarted)
    finally:
        restarted.stop()

    answered_before = [i for i, body in before.items() if body is not None]
    assert len(answered_before) == 3
    assert all(final[i][0] == before[i] for i in answered_before)  # survived the S3's SIGKILL, not redone
    assert [i for i, (output, failure) in enumerate(final) if failure is not None] == [1]
    for i, (output, failure) in enumerate(final):
        if i != 1:
            assert failure is None
            assert output is not None
            assert len(json.loads(output)["predictions"]) == CREATIVE_COUNT
    assert "no such object" in json.loads(final[1][1] or b"{}")["failureReason"]
    assert calls_after_restart == REQUESTS - 4  # each request unsettled at the kill ran once more, and only those
    assert _notified(state) == Counter({r["InferenceId"]: 1 for r in responses})


def test_the_local_s3_killed_under_a_running_endpoint_comes_back_and_the_queue_drains(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = LocalServer(tmp_path, "--env", "dev", "--state-dir", str(state))
    try:
        s3 = _s3(server)
        s3.create_bucket(Bucket=INPUTS)
        s3.put_object(Bucket=INPUTS, Key="in.json", Body=CREATIVES)
        first = json.loads((state / "s3" / "server.json").read_text())["pid"]
        os.killpg(first, signal.SIGKILL)
        runtime = sagemaker_runtime(server.url)  # accepted while S3 is down: the request waits in the queue
        response = runtime.invoke_endpoint_async(
            EndpointName=ASYNC, InputLocation=f"s3://{INPUTS}/in.json", ContentType="application/json"
        )
        _wait_until(lambda: _queue(server) == {"completed": 1}, "the answer once S3 is back", timeout=120)
        assert json.loads((state / "s3" / "server.json").read_text())["pid"] != first
        output = _get(s3, response["OutputLocation"])
        assert output is not None
        assert len(json.loads(output)["predictions"]) == CREATIVE_COUNT
        assert "the local S3 server exited" in server.log()
    finally:
        server.stop()
