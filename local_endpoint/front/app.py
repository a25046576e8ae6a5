"""The front as an ASGI app: its routes, and its lifespan, which starts the model server behind it, loads the models
that load at start and runs the async workers."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local_endpoint.async_inference import AsyncService
from local_endpoint.container import Container
from local_endpoint.front.async_invoke import call_model, invoke_endpoint_async
from local_endpoint.front.realtime import invoke_endpoint
from local_endpoint.front.state import Front, front_of
from local_endpoint.headers import VARIANT
from local_endpoint.models import ModelManager
from local_endpoint.settings import Settings

ContainerFactory = Callable[[Settings], AbstractAsyncContextManager[Container]]
OnReady = Callable[[str | None], None]  # told the S3 endpoint of async inputs and outputs (None: no async endpoint)

log = logging.getLogger("local_endpoint.requests")


async def ping(request: Request) -> Response:
    """Healthy only when the model server behind the front answers its own ping."""
    if await front_of(request).models.container.ping():
        return JSONResponse({"status": "Healthy"})
    return JSONResponse({"status": "Unhealthy", "reason": "the model server does not answer"}, status_code=503)


async def describe(request: Request) -> Response:
    """The endpoints, and the models loaded in them."""
    front = front_of(request)
    settings, service = front.settings, front.async_service
    return JSONResponse(
        {
            "environment": settings.environment,
            "backend": settings.backend,
            "cache_budget_bytes": settings.cache_budget_bytes,
            "async_bucket": settings.async_bucket,
            "published_dir": str(settings.published_dir),
            "endpoints": [
                {
                    "name": e.name,
                    "hosting": e.kind,
                    "async": service.describe(e.name) if e.is_async and service else None,
                    "variant": VARIANT,
                    "inference_components": sorted(e.components),
                    "model_cache": e.cache_enabled,
                }
                for e in settings.endpoints
            ],
            "loaded_models": front.models.describe(),
        }
    )


ROUTES = [
    Route("/endpoints/{name}/invocations", invoke_endpoint, methods=["POST"]),
    Route("/endpoints/{name}/async-invocations", invoke_endpoint_async, methods=["POST"]),
    Route("/ping", ping, methods=["GET"]),
    Route("/_local/endpoints", describe, methods=["GET"]),
]


def create_app(settings: Settings, open_container: ContainerFactory, on_ready: OnReady | None = None) -> Starlette:
    """The front as an ASGI app; ``open_container`` starts and stops the model server behind it."""
    return Starlette(routes=ROUTES, lifespan=functools.partial(_lifespan, settings, open_container, on_ready))


@asynccontextmanager
async def _lifespan(
    settings: Settings, open_container: ContainerFactory, on_ready: OnReady | None, app: Starlette
) -> AsyncIterator[dict[str, Front]]:
    async with open_container(settings) as container:
        models = ModelManager(
            container,
            models_dir=settings.models_dir,
            published_dir=settings.published_dir,
            workdir=settings.workdir,
            container_models_path=settings.container_models_path,
            budget_bytes=settings.cache_budget_bytes,
            load_timeout_s=settings.load_timeout_s,
        )
        await _preload(settings, models)
        async_service = await _start_async(settings, models)
        try:
            if on_ready:
                on_ready(async_service.s3_endpoint_url if async_service else None)
            yield {"front": Front(settings, models, async_service)}  # each request's state
        finally:
            if async_service is not None:
                await async_service.stop()


async def _preload(settings: Settings, models: ModelManager) -> None:
    """Load the models that load at start: inference components, and the one model of the other pinned modes."""
    for endpoint in settings.endpoints:
        for name, archive in endpoint.preloads().items():
            try:
                await models.preload(endpoint.name, name, archive)
            except Exception as e:  # one broken model must not take the other endpoints down
                log.error(
                    "endpoint %s: %s did not load (%s); its next invocation loads it again", endpoint.name, archive, e
                )


async def _start_async(settings: Settings, models: ModelManager) -> AsyncService | None:
    """The async service with one worker per async endpoint; None when there is none."""
    endpoints = [e for e in settings.endpoints if e.is_async]
    if not endpoints:
        return None
    service = await anyio.to_thread.run_sync(
        functools.partial(
            AsyncService,
            state_dir=settings.state_dir,
            s3_endpoint_url=settings.s3_endpoint_url,
            bucket=settings.async_bucket,
            region=settings.region,
            max_input_bytes=settings.async_max_input_bytes,
        )
    )
    for endpoint in endpoints:
        service.start_worker(
            endpoint.name,
            concurrency=endpoint.max_concurrency or 1,
            invoke=functools.partial(call_model, models, endpoint.name),
            include_response=endpoint.include_response,
        )
    return service
