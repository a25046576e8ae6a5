"""Invoke deployed models with the sample creatives, through the runtime API a client uses: one model (`probe`,
what ``models verify`` runs after a publish) or every endpoint and model of an environment (`smoke`).

A model passes when it scores at least one sample, every score is in [0, 1], and no sample fails other than by
the model refusing it (a 4xx from the model, e.g. a channel that model does not score). The first invocation's
latency includes the load of a multi-model endpoint's model (``ModelNotReadyException`` is retried until
``ready_timeout_s``).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from creative_scoring.artifacts.versions import samples, scores_of

Sample = tuple[str, bytes, str]  # file name, body, content type
READY_TIMEOUT_S = 180.0
ASYNC_TIMEOUT_S = 300.0


@dataclass
class Probe:
    """What one model answered: ``ok`` when it passed; ``problems`` say why not."""

    endpoint: str
    model: str
    first_ms: float | None = None
    scores: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # samples the model answered with a 4xx
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.scores)

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "; ".join(self.problems) or "no sample was scored: " + ", ".join(self.refused)

    def score_range(self) -> str:
        return f"{min(self.scores):.3f}..{max(self.scores):.3f}" if self.scores else "-"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "status": self.status}


def probe(
    runtime: Any,
    endpoint: str,
    model: str,
    route: dict[str, str],
    *,
    requests: Iterable[Sample] | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Probe:
    """Invoke ``endpoint`` once per sample; ``route`` is ``{"TargetModel": ...}``, ``{"InferenceComponentName":
    ...}`` or ``{}``."""
    result = Probe(endpoint, model)
    for sample, body, content_type in requests if requests is not None else samples():
        started = time.perf_counter()
        params = {"EndpointName": endpoint, "Body": body, "ContentType": content_type, **route}
        try:
            response = _until_ready(functools.partial(runtime.invoke_endpoint, **params), ready_timeout_s)
            answer = response["Body"].read()
        except ClientError as e:
            _refused_or_failed(result, sample, e)
            continue
        except BotoCoreError as e:
            result.problems.append(f"{sample}: {type(e).__name__}: {e}")
            continue
        if result.first_ms is None:
            result.first_ms = (time.perf_counter() - started) * 1000
        _read_scores(result, sample, answer)
    return result


def _until_ready(invoke: Callable[[], dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return invoke()
        except ClientError as e:
            if _code(e) != "ModelNotReadyException" or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _refused_or_failed(result: Probe, sample: str, error: ClientError) -> None:
    original = error.response.get("OriginalStatusCode")
    if _code(error) == "ModelError" and isinstance(original, int) and 400 <= original < 500:
        result.refused.append(f"{sample} ({original})")
        return
    message = error.response.get("Error", {}).get("Message", str(error))
    result.problems.append(f"{sample}: {_code(error) or 'error'}: {message}")


def _read_scores(result: Probe, sample: str, answer: bytes) -> None:
    try:
        scores = scores_of(answer)
    except ValueError as e:
        result.problems.append(f"{sample}: {e}")
        return
    if outside := [s for s in scores if not 0.0 <= s <= 1.0]:
        result.problems.append(f"{sample}: scores outside [0, 1]: {outside[:3]}")
    result.scores.extend(scores)


def probe_async(
    runtime: Any, s3: Any, endpoint: str, model: str, input_prefix: str, *, timeout_s: float = ASYNC_TIMEOUT_S
) -> Probe:
    """Upload each sample under ``input_prefix`` (``s3://bucket/prefix/``), InvokeEndpointAsync, and wait for
    its output or failure object."""
    result = Probe(endpoint, model)
    bucket, _, prefix = input_prefix.removeprefix("s3://").partition("/")
    for sample, body, content_type in samples():
        key = f"{prefix.rstrip('/')}/smoke-{uuid.uuid4().hex}-{sample}".lstrip("/")
        started = time.perf_counter()
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
            response = runtime.invoke_endpoint_async(
                EndpointName=endpoint, InputLocation=f"s3://{bucket}/{key}", ContentType=content_type
            )
            output, failure = _wait_for_answer(s3, response, timeout_s)
        except (ClientError, BotoCoreError, TimeoutError) as e:
            result.problems.append(f"{sample}: {type(e).__name__}: {e}")
            continue
        if failure is not None:
            reason = _failure_reason(failure)
            refused = "client error (4" in reason  # the model's 4xx, as SageMaker words it in the failure object
            (result.refused if refused else result.problems).append(f"{sample}: {reason}")
            continue
        if result.first_ms is None:
            result.first_ms = (time.perf_counter() - started) * 1000
        _read_scores(result, sample, output or b"")
    return result


def _failure_reason(failure: bytes) -> str:
    try:
        return str(json.loads(failure)["failureReason"])
    except (ValueError, KeyError, TypeError):
        return failure[:200].decode("utf-8", "replace")


def _wait_for_answer(s3: Any, response: dict[str, Any], timeout_s: float) -> tuple[bytes | None, bytes | None]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for location, is_output in ((response["OutputLocation"], True), (response.get("FailureLocation"), False)):
            if location and (body := _object(s3, location)) is not None:
                return (body, None) if is_output else (None, body)
        time.sleep(0.5)
    raise TimeoutError(f"no output at {response['OutputLocation']} after {timeout_s:.0f} s")


def _object(s3: Any, uri: str) -> bytes | None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if _code(e) in ("NoSuchKey", "404", "NoSuchBucket"):
            return None
        raise
    return body
