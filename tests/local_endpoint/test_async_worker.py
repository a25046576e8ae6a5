"""The async worker against a real S3 server (moto's, on loopback): exactly one object per accepted request."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from local_endpoint.async_inference import (
    MAX_INPUT_BYTES,
    AsyncRequest,
    AsyncWorker,
    Notifier,
    RequestStore,
)
from local_endpoint.s3 import ObjectStore

BUCKET = "async-test"
ENDPOINT = "async-endpoint"


@pytest.fixture
def objects(s3_url: str) -> ObjectStore:
    store = ObjectStore(s3_url, "us-east-1")
    store.ensure_bucket(BUCKET)
    return store


def _request(name: str, **overrides: Any) -> AsyncRequest:
    fields: dict[str, Any] = {
        "inference_id": name,
        "endpoint": ENDPOINT,
        "input_location": f"s3://{BUCKET}/in/{name}.json",
        "content_type": "application/json",
        "accept": "application/json",
        "custom_attributes": None,
        "output_location": f"s3://{BUCKET}/out/{name}.out",
        "failure_location": f"s3://{BUCKET}/failures/{name}-error.out",
        "received_at": time.time(),
        "ttl_s": 600,
        "timeout_s": 5,
    }
    return AsyncRequest(**(fields | overrides))


async def _echo(body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
    if body == b"bad":
        return 400, b"instances[0].headline: required field is missing", None
    if body == b"never":
        await asyncio.Event().wait()  # a model that never answers: only the invocation timeout ends the call
    return 200, body.upper(), "application/json"


def _run(
    tmp_path: Path,
    objects: ObjectStore,
    requests: list[AsyncRequest],
    *,
    concurrency: int = 2,
    include_response: bool = True,
    max_input_bytes: int = MAX_INPUT_BYTES,
) -> tuple[RequestStore, Notifier]:
    """Queue ``requests``, run a worker until none is queued (30 s at most), then stop it."""
    store, notifier = RequestStore(tmp_path / "queue.sqlite"), Notifier(tmp_path / "notifications")

    async def drive() -> None:
        worker = AsyncWorker(
            endpoint=ENDPOINT,
            region="us-east-1",
            concurrency=concurrency,
            requests=store,
            objects=objects,
            notifier=notifier,
            invoke=_echo,
            include_response=include_response,
            max_input_bytes=max_input_bytes,
        )
        for request in requests:
            store.add(request)
        task = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 30
        while store.counts(ENDPOINT).get("queued"):
            assert time.monotonic() < deadline, f"still queued after 30 s: {store.counts(ENDPOINT)}"
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(drive())
    return store, notifier


def test_answers_failures_and_notifications_land_where_the_202_said(tmp_path: Path, objects: ObjectStore) -> None:
    objects.write(f"s3://{BUCKET}/in/good.json", b"scores", None)
    objects.write(f"s3://{BUCKET}/in/bad.json", b"bad", None)
    requests = [_request("good"), _request("bad"), _request("missing")]
    store, notifier = _run(tmp_path, objects, requests)
    assert objects.read(f"s3://{BUCKET}/out/good.out") == b"SCORES"
    assert store.counts(ENDPOINT) == {"completed": 1, "failed": 2}
    for name, reason in (("bad", "Received client error (400)"), ("missing", "Failed to download input data")):
        assert objects.size(f"s3://{BUCKET}/out/{name}.out") is None
        report = json.loads(objects.read(f"s3://{BUCKET}/failures/{name}-error.out"))
        assert reason in report["failureReason"]
    success = [json.loads(line) for line in notifier.path(ENDPOINT, "success").read_text().splitlines()]
    assert success[0]["invocationStatus"] == "Completed"
    assert success[0]["responseParameters"]["outputLocation"] == f"s3://{BUCKET}/out/good.out"
    assert success[0]["responseParameters"]["responseBody"] == "SCORES"
    errors = [json.loads(line) for line in notifier.path(ENDPOINT, "error").read_text().splitlines()]
    assert {e["inferenceId"] for e in errors} == {"bad", "missing"}
    assert all(e["eventName"] == "InferenceResult" and e["invocationStatus"] == "Failed" for e in errors)


def test_expired_requests_and_timeouts_fail_with_their_reason(tmp_path: Path, objects: ObjectStore) -> None:
    objects.write(f"s3://{BUCKET}/in/old.json", b"x", None)
    objects.write(f"s3://{BUCKET}/in/never.json", b"never", None)
    requests = [_request("old", received_at=time.time() - 120, ttl_s=60), _request("never", timeout_s=1)]
    store, _ = _run(tmp_path, objects, requests)
    assert store.counts(ENDPOINT) == {"failed": 2}
    assert "Request expired" in objects.read(f"s3://{BUCKET}/failures/old-error.out").decode()
    assert "timed out" in objects.read(f"s3://{BUCKET}/failures/never-error.out").decode()
    assert objects.size(f"s3://{BUCKET}/out/never.out") is None


def test_a_request_whose_object_exists_is_recorded_and_notified_not_run_again(
    tmp_path: Path, objects: ObjectStore
) -> None:
    objects.write(f"s3://{BUCKET}/in/done.json", b"bad", None)  # would fail if it ran again
    objects.write(f"s3://{BUCKET}/in/gone.json", b"x", None)
    done, failed = _request("done"), _request("gone")
    # both written before a crash that came before their notifications
    objects.write(f"s3://{BUCKET}/out/done.out", b"EARLIER ANSWER", "application/json", owner=done.token)
    report = json.dumps({"inferenceId": "gone", "failureReason": "ClientError: earlier reason"}).encode()
    objects.write(f"s3://{BUCKET}/failures/gone-error.out", report, "application/json", owner=failed.token)
    store, notifier = _run(tmp_path, objects, [done, failed])
    assert store.counts(ENDPOINT) == {"completed": 1, "failed": 1}
    assert objects.read(f"s3://{BUCKET}/out/done.out") == b"EARLIER ANSWER"
    assert objects.size(f"s3://{BUCKET}/failures/done-error.out") is None
    assert objects.size(f"s3://{BUCKET}/out/gone.out") is None
    (success,) = [json.loads(line) for line in notifier.path(ENDPOINT, "success").read_text().splitlines()]
    assert success["responseParameters"] == {
        "contentType": "application/json",
        "outputLocation": f"s3://{BUCKET}/out/done.out",
        "responseBody": "EARLIER ANSWER",
    }
    (error,) = [json.loads(line) for line in notifier.path(ENDPOINT, "error").read_text().splitlines()]
    assert (error["inferenceId"], error["failureReason"]) == ("gone", "ClientError: earlier reason")


def test_an_object_another_request_left_at_the_location_is_replaced(tmp_path: Path, objects: ObjectStore) -> None:
    objects.write(f"s3://{BUCKET}/in/again.json", b"bad", None)
    objects.write(f"s3://{BUCKET}/out/again.out", b"ANSWER TO AN EARLIER REQUEST", None, owner="earlier")
    store, _ = _run(tmp_path, objects, [_request("again")])
    assert store.counts(ENDPOINT) == {"failed": 1}
    assert objects.size(f"s3://{BUCKET}/out/again.out") is None
    assert "Received client error (400)" in objects.read(f"s3://{BUCKET}/failures/again-error.out").decode()


def test_oversize_input_is_a_failure(tmp_path: Path, objects: ObjectStore) -> None:
    objects.write(f"s3://{BUCKET}/in/big.json", b"x" * 2048, None)
    store, _ = _run(tmp_path, objects, [_request("big")], concurrency=1, include_response=False, max_input_bytes=1024)
    assert store.counts(ENDPOINT) == {"failed": 1}
    assert "is 2048 bytes; the limit is 1024" in objects.read(f"s3://{BUCKET}/failures/big-error.out").decode()
