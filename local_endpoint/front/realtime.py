"""InvokeEndpoint, ``POST /endpoints/{name}/invocations``: checked as SageMaker checks it, then answered by the
handler of the endpoint's hosting mode. A 2xx from the model passes through with SageMaker's headers; any other
answer becomes a 424 ModelError carrying the model's status and message."""

from __future__ import annotations

import asyncio
import functools
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from creative_scoring.artifacts.archive import UnsafeArchive
from creative_scoring.config import (
    AsyncConfig,
    EndpointConfig,
    InferenceComponentsConfig,
    MultiModelConfig,
    ServerlessConfig,
)
from local_endpoint.container import ContainerResponse
from local_endpoint.errors import TIMEOUT_MESSAGE, ModelError, Throttling, ValidationError
from local_endpoint.front.request_log import Outcome, answer, model_message
from local_endpoint.front.state import Front, front_of
from local_endpoint.headers import (
    FORWARDED,
    INFERENCE_COMPONENT,
    INVOKED_VARIANT,
    REQUEST_ID,
    TARGET_MODEL,
    VARIANT,
    Headers,
    check_headers,
    check_target_variant,
)
from local_endpoint.models import LoadFailed
from local_endpoint.settings import LocalEndpoint


@dataclass(frozen=True)
class Invocation:
    """One InvokeEndpoint request, read and checked; its handler fills in ``outcome``."""

    endpoint: LocalEndpoint
    headers: Headers
    body: bytes
    request_id: str
    outcome: Outcome

    @property
    def forwarded(self) -> dict[str, str]:
        return {k: self.headers[k] for k in FORWARDED if k in self.headers}


async def invoke_endpoint(request: Request) -> Response:
    return await answer(request.path_params["name"], functools.partial(_invoke, front_of(request), request))


async def _invoke(front: Front, request: Request, request_id: str, outcome: Outcome) -> Response:
    endpoint = front.endpoint(request.path_params["name"])
    check_headers(request.headers)
    check_target_variant(request.headers, endpoint.name)
    body = await request.body()
    if len(body) > endpoint.max_body_bytes:
        raise ValidationError(f"Request {request_id} has oversize body.")
    result = await _HOSTING[endpoint.mode](front, Invocation(endpoint, request.headers, body, request_id, outcome))
    if not result.ok:
        raise _model_error(front, endpoint, result)
    reply = {INVOKED_VARIANT: VARIANT, REQUEST_ID: request_id, **result.headers}
    return Response(result.body, 200, headers=reply, media_type=result.content_type)


async def _multi_model(front: Front, call: Invocation) -> ContainerResponse:
    """``TargetModel`` names an archive of the models folder, loaded through the endpoint's cache."""
    if INFERENCE_COMPONENT in call.headers:
        raise ValidationError(f"Endpoint {call.endpoint.name} does not host inference components.")
    target = call.headers.get(TARGET_MODEL)
    if not target:
        raise ValidationError(f"Request {call.request_id} is missing a target model header.")
    call.outcome.target = target
    try:
        async with front.models.use(call.endpoint.name, target, cache_enabled=call.endpoint.cache_enabled) as (
            model,
            load_ms,
        ):
            call.outcome.load_ms = load_ms
            return await _call(front, model, call)
    except LoadFailed as e:
        return e.response
    except (UnsafeArchive, tarfile.TarError) as e:
        raise ValidationError(f"The archive of target model {target} cannot be used: {e}") from e


async def _inference_component(front: Front, call: Invocation) -> ContainerResponse:
    """``InferenceComponentName`` names one of the endpoint's components, each loaded at start."""
    endpoint = call.endpoint
    if TARGET_MODEL in call.headers:
        raise ValidationError(
            f"Endpoint {endpoint.name} is not a multi-model endpoint and does not support target model header."
        )
    component = call.headers.get(INFERENCE_COMPONENT)
    if not component:
        raise ValidationError(
            "Inference Component Name header is required for endpoints to which you plan to deploy inference "
            f"components. Endpoint {endpoint.name} hosts: {sorted(endpoint.components)}."
        )
    if component not in endpoint.components:
        raise ValidationError(f"Inference Component {component} does not exist on endpoint {endpoint.name}.")
    archive = front.live_archive(endpoint, component)
    call.outcome.target = component
    return await _call_pinned(front, component, call, archive)


async def _serverless(front: Front, call: Invocation) -> ContainerResponse:
    """The endpoint's one model, at most ``MaxConcurrency`` invocations at a time; over it, a throttling error."""
    endpoint = call.endpoint
    if TARGET_MODEL in call.headers or INFERENCE_COMPONENT in call.headers:
        raise ValidationError(
            f"Endpoint {endpoint.name} is a serverless endpoint with one model; remove "
            f"{TARGET_MODEL if TARGET_MODEL in call.headers else INFERENCE_COMPONENT}."
        )
    limit = endpoint.max_concurrency or 1
    if front.in_flight.get(endpoint.name, 0) >= limit:
        raise Throttling(f"Rate exceeded: serverless endpoint {endpoint.name} allows {limit} concurrent invocations.")
    front.in_flight[endpoint.name] = front.in_flight.get(endpoint.name, 0) + 1
    try:
        call.outcome.target = endpoint.model_archive
        return await _call_pinned(front, endpoint.name, call)
    finally:
        front.in_flight[endpoint.name] -= 1


async def _asynchronous(front: Front, call: Invocation) -> ContainerResponse:
    raise ValidationError(f"Endpoint {call.endpoint.name} is an asynchronous endpoint; call InvokeEndpointAsync.")


_HOSTING: dict[type[EndpointConfig], Callable[[Front, Invocation], Awaitable[ContainerResponse]]] = {
    MultiModelConfig: _multi_model,
    InferenceComponentsConfig: _inference_component,
    ServerlessConfig: _serverless,
    AsyncConfig: _asynchronous,
}


async def _call_pinned(front: Front, model: str, call: Invocation, archive: str | None = None) -> ContainerResponse:
    try:
        await front.models.pinned(model, archive)
    except LoadFailed as e:
        return e.response
    except (UnsafeArchive, tarfile.TarError) as e:
        raise ValidationError(f"The archive of model {model} cannot be used: {e}") from e
    return await _call(front, model, call)


async def _call(front: Front, model: str, call: Invocation) -> ContainerResponse:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(front.settings.invocation_timeout_s):  # SageMaker's 60 s limit
            return await front.models.container.invoke(model, call.body, call.forwarded)
    except TimeoutError:
        return ContainerResponse(0, TIMEOUT_MESSAGE.encode())
    finally:
        call.outcome.model_ms = (time.perf_counter() - started) * 1000


def _model_error(front: Front, endpoint: LocalEndpoint, result: ContainerResponse) -> ModelError:
    settings = front.settings
    group = f"/aws/sagemaker/Endpoints/{endpoint.name}"
    return ModelError(
        original_status=result.status,
        original_message=model_message(endpoint.name, result),
        log_stream_arn=f"arn:aws:logs:{settings.region}:{settings.account}:log-group:{group}",
        log_url=f"http://{settings.host}:{settings.port}/_local/endpoints in account {settings.account}",
    )
