"""The runtime API front: what the AWS SDKs talk to, copying SageMaker's wire contract.

``POST /endpoints/{name}/invocations`` validates the request as SageMaker does, routes it to a model in the
container (``TargetModel`` on a multi-model endpoint, ``InferenceComponentName`` on an inference-component
endpoint), and rewrites the container's answer: 2xx passes through with SageMaker's headers, 4xx and 5xx
become a 424 ModelError carrying the container's status and message. ``GET /_local/endpoints`` lists the
endpoints and the models loaded in them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from creative_scoring.artifacts.archive import UnsafeArchive
from local_endpoint.async_inference import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TTL_S,
    AsyncRequest,
    AsyncService,
    new_inference_id,
)
from local_endpoint.container import CUSTOM_ATTRIBUTES, TARGET_MODEL, Container, ContainerResponse, ContainerUnavailable
from local_endpoint.errors import (
    TIMEOUT_MESSAGE,
    InternalFailure,
    ModelError,
    ModelNotReady,
    RuntimeApiError,
    ServiceUnavailable,
    Throttling,
    ValidationError,
)
from local_endpoint.models import LoadFailed, ModelManager
from local_endpoint.settings import LocalEndpoint, Settings

VARIANT = "AllTraffic"
INFERENCE_COMPONENT = "X-Amzn-SageMaker-Inference-Component"
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INFERENCE_ID = "X-Amzn-SageMaker-Inference-Id"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_COMPONENT = re.compile(r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$")
INPUT_LOCATION = "X-Amzn-SageMaker-InputLocation"
ASYNC_CONTENT_TYPE = "X-Amzn-SageMaker-Content-Type"
ASYNC_ACCEPT = "X-Amzn-SageMaker-Accept"
TTL = "X-Amzn-SageMaker-RequestTTLSeconds"
INVOCATION_TIMEOUT = "X-Amzn-SageMaker-InvocationTimeoutSeconds"
FILENAME = "X-Amzn-SageMaker-Filename"
OUTPUT_EXTENSION = "X-Amzn-SageMaker-S3OutputPathExtension"
_FILENAME = re.compile(r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$")
_EXTENSION = re.compile(r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$")

log = logging.getLogger("local_endpoint.requests")
ContainerFactory = Callable[[Settings], AbstractAsyncContextManager[Container]]


@dataclass
class _Outcome:
    target: str | None = None
    model_ms: float | None = None
    load_ms: float | None = None


class Front:
    """State of one running front: its settings, its container and the multi-model cache."""

    def __init__(
        self, settings: Settings, open_container: ContainerFactory, on_ready: Callable[[str | None], None] | None = None
    ) -> None:
        self.settings = settings
        self.open_container = open_container
        self.on_ready = on_ready
        self.models: ModelManager | None = None
        self.async_service: AsyncService | None = None
        self._in_flight: dict[str, int] = {}

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.open_container(self.settings) as container:
            self.models = ModelManager(
                container,
                models_dir=self.settings.models_dir,
                workdir=self.settings.workdir,
                container_models_path=self.settings.container_models_path,
                budget_bytes=self.settings.cache_budget_bytes,
                load_timeout_s=self.settings.load_timeout_s,
            )
            for endpoint in self.settings.endpoints:
                for name, archive in endpoint.preloads().items():
                    try:
                        await self.models.preload(endpoint.name, name, archive)
                    except Exception as e:  # one broken model must not take the other endpoints down
                        log.error(
                            "endpoint %s: %s did not load (%s); its next invocation loads it again",
                            endpoint.name,
                            archive,
                            e,
                        )
            self.async_service = await self._start_async()
            try:
                if self.on_ready:  # told where async inputs and outputs live, when any endpoint is async
                    self.on_ready(self.async_service.s3_endpoint_url if self.async_service else None)
                yield
            finally:
                if self.async_service is not None:
                    await self.async_service.stop()

    async def _start_async(self) -> AsyncService | None:
        endpoints = [e for e in self.settings.endpoints if e.is_async]
        if not endpoints:
            return None
        service = await anyio.to_thread.run_sync(
            functools.partial(
                AsyncService,
                state_dir=self.settings.state_dir,
                s3_endpoint_url=self.settings.s3_endpoint_url,
                bucket=self.settings.async_bucket,
                region=self.settings.region,
                max_input_bytes=self.settings.async_max_input_bytes,
            )
        )
        for endpoint in endpoints:
            service.start_worker(
                endpoint.name,
                concurrency=endpoint.max_concurrency or 1,
                invoke=functools.partial(self._call_for_async, endpoint.name),
                include_response=endpoint.include_response,
            )
        return service

    async def _call_for_async(self, model: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        assert self.models is not None
        try:
            while True:  # the caller's InvocationTimeoutSeconds bounds the wait for a slow load
                try:
                    await self.models.pinned(model)
                    break
                except ModelNotReady:
                    continue
            result = await self.models.container.invoke(model, body, headers)
        except LoadFailed as e:
            result = e.response
        except ContainerUnavailable:
            return 503, b"The model server is unavailable.", None
        except RuntimeApiError as e:
            return e.status, e.message.encode(), None
        except Exception as e:  # an async request must settle, never loop on an error of this process
            log.exception("asynchronous invocation of %s failed inside the local endpoint", model)
            return 500, f"An internal failure occurred: {type(e).__name__}.".encode(), None
        message = result.body if result.ok else _model_message(model, result).encode()
        return result.status, message, result.content_type

    async def invoke(self, request: Request) -> Response:
        request_id, started, outcome = str(uuid.uuid4()), time.perf_counter(), _Outcome()
        name = request.path_params["name"]
        try:
            response = await self._invoke(request, name, request_id, outcome)
        except ClientDisconnect:  # the client's event, not the endpoint's: nothing to answer, nothing went wrong
            log.info("request %s to %s: the client disconnected before its body arrived", request_id, name)
            return Response(status_code=400)
        except RuntimeApiError as e:
            response = e.response(request_id)
        except ContainerUnavailable:
            response = ServiceUnavailable("The model server is unavailable. Please try again later.").response(
                request_id
            )
        except Exception:
            log.exception("request %s failed inside the local endpoint", request_id)
            response = InternalFailure("An internal failure occurred. Please try again.").response(request_id)
        _log(name, request_id, response, started, outcome)
        return response

    async def _invoke(self, request: Request, name: str, request_id: str, outcome: _Outcome) -> Response:
        endpoint = self._endpoint(name)
        headers = request.headers
        _check_headers(headers)
        variant = headers.get(TARGET_VARIANT)
        if variant is not None and variant != VARIANT:
            raise ValidationError(f"Variant {variant} does not exist for endpoint {name}; its variant is {VARIANT}.")
        body = await request.body()
        if len(body) > endpoint.max_body_bytes:
            raise ValidationError(f"Request {request_id} has oversize body.")
        forwarded = {k: headers[k] for k in ("content-type", "accept", CUSTOM_ATTRIBUTES, TARGET_MODEL) if k in headers}
        if endpoint.is_async:
            raise ValidationError(f"Endpoint {name} is an asynchronous endpoint; call InvokeEndpointAsync.")
        if endpoint.multi_model:
            result = await self._multi_model(endpoint, headers, body, forwarded, request_id, outcome)
        elif endpoint.is_serverless:
            result = await self._serverless(endpoint, headers, body, forwarded, outcome)
        else:
            result = await self._component(endpoint, headers, body, forwarded, outcome)
        if not result.ok:
            raise self._model_error(endpoint, result)
        reply = {"x-Amzn-Invoked-Production-Variant": VARIANT, "x-amzn-RequestId": request_id, **result.headers}
        return Response(result.body, 200, headers=reply, media_type=result.content_type)

    def _endpoint(self, name: str) -> LocalEndpoint:
        if len(name) > 63 or not _NAME.match(name):
            raise ValidationError(
                f"1 validation error detected: Value '{name}' at 'endpointName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
            )
        endpoint = self.settings.endpoint(name)
        if endpoint is None:
            raise ValidationError(f"Endpoint {name} of account {self.settings.account} not found.")
        return endpoint

    async def _multi_model(
        self,
        endpoint: LocalEndpoint,
        headers: Any,
        body: bytes,
        forwarded: dict[str, str],
        request_id: str,
        outcome: _Outcome,
    ) -> ContainerResponse:
        if INFERENCE_COMPONENT in headers:
            raise ValidationError(f"Endpoint {endpoint.name} does not host inference components.")
        target = headers.get(TARGET_MODEL)
        if not target:
            raise ValidationError(f"Request {request_id} is missing a target model header.")
        outcome.target = target
        assert self.models is not None
        try:
            async with self.models.use(endpoint.name, target, cache_enabled=endpoint.cache_enabled) as (
                model,
                load_ms,
            ):
                outcome.load_ms = load_ms
                return await self._call(model, body, forwarded, outcome)
        except LoadFailed as e:
            return e.response
        except (UnsafeArchive, tarfile.TarError) as e:
            raise ValidationError(f"The archive of target model {target} cannot be used: {e}") from e

    async def _component(
        self, endpoint: LocalEndpoint, headers: Any, body: bytes, forwarded: dict[str, str], outcome: _Outcome
    ) -> ContainerResponse:
        if TARGET_MODEL in headers:
            raise ValidationError(
                f"Endpoint {endpoint.name} is not a multi-model endpoint and does not support target model header."
            )
        component = headers.get(INFERENCE_COMPONENT)
        if not component:
            raise ValidationError(
                "Inference Component Name header is required for endpoints to which you plan to deploy inference "
                f"components. Endpoint {endpoint.name} hosts: {sorted(endpoint.components)}."
            )
        if component not in endpoint.components:
            raise ValidationError(f"Inference Component {component} does not exist on endpoint {endpoint.name}.")
        outcome.target = component
        return await self._call_pinned(component, body, forwarded, outcome)

    async def _serverless(
        self, endpoint: LocalEndpoint, headers: Any, body: bytes, forwarded: dict[str, str], outcome: _Outcome
    ) -> ContainerResponse:
        if TARGET_MODEL in headers or INFERENCE_COMPONENT in headers:
            raise ValidationError(
                f"Endpoint {endpoint.name} is a serverless endpoint with one model; remove "
                f"{TARGET_MODEL if TARGET_MODEL in headers else INFERENCE_COMPONENT}."
            )
        limit = endpoint.max_concurrency or 1
        if self._in_flight.get(endpoint.name, 0) >= limit:
            raise Throttling(
                f"Rate exceeded: serverless endpoint {endpoint.name} allows {limit} concurrent invocations."
            )
        self._in_flight[endpoint.name] = self._in_flight.get(endpoint.name, 0) + 1
        try:
            outcome.target = endpoint.model_archive
            return await self._call_pinned(endpoint.name, body, forwarded, outcome)
        finally:
            self._in_flight[endpoint.name] -= 1

    async def invoke_async(self, request: Request) -> Response:
        request_id, started, outcome = str(uuid.uuid4()), time.perf_counter(), _Outcome()
        name = request.path_params["name"]
        try:
            response = self._accept_async(request, name, request_id, outcome)
        except RuntimeApiError as e:
            response = e.response(request_id)
        except Exception:
            log.exception("request %s failed inside the local endpoint", request_id)
            response = InternalFailure("An internal failure occurred. Please try again.").response(request_id)
        _log(name, request_id, response, started, outcome)
        return response

    def _accept_async(self, request: Request, name: str, request_id: str, outcome: _Outcome) -> Response:
        endpoint = self._endpoint(name)
        if not endpoint.is_async or self.async_service is None:
            raise ValidationError(f"Endpoint {name} is not an asynchronous endpoint; call InvokeEndpoint.")
        headers = request.headers
        _check_headers(headers)
        location = headers.get(INPUT_LOCATION)
        if not location or not location.startswith("s3://") or len(location) > 1024:
            raise ValidationError(f"{INPUT_LOCATION} must be an s3://bucket/key URI of at most 1024 characters.")
        for header in (ASYNC_CONTENT_TYPE, ASYNC_ACCEPT):
            if len(headers.get(header, "")) > 1024:
                raise ValidationError(f"{header} must be at most 1024 characters.")
        inference_id = headers.get(INFERENCE_ID) or new_inference_id()
        filename = _pattern_header(headers, FILENAME, _FILENAME, 32) or f"{inference_id}.out"
        extension = _pattern_header(headers, OUTPUT_EXTENSION, _EXTENSION, 512)
        accepted = AsyncRequest(
            inference_id=inference_id,
            endpoint=name,
            input_location=location,
            content_type=headers.get(ASYNC_CONTENT_TYPE),
            accept=headers.get(ASYNC_ACCEPT),
            custom_attributes=headers.get(CUSTOM_ATTRIBUTES),
            output_location=self.settings.async_location(
                name, "output", f"{extension.strip('/') + '/' if extension else ''}{filename}"
            ),
            failure_location=self.settings.async_location(name, "failures", f"{inference_id}-error.out"),
            received_at=time.time(),
            ttl_s=_int_header(headers, TTL, 60, 21_600, DEFAULT_TTL_S),
            timeout_s=_int_header(headers, INVOCATION_TIMEOUT, 1, 3600, DEFAULT_TIMEOUT_S),
        )
        self.async_service.submit(accepted)
        outcome.target = location
        reply = {
            "x-amzn-RequestId": request_id,
            "X-Amzn-SageMaker-OutputLocation": accepted.output_location,
            "X-Amzn-SageMaker-FailureLocation": accepted.failure_location,
        }
        return JSONResponse({"InferenceId": inference_id}, status_code=202, headers=reply)

    async def _call_pinned(
        self, model: str, body: bytes, headers: dict[str, str], outcome: _Outcome
    ) -> ContainerResponse:
        assert self.models is not None
        try:
            await self.models.pinned(model)
        except LoadFailed as e:
            return e.response
        except (UnsafeArchive, tarfile.TarError) as e:
            raise ValidationError(f"The archive of model {model} cannot be used: {e}") from e
        return await self._call(model, body, headers, outcome)

    async def _call(self, model: str, body: bytes, headers: dict[str, str], outcome: _Outcome) -> ContainerResponse:
        assert self.models is not None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.invocation_timeout_s):  # SageMaker's 60 s limit
                return await self.models.container.invoke(model, body, headers)
        except TimeoutError:
            return ContainerResponse(0, TIMEOUT_MESSAGE.encode())
        finally:
            outcome.model_ms = (time.perf_counter() - started) * 1000

    def _model_error(self, endpoint: LocalEndpoint, result: ContainerResponse) -> ModelError:
        region, account = self.settings.region, self.settings.account
        group = f"/aws/sagemaker/Endpoints/{endpoint.name}"
        return ModelError(
            original_status=result.status,
            original_message=_model_message(endpoint.name, result),
            log_stream_arn=f"arn:aws:logs:{region}:{account}:log-group:{group}",
            log_url=f"http://{self.settings.host}:{self.settings.port}/_local/endpoints in account {account}",
        )

    async def describe(self, request: Request) -> Response:
        loaded = self.models.describe() if self.models else []
        return JSONResponse(
            {
                "environment": self.settings.environment,
                "backend": self.settings.backend,
                "cache_budget_bytes": self.settings.cache_budget_bytes,
                "endpoints": [
                    {
                        "name": e.name,
                        "hosting": e.kind,
                        "async": self.async_service.describe(e.name) if e.is_async and self.async_service else None,
                        "variant": VARIANT,
                        "inference_components": sorted(e.components),
                        "model_cache": e.cache_enabled,
                    }
                    for e in self.settings.endpoints
                ],
                "loaded_models": loaded,
            }
        )


def _model_message(endpoint: str, result: ContainerResponse) -> str:
    """The message of a model's error answer; the traceback the toolkit appends goes to the endpoint's log."""
    message, trace = result.error_parts()
    if trace is not None:
        log.warning(
            "/aws/sagemaker/Endpoints/%s %s/local the model answered %d:\n%s", endpoint, VARIANT, result.status, trace
        )
    return message


def _int_header(headers: Any, name: str, low: int, high: int, default: int) -> int:
    value = headers.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValidationError(f"{name} must be a whole number of seconds from {low} to {high}, got {value!r}.")
    return int(value)


def _pattern_header(headers: Any, name: str, pattern: re.Pattern[str], limit: int) -> str | None:
    value = headers.get(name)
    if value is not None and (len(value) > limit or not pattern.match(value)):
        raise ValidationError(f"{name} {value!r} does not match {pattern.pattern} (at most {limit} characters).")
    return str(value) if value is not None else None


def _check_headers(headers: Any) -> None:
    """What botocore does not validate client-side and SageMaker rejects (lengths, patterns)."""
    for header, limit in ((TARGET_MODEL, 1024), (INFERENCE_ID, 64)):
        value = headers.get(header)
        if value is not None and (
            not value or len(value) > limit or value[0].isspace() or not (value.isascii() and value.isprintable())
        ):  # SageMaker's pattern \A\S[\p{Print}]*\z is Java's: \p{Print} is printable ASCII
            raise ValidationError(
                f"{header} must be 1 to {limit} printable ASCII characters, not starting with a space."
            )
    attributes = headers.get(CUSTOM_ATTRIBUTES)
    if attributes is not None and (len(attributes) > 1024 or not attributes.isascii()):
        raise ValidationError(f"{CUSTOM_ATTRIBUTES} must be at most 1024 ASCII characters.")
    component = headers.get(INFERENCE_COMPONENT)
    if component is not None and (len(component) > 63 or not _COMPONENT.match(component)):
        raise ValidationError(f"{INFERENCE_COMPONENT} {component!r} is not a valid inference component name.")


def _log(name: str, request_id: str, response: Response, started: float, outcome: _Outcome) -> None:
    total_ms = (time.perf_counter() - started) * 1000
    fields = {
        "requestId": request_id,
        "endpoint": name,
        "variant": VARIANT,
        "target": outcome.target,
        "status": response.status_code,
        "errorType": response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0] or None,
        "latencyMs": round(total_ms, 3),
        "modelLatencyMs": None if outcome.model_ms is None else round(outcome.model_ms, 3),
        "modelLoadMs": None if outcome.load_ms is None else round(outcome.load_ms, 3),
    }
    log.info("/aws/sagemaker/Endpoints/%s %s/local %s", name, VARIANT, json.dumps(fields))


def create_app(
    settings: Settings, open_container: ContainerFactory, on_ready: Callable[[str | None], None] | None = None
) -> Starlette:
    """The front as an ASGI app; ``open_container`` starts and stops the model server behind it."""
    front = Front(settings, open_container, on_ready)

    async def ping(request: Request) -> Response:
        """Healthy only when the model server behind the front answers its own ping."""
        if front.models is not None and await front.models.container.ping():
            return JSONResponse({"status": "Healthy"})
        return JSONResponse({"status": "Unhealthy", "reason": "the model server does not answer"}, status_code=503)

    return Starlette(
        routes=[
            Route("/endpoints/{name}/invocations", front.invoke, methods=["POST"]),
            Route("/endpoints/{name}/async-invocations", front.invoke_async, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/_local/endpoints", front.describe, methods=["GET"]),
        ],
        lifespan=front.lifespan,
    )
