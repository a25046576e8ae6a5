"""InvokeEndpointAsync, ``POST /endpoints/{name}/async-invocations``: the request is checked, stored, and answered
202 with its output and failure locations; `call_model` is how the async workers then invoke the model."""

from __future__ import annotations

import functools
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from local_endpoint.async_inference import DEFAULT_TIMEOUT_S, DEFAULT_TTL_S, AsyncRequest, new_inference_id
from local_endpoint.container import ContainerUnavailable
from local_endpoint.errors import ModelNotReady, RuntimeApiError, ValidationError
from local_endpoint.front.request_log import Outcome, answer, log, model_message
from local_endpoint.front.state import Front, front_of
from local_endpoint.headers import (
    ASYNC_ACCEPT,
    ASYNC_CONTENT_TYPE,
    CUSTOM_ATTRIBUTES,
    FAILURE_LOCATION,
    INFERENCE_ID,
    INVOCATION_TIMEOUT,
    OUTPUT_LOCATION,
    REQUEST_ID,
    TTL,
    Headers,
    check_headers,
    filename,
    input_location,
    output_extension,
    seconds,
)
from local_endpoint.models import LoadFailed, ModelManager
from local_endpoint.settings import Settings


async def invoke_endpoint_async(request: Request) -> Response:
    return await answer(request.path_params["name"], functools.partial(_accept, front_of(request), request))


async def _accept(front: Front, request: Request, request_id: str, outcome: Outcome) -> Response:
    endpoint = front.endpoint(request.path_params["name"])
    if not endpoint.is_async or front.async_service is None:
        raise ValidationError(f"Endpoint {endpoint.name} is not an asynchronous endpoint; call InvokeEndpoint.")
    check_headers(request.headers)
    accepted = _async_request(front.settings, endpoint.name, request.headers)
    front.async_service.submit(accepted)
    outcome.target = accepted.input_location
    reply = {
        REQUEST_ID: request_id,
        OUTPUT_LOCATION: accepted.output_location,
        FAILURE_LOCATION: accepted.failure_location,
    }
    return JSONResponse({"InferenceId": accepted.inference_id}, status_code=202, headers=reply)


def _async_request(settings: Settings, endpoint: str, headers: Headers) -> AsyncRequest:
    """The request to store, its output and failure locations fixed now."""
    location = input_location(headers)
    inference_id = headers.get(INFERENCE_ID) or new_inference_id()
    output = filename(headers) or f"{inference_id}.out"
    extension = output_extension(headers)
    return AsyncRequest(
        inference_id=inference_id,
        endpoint=endpoint,
        input_location=location,
        content_type=headers.get(ASYNC_CONTENT_TYPE),
        accept=headers.get(ASYNC_ACCEPT),
        custom_attributes=headers.get(CUSTOM_ATTRIBUTES),
        output_location=settings.async_location(
            endpoint, "output", f"{extension.strip('/') + '/' if extension else ''}{output}"
        ),
        failure_location=settings.async_location(endpoint, "failures", f"{inference_id}-error.out"),
        received_at=time.time(),
        ttl_s=seconds(headers, TTL, 60, 21_600, DEFAULT_TTL_S),
        timeout_s=seconds(headers, INVOCATION_TIMEOUT, 1, 3600, DEFAULT_TIMEOUT_S),
    )


async def call_model(
    models: ModelManager, model: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, str | None]:
    """An async worker's invocation of ``model``: its status, body (an error's message) and content type."""
    try:
        while True:  # the caller's InvocationTimeoutSeconds bounds the wait for a slow load
            try:
                await models.pinned(model)
                break
            except ModelNotReady:
                continue
        result = await models.container.invoke(model, body, headers)
    except LoadFailed as e:
        result = e.response
    except ContainerUnavailable:
        return 503, b"The model server is unavailable.", None
    except RuntimeApiError as e:
        return e.status, e.message.encode(), None
    except Exception as e:  # an async request must settle, never loop on an error of this process
        log.exception("asynchronous invocation of %s failed inside the local endpoint", model)
        return 500, f"An internal failure occurred: {type(e).__name__}.".encode(), None
    message = result.body if result.ok else model_message(model, result).encode()
    return result.status, message, result.content_type
