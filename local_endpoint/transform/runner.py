"""Running a job: the model loaded in an `EmbeddedContainer`, every input read, split, sent and answered in turn.

Inputs run ``workers + 1`` at a time (the next one is read meanwhile), mini-batches ``workers`` at a time. A 5xx
answer (or an exception of the model server) is retried up to ``InvocationsMaxRetries`` times; a 4xx answer
fails its mini-batch at once. An input's ``.out`` is written only when all its mini-batches succeeded;
otherwise its failure report is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio

from creative_scoring.artifacts.transform_request import TransformError
from local_endpoint.container import ContainerResponse, EmbeddedContainer
from local_endpoint.s3 import ObjectStore
from local_endpoint.transform.checkpoint import Checkpoint
from local_endpoint.transform.job import TransformJob, container_environment
from local_endpoint.transform.model import extract, fetch_model, sha256, workdir
from local_endpoint.transform.progress import Progress
from local_endpoint.transform.records import Batch, assemble, culprit, split_records
from local_endpoint.transform.results import BatchFailure, FileResult, TransformResult
from local_endpoint.transform.storage import Storage, StoredObject, open_input, open_output

OUT_SUFFIX = ".out"
FAILED_SUFFIX = ".out.failed.json"
MODEL_NAME = "model"  # the container holds one model; requests go to /invocations
T = TypeVar("T")
FileDone = Callable[[FileResult], None]


@dataclass(frozen=True)
class Answer:
    body: bytes | None  # None: failed
    failure: BatchFailure | None
    attempts: int


class Runner:
    """The inputs of one job through one loaded model; their results by key in ``results``."""

    def __init__(
        self,
        job: TransformJob,
        container: EmbeddedContainer,
        source: Storage,
        target: Storage,
        checkpoint: Checkpoint,
        progress: Progress,
        on_file_done: FileDone | None,
    ) -> None:
        self.job = job
        self.container = container
        self.source = source
        self.target = target
        self.checkpoint = checkpoint
        self.progress = progress
        self.on_file_done = on_file_done
        self.headers = {"Content-Type": job.content_type}
        if job.accept is not None:
            self.headers["Accept"] = job.accept
        self.invocation_slots = asyncio.Semaphore(job.workers)
        self.file_slots = asyncio.Semaphore(job.workers + 1)  # one more, so the next input is read meanwhile
        self.results: dict[str, FileResult] = {}

    async def run(self, pending: Sequence[StoredObject]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for obj in pending:
                    group.create_task(self._file(obj))
        except BaseExceptionGroup as group:  # a callback or a bug: raise it as itself, not wrapped
            raise group.exceptions[0] from None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def _file(self, obj: StoredObject) -> None:
        async with self.file_slots:
            try:
                data = await self._read(obj.key)
            except Exception as e:  # a storage error fails this input only
                self.progress.input_read(obj.size, 0)
                failure = BatchFailure(None, f"could not read {self.source.describe(obj.key)}: {e}", 0)
                result = await self._failed(obj, 0, [failure], invocations=0, retries=0)
            else:
                result = await self._transform(obj, data)
        self.results[obj.key] = result
        self.progress.file_done(result.status == "Failed")
        if self.checkpoint.due():
            await self._io(self.checkpoint.flush)
        if self.on_file_done is not None:
            self.on_file_done(result)

    async def _transform(self, obj: StoredObject, data: bytes) -> FileResult:
        batches = split_records(data, self.job)
        del data
        records = sum(b.records for b in batches)
        self.progress.input_read(obj.size, records)
        answers = await self._invoke_all(batches)
        invocations = sum(a.attempts for a in answers)
        retries = sum(max(0, a.attempts - 1) for a in answers)
        failures = [a.failure for a in answers if a.failure is not None]
        if failures:
            return await self._failed(obj, records, failures, invocations, retries)
        bodies = [a.body for a in answers if a.body is not None]
        return await self._succeeded(obj, records, bodies, invocations, retries)

    async def _read(self, key: str) -> bytes:
        data = await self._io(self.source.read, key)
        if self.job.compression_type == "Gzip":
            try:
                data = await self._io(gzip.decompress, data)
            except (OSError, EOFError, zlib.error) as e:
                raise ValueError(f"it is not gzip data ({e}); drop --compression-type Gzip for plain inputs") from e
        return data

    async def _invoke_all(self, batches: Sequence[Batch]) -> list[Answer]:
        """The answers in input order; ``workers`` consumers per input, so a million records are not a million tasks."""
        answers: list[Answer | None] = [None] * len(batches)
        indexes = iter(range(len(batches)))  # shared by the consumers: the event loop runs one at a time

        async def consume() -> None:
            for index in indexes:
                answers[index] = await self._invoke(batches[index])

        await asyncio.gather(*(consume() for _ in range(min(self.job.workers, len(batches)))))
        return [a for a in answers if a is not None]

    async def _invoke(self, batch: Batch) -> Answer:
        async with self.invocation_slots:
            body = batch.body()
            if len(body) > self.job.max_payload_bytes:
                return self._oversize(batch, len(body))
            attempts = 0
            while True:
                attempts += 1
                try:
                    response = await self.container.invoke(None, body, dict(self.headers))
                except Exception as e:  # the model server itself failed: retried like a 5xx
                    response = ContainerResponse(500, f"{type(e).__name__}: {e}".encode())
                if response.ok:
                    self.progress.advance(batch.records)
                    return Answer(response.body, None, attempts)
                if response.status >= 500 and attempts <= self.job.invocation_max_retries:
                    await asyncio.sleep(min(0.05 * 2 ** (attempts - 1), 1.0))
                    continue
                self.progress.advance(batch.records, failed=True)
                message = error_message(response)
                first, last = (batch.lines[0], batch.lines[-1]) if batch.lines else (None, None)
                failure = BatchFailure(
                    response.status, message, batch.records, first, last, culprit(batch, message), attempts
                )
                return Answer(None, failure, attempts)

    def _oversize(self, batch: Batch, size: int) -> Answer:
        """A record or object over MaxPayloadInMB fails with 413, without a request."""
        first, last = (batch.lines[0], batch.lines[-1]) if batch.lines else (None, None)
        what = f"line {first}" if batch.records == 1 and first else "the input object"
        message = (
            f"{what} is {size:,} bytes, over MaxPayloadInMB {self.job.max_payload_mb} "
            f"({self.job.max_payload_bytes:,} bytes): raise --max-payload-mb"
            + ("" if batch.lines else " or split the input with --split-type Line")
        )
        self.progress.advance(batch.records, failed=True)
        failure = BatchFailure(413, message, batch.records, first, last, first if batch.records == 1 else None)
        return Answer(None, failure, 0)

    async def _succeeded(
        self, obj: StoredObject, records: int, bodies: list[bytes], invocations: int, retries: int
    ) -> FileResult:
        out_key = obj.key + OUT_SUFFIX
        output = assemble(bodies, self.job.assemble_with)
        del bodies
        try:
            await self._io(self.target.write, out_key, output)
            await self._io(self.target.delete, obj.key + FAILED_SUFFIX)
        except Exception as e:
            failure = BatchFailure(None, f"could not write {self.target.describe(out_key)}: {e}", records)
            return await self._failed(obj, records, [failure], invocations, retries)
        self.checkpoint.mark(obj, records)
        return FileResult(obj.key, "Completed", records, 0, invocations, retries, (), self.target.describe(out_key))

    async def _failed(
        self, obj: StoredObject, records: int, failures: list[BatchFailure], invocations: int, retries: int
    ) -> FileResult:
        self.checkpoint.forget(obj.key)
        failed = sum(f.records for f in failures)
        report_key = obj.key + FAILED_SUFFIX
        report = {
            "input": self.source.describe(obj.key),
            "status": "Failed",
            "records": records,
            "failed_records": failed,
            "settings": self.job.sagemaker_settings(),
            "failures": [f.to_dict() for f in failures],
        }
        location: str | None = self.target.describe(report_key)
        try:
            await self._io(self.target.delete, obj.key + OUT_SUFFIX)  # an earlier run's output is stale
            await self._io(self.target.write, report_key, (json.dumps(report, indent=2) + "\n").encode())
        except Exception as e:  # the job result still names the failure
            location = None
            failures = [*failures, BatchFailure(None, f"could not write the failure report: {e}", 0)]
        return FileResult(obj.key, "Failed", records, failed, invocations, retries, tuple(failures), location)


def error_message(response: ContainerResponse) -> str:
    """The model's message, without the toolkit's traceback; from a JSON body, its ``message``."""
    text, _ = response.error_parts()
    with contextlib.suppress(ValueError):
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            text = parsed["message"]
    return text[:2000] or f"HTTP {response.status} with an empty body"


async def transform(
    job: TransformJob, *, progress: bool = False, on_file_done: FileDone | None = None
) -> TransformResult:
    """Run ``job``; `TransformError` when it cannot start. Inputs that fail are in the result, not raised.

    ``on_file_done`` is called after each input's output (or failure report) and checkpoint entry are recorded;
    an exception it raises stops the job as an interruption would (the checkpoint is written first).
    """
    started = time.perf_counter()
    store = _lazy_store(job)
    with workdir(job.workdir) as work:
        source, target, objects = await _locations(job, store)
        archive = await anyio.to_thread.run_sync(fetch_model, job, work, store)
        checkpoint, done, notes = await _resume(job, archive, source, target, objects)
        pending = [o for o in objects if o.key not in done]
        meter = Progress(progress, len(pending), sum(o.size for o in pending))
        for message in notes:
            meter.note(message)
        model_dir = await anyio.to_thread.run_sync(extract, archive, work)
        container = EmbeddedContainer(workers_per_model=job.workers)
        runner = Runner(job, container, source, target, checkpoint, meter, on_file_done)
        with container_environment(job):
            loaded = await container.load(MODEL_NAME, str(model_dir))
            if not loaded.ok:
                raise TransformError(f"model (--model) {archive}: the model failed to load: {error_message(loaded)}")
            try:
                await runner.run(pending)
            finally:
                meter.close()
                checkpoint.flush()  # synchronous, so it also happens while the job is being cancelled
                await container.close()
    files = [runner.results.get(o.key) or _skipped(o, checkpoint) for o in objects]
    return TransformResult(job, str(archive), source.uri, target.uri, files, time.perf_counter() - started, notes)


def run_transform(
    job: TransformJob, *, progress: bool = False, on_file_done: FileDone | None = None
) -> TransformResult:
    """`transform` in a new event loop. Ctrl-C stops the job after writing its checkpoint (KeyboardInterrupt)."""
    return asyncio.run(transform(job, progress=progress, on_file_done=on_file_done))


def _lazy_store(job: TransformJob) -> Callable[[], ObjectStore]:
    """The job's S3, connected when an s3:// location first needs it."""
    stores: list[ObjectStore] = []

    def store() -> ObjectStore:
        if not stores:
            stores.append(ObjectStore(job.s3_endpoint_url, max_connections=max(10, 2 * job.workers + 2)))
        return stores[0]

    return store


async def _locations(
    job: TransformJob, store: Callable[[], ObjectStore]
) -> tuple[Storage, Storage, list[StoredObject]]:
    """The input and its objects, and the output, checked writable: before the model is fetched or run."""
    source = open_input(job.input, store)
    target = open_output(job.output, store)
    objects = await _guarded(f"input (--input) {job.input}: could not list it", anyio.to_thread.run_sync(source.list))
    if not objects:
        raise TransformError(f"input (--input) {job.input}: no input objects there")
    await _guarded(f"output (--output) {job.output}: cannot write there", anyio.to_thread.run_sync(target.prepare))
    return source, target, objects


async def _resume(
    job: TransformJob, archive: Path, source: Storage, target: Storage, objects: list[StoredObject]
) -> tuple[Checkpoint, set[str], list[str]]:
    """The checkpoint of this job's model and output-shaping settings, the inputs it lists as done, and notes."""
    settings = {"model_sha256": sha256(archive), "input": source.uri, **job.sagemaker_settings()}
    for key in ("MaxConcurrentTransforms", "InvocationsMaxRetries"):  # they do not change the outputs
        settings.pop(key)
    checkpoint = Checkpoint(target, settings)
    note = await _guarded(
        f"output (--output) {job.output}: could not read it", anyio.to_thread.run_sync(checkpoint.load)
    )
    done = await anyio.to_thread.run_sync(
        lambda: {o.key for o in objects if checkpoint.is_done(o) and target.exists(o.key + OUT_SUFFIX)}
    )
    notes = [note] if note else []
    if done:
        notes.append(f"resumed: {len(done)} of {len(objects)} inputs were finished by an earlier run")
    return checkpoint, done, notes


def _skipped(obj: StoredObject, checkpoint: Checkpoint) -> FileResult:
    return FileResult(obj.key, "Skipped", int(checkpoint.finished.get(obj.key, {}).get("records", 0)))


async def _guarded(message: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except TransformError:
        raise
    except Exception as e:
        raise TransformError(f"{message}: {e}; check the location, --s3-endpoint-url and AWS credentials") from e
