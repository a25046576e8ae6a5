"""The model servers a front can drive, each opened and closed with the front's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from creative_scoring.net import free_port
from local_endpoint.container import Container, EmbeddedContainer, HttpContainer
from local_endpoint.settings import Settings


@asynccontextmanager
async def open_container(settings: Settings) -> AsyncIterator[Container]:
    """``embedded``: in-process; ``real-stack``: Multi Model Server + toolkit; ``container``: a server at a URL."""
    container: Container
    if settings.backend == "embedded":
        container = EmbeddedContainer(workers_per_model=settings.workers_per_model)
        try:
            yield container
        finally:
            await container.close()
    elif settings.backend == "real-stack":
        from local_endpoint.real_stack import RealStackServer

        server = RealStackServer(workdir=settings.workdir / "real-stack", port=free_port())
        url = await anyio.to_thread.run_sync(server.start)
        container = HttpContainer(url)
        try:
            yield container
        finally:
            await container.close()
            await anyio.to_thread.run_sync(server.stop)
    else:
        assert settings.container_url is not None
        container = HttpContainer(settings.container_url)
        try:
            yield container
        finally:
            await container.close()
