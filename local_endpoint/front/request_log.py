"""How each request to the runtime API is answered when it fails, and logged either way.

Errors take the wire form that botocore and the JavaScript SDK v3 parse: the ``x-amzn-ErrorType`` header names
the error shape (it wins over the body), the JSON body carries the shape's members, and ``x-amzn-RequestId``
becomes ``ResponseMetadata.RequestId``. Each request gets one JSON line in its endpoint's log, under the name of
the endpoint's CloudWatch log group; a model's traceback goes there too, never to the client.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.responses import Response

from local_endpoint.container import ContainerResponse, ContainerUnavailable
from local_endpoint.errors import InternalFailure, RuntimeApiError, ServiceUnavailable
from local_endpoint.headers import ERROR_TYPE, REQUEST_ID, VARIANT

ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.sagemaker/"

log = logging.getLogger("local_endpoint.requests")


@dataclass
class Outcome:
    """What a request's log line tells beyond its response: the model it reached and the model's timings."""

    target: str | None = None
    model_ms: float | None = None
    load_ms: float | None = None


Handle = Callable[[str, Outcome], Awaitable[Response]]  # (request id, outcome to fill in) -> the answer


async def answer(endpoint: str, handle: Handle) -> Response:
    """``handle``'s answer to one request to ``endpoint``, or SageMaker's answer to its error; logged either way."""
    request_id, started, outcome = str(uuid.uuid4()), time.perf_counter(), Outcome()
    try:
        response = await handle(request_id, outcome)
    except ClientDisconnect:  # the client's event, not the endpoint's: nothing to answer, nothing went wrong
        log.info("request %s to %s: the client disconnected before its body arrived", request_id, endpoint)
        return Response(status_code=400)
    except RuntimeApiError as e:
        response = error_response(e, request_id)
    except ContainerUnavailable:
        unavailable = ServiceUnavailable("The model server is unavailable. Please try again later.")
        response = error_response(unavailable, request_id)
    except Exception:
        log.exception("request %s failed inside the local endpoint", request_id)
        response = error_response(InternalFailure("An internal failure occurred. Please try again."), request_id)
    _log(endpoint, request_id, response, started, outcome)
    return response


def error_response(error: RuntimeApiError, request_id: str) -> Response:
    return Response(
        json.dumps({"Message": error.message, **error.members}),
        status_code=error.status,
        media_type="application/json",
        headers={REQUEST_ID: request_id, ERROR_TYPE: error.shape + ERROR_TYPE_SUFFIX},
    )


def model_message(endpoint: str, result: ContainerResponse) -> str:
    """The message of a model's error answer; the traceback the toolkit appends goes to the endpoint's log."""
    message, trace = result.error_parts()
    if trace is not None:
        log.warning(
            "/aws/sagemaker/Endpoints/%s %s/local the model answered %d:\n%s", endpoint, VARIANT, result.status, trace
        )
    return message


def _log(endpoint: str, request_id: str, response: Response, started: float, outcome: Outcome) -> None:
    total_ms = (time.perf_counter() - started) * 1000
    fields = {
        "requestId": request_id,
        "endpoint": endpoint,
        "variant": VARIANT,
        "target": outcome.target,
        "status": response.status_code,
        "errorType": response.headers.get(ERROR_TYPE, "").split(":", 1)[0] or None,
        "latencyMs": round(total_ms, 3),
        "modelLatencyMs": None if outcome.model_ms is None else round(outcome.model_ms, 3),
        "modelLoadMs": None if outcome.load_ms is None else round(outcome.load_ms, 3),
    }
    log.info("/aws/sagemaker/Endpoints/%s %s/local %s", endpoint, VARIANT, json.dumps(fields))
