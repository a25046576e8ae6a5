"""Asynchronous inference: requests persisted before the 202, processed in the background, answered in S3.

``InvokeEndpointAsync`` names an S3 input; the front stores the request in SQLite, then answers 202 with the
output and failure locations fixed at that moment. A worker per endpoint reads the input, calls the model,
and writes exactly one object: the response at the output location, or a failure report at the failure
location; then it sends the success or error notification. A request left unfinished by a crash is picked up
again when the server restarts; an object already written for it is never written twice. Each object carries
the request's token in its metadata, so an object left at the same location by another request (an
``InferenceId`` or ``Filename`` used again) is replaced, never taken for this request's answer. While S3 cannot
be reached, the worker backs off (up to a minute between tries) and the requests stay queued.

Not confirmed against AWS (configurable or documented): the default object names ``<InferenceId>.out`` and
``<InferenceId>-error.out``, and the content of the failure object (here a JSON report).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from local_endpoint.headers import CUSTOM_ATTRIBUTES
from local_endpoint.s3 import ObjectStore

MAX_INPUT_BYTES = 1024**3
DEFAULT_TTL_S = 21_600
DEFAULT_TIMEOUT_S = 900
INCLUDED_RESPONSE_LIMIT = 128 * 1024
MAX_BACKOFF_S = 60.0

Invoke = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, bytes, str | None]]]
TIMEOUT_REASON = "Your invocation timed out while waiting for a response from container primary."
log = logging.getLogger("local_endpoint.async")


@dataclass(frozen=True)
class AsyncRequest:
    inference_id: str
    endpoint: str
    input_location: str
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    output_location: str
    failure_location: str
    received_at: float
    ttl_s: int
    timeout_s: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class RequestStore:
    """Accepted requests, in SQLite: committed before the client gets its 202."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        columns = ", ".join(f"{name} TEXT" for name in AsyncRequest.__dataclass_fields__)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS requests (seq INTEGER PRIMARY KEY, {columns}, status TEXT)")

    def add(self, request: AsyncRequest) -> None:
        values = asdict(request)
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._lock:
            self._db.execute(f"INSERT INTO requests ({names}, status) VALUES ({marks}, 'queued')", [*values.values()])

    def pending(self, endpoint: str) -> list[tuple[int, AsyncRequest]]:
        names = list(AsyncRequest.__dataclass_fields__)
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, {', '.join(names)} FROM requests WHERE endpoint = ? AND status = 'queued' ORDER BY seq",
                (endpoint,),
            ).fetchall()
        return [(row[0], _request(dict(zip(names, row[1:], strict=True)))) for row in rows]

    def finish(self, seq: int, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE requests SET status = ? WHERE seq = ?", (status, seq))

    def counts(self, endpoint: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT status, COUNT(*) FROM requests WHERE endpoint = ? GROUP BY status", (endpoint,)
            ).fetchall()
        return {str(status): int(count) for status, count in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _request(row: dict[str, Any]) -> AsyncRequest:
    ints = {"received_at": float, "ttl_s": int, "timeout_s": int}
    return AsyncRequest(**{k: ints[k](v) if k in ints else v for k, v in row.items()})


class Notifier:
    """Success and error notifications, appended as JSON lines to one file per endpoint and topic."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def path(self, endpoint: str, topic: str) -> Path:
        return self.folder / f"{endpoint}-{topic}.jsonl"

    def send(self, endpoint: str, topic: str, message: dict[str, Any]) -> None:
        with self._lock, self.path(endpoint, topic).open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(message) + "\n")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    body: bytes
    content_type: str | None
    reason: str = ""


class AsyncWorker:
    """Processes one endpoint's queue, at most ``concurrency`` requests at a time.

    A request settles with exactly one object, its answer or its failure. When S3 cannot be read or written (or
    anything else goes wrong in this process), the request stays queued and the worker starts nothing new for a
    while, doubling the pause up to ``MAX_BACKOFF_S``; a settled request resets it.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        concurrency: int,
        requests: RequestStore,
        objects: ObjectStore,
        notifier: Notifier,
        invoke: Invoke,
        include_response: bool,
        max_input_bytes: int = MAX_INPUT_BYTES,
    ) -> None:
        self.endpoint, self.region, self.max_input_bytes = endpoint, region, max_input_bytes
        self.requests, self.objects, self.notifier = requests, objects, notifier
        self.invoke, self.include_response = invoke, include_response
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._active: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._backoff_s = 0.0
        self._resume_at = 0.0  # time.monotonic() before which nothing new starts

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                pause = self._resume_at - time.monotonic()
                if pause <= 0:
                    # No await from the query to the last start: the queue cannot change under this loop.
                    for seq, request in self.requests.pending(self.endpoint):
                        if len(self._active) >= self.concurrency:
                            break
                        if seq not in self._active:
                            self._start(seq, request)
                try:
                    async with asyncio.timeout(pause if pause > 0 else None):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in self._tasks:
                task.cancel()  # still queued: the next start settles them
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, seq: int, request: AsyncRequest) -> None:
        self._active.add(seq)
        task = asyncio.create_task(self._process(seq, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, seq: int, request: AsyncRequest) -> None:
        try:
            status = await self._settle(request)
            self.requests.finish(seq, status)
            self._backoff_s = 0.0
        except Exception as e:
            self._back_off(request, e)
        finally:
            self._active.discard(seq)
            self.wake()

    def _back_off(self, request: AsyncRequest, error: Exception) -> None:
        now = time.monotonic()
        if now >= self._resume_at:  # requests failing together during one pause back off once
            self._backoff_s = min(max(self._backoff_s * 2, 1.0), MAX_BACKOFF_S)
            self._resume_at = now + self._backoff_s
        if isinstance(error, BotoCoreError | ClientError):
            log.warning(
                "endpoint %s: request %s stays queued, S3 (%s) failed: %s; next try in %.0f s",
                self.endpoint, request.inference_id, self.objects.client.meta.endpoint_url, error, self._backoff_s,
            )  # fmt: skip
        else:
            log.error(
                "endpoint %s: request %s stays queued after an internal error; next try in %.0f s",
                self.endpoint, request.inference_id, self._backoff_s, exc_info=error,
            )  # fmt: skip

    async def _settle(self, request: AsyncRequest) -> str:
        """Write the one object this request gets; if a previous run wrote it already, only record that.

        An object another request left at either location is deleted first, so the client never reads it as
        this request's answer.
        """
        locations = ((request.output_location, "completed"), (request.failure_location, "failed"))
        for location, status in locations:
            owner = await anyio.to_thread.run_sync(self.objects.owner, location)
            if owner is None:
                continue
            if owner == request.token:
                # Written before a crash or a lost answer from S3, so perhaps never notified: notify again.
                outcome = await self._written(request, location, ok=status == "completed")
                self.notifier.send(
                    self.endpoint, "success" if outcome.ok else "error", self._notification(request, outcome)
                )
                return status
            await anyio.to_thread.run_sync(self.objects.delete, location)
        outcome = await self._outcome(request)
        if outcome.ok:
            await anyio.to_thread.run_sync(
                self.objects.write, request.output_location, outcome.body, outcome.content_type, request.token
            )
        else:
            report = json.dumps({"inferenceId": request.inference_id, "failureReason": outcome.reason}).encode()
            await anyio.to_thread.run_sync(
                self.objects.write, request.failure_location, report, "application/json", request.token
            )
        self.notifier.send(self.endpoint, "success" if outcome.ok else "error", self._notification(request, outcome))
        return "completed" if outcome.ok else "failed"

    async def _written(self, request: AsyncRequest, location: str, *, ok: bool) -> Outcome:
        """The outcome that the object this request wrote at ``location`` records."""
        body, content_type = await anyio.to_thread.run_sync(self.objects.fetch, location)
        if ok:
            return Outcome(True, body, content_type)
        try:
            reason = str(json.loads(body)["failureReason"])
        except (ValueError, KeyError, TypeError):
            reason = f"see {request.failure_location}"
        return Outcome(False, b"", None, reason)

    async def _outcome(self, request: AsyncRequest) -> Outcome:
        if time.time() - request.received_at > request.ttl_s:
            return Outcome(
                False, b"", None, f"Request expired: it waited longer than its {request.ttl_s} s time to live."
            )
        try:
            size = await anyio.to_thread.run_sync(self.objects.size, request.input_location)
            if size is None:
                return _input_failure(request, "no such object")
            if size > self.max_input_bytes:
                reason = f"The input at {request.input_location} is {size} bytes; the limit is {self.max_input_bytes}."
                return Outcome(False, b"", None, f"ClientError: {reason}")
            body = await anyio.to_thread.run_sync(self.objects.read, request.input_location)
        except (ValueError, ParamValidationError) as e:
            return _input_failure(request, str(e))
        except ClientError as e:
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if not 400 <= status < 500 or status in (408, 429):
                raise  # S3 is unwell, not the request: it waits in the queue
            return _input_failure(request, f"{e.response['Error'].get('Code')} {e.response['Error'].get('Message')}")
        headers = {k: v for k, v in (("content-type", request.content_type), ("accept", request.accept),
                   (CUSTOM_ATTRIBUTES, request.custom_attributes)) if v}  # fmt: skip
        try:
            async with asyncio.timeout(request.timeout_s):
                status, answer, content_type = await self.invoke(body, headers)
        except TimeoutError:
            return Outcome(
                False, b"", None, f"ClientError: {TIMEOUT_REASON} (InvocationTimeoutSeconds {request.timeout_s})"
            )
        if 200 <= status < 300:
            return Outcome(True, answer, content_type)
        side = "client" if 400 <= status < 500 else "server"
        message = answer.decode("utf-8", "replace")
        return Outcome(
            False, b"", None, f'ClientError: Received {side} error ({status}) from model with message "{message}".'
        )

    def _notification(self, request: AsyncRequest, outcome: Outcome) -> dict[str, Any]:
        message: dict[str, Any] = {
            "awsRegion": self.region,
            "eventTime": _iso(time.time()),
            "receivedTime": _iso(request.received_at),
            "invocationStatus": "Completed" if outcome.ok else "Failed",
            "requestParameters": {
                "contentType": request.content_type,
                "endpointName": self.endpoint,
                "inputLocation": request.input_location,
            },
            "inferenceId": request.inference_id,
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if outcome.ok:
            message["responseParameters"] = {
                "contentType": outcome.content_type,
                "outputLocation": request.output_location,
            }
            if self.include_response and len(outcome.body) <= INCLUDED_RESPONSE_LIMIT:
                message["responseParameters"]["responseBody"] = outcome.body.decode("utf-8", "replace")
        else:
            message["failureReason"] = outcome.reason
            message["responseParameters"] = {"failureLocation": request.failure_location}
        return message


def _input_failure(request: AsyncRequest, problem: str) -> Outcome:
    return Outcome(
        False, b"", None, f"ClientError: Failed to download input data from {request.input_location}: {problem}."
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def new_inference_id() -> str:
    return str(uuid.uuid4())


class AsyncService:
    """The async side of a running front: the S3 client, the request store, the notification sink and one worker
    per async endpoint."""

    def __init__(
        self, *, state_dir: Path, s3_endpoint_url: str | None, bucket: str, region: str, max_input_bytes: int
    ) -> None:
        self.state_dir, self.bucket, self.region = state_dir, bucket, region
        self.max_input_bytes = max_input_bytes
        self.s3_endpoint_url = s3_endpoint_url
        self.objects = ObjectStore(s3_endpoint_url, region, create_buckets=True)
        try:
            self.objects.ensure_bucket(bucket)
        except BotoCoreError as e:  # S3 may start after the endpoint: the first write creates the bucket
            log.warning(
                "S3 at %s cannot be reached (%s); async requests wait in the queue until it can", s3_endpoint_url, e
            )
        self.requests = RequestStore(state_dir / "async-requests.sqlite")
        self.notifier = Notifier(state_dir / "notifications")
        self.workers: dict[str, AsyncWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start_worker(self, endpoint: str, *, concurrency: int, invoke: Invoke, include_response: bool) -> None:
        worker = AsyncWorker(
            endpoint=endpoint,
            region=self.region,
            concurrency=concurrency,
            requests=self.requests,
            objects=self.objects,
            notifier=self.notifier,
            invoke=invoke,
            include_response=include_response,
            max_input_bytes=self.max_input_bytes,
        )
        self.workers[endpoint] = worker
        self._tasks.append(asyncio.create_task(worker.run()))

    def submit(self, request: AsyncRequest) -> None:
        self.requests.add(request)  # committed before the caller answers 202
        self.workers[request.endpoint].wake()

    def describe(self, endpoint: str) -> dict[str, Any]:
        return {
            "requests": self.requests.counts(endpoint),
            "s3_endpoint_url": self.s3_endpoint_url,
            "notifications": {t: str(self.notifier.path(endpoint, t)) for t in ("success", "error")},
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.requests.close()
