"""The SageMaker container API, and two ways to reach a model server that speaks it.

Operations (those a multi-model container must implement; ``invoke`` with no name is ``/invocations``):
``ping``, ``load`` (``POST /models``), ``list_models`` (``GET /models``), ``unload`` (``DELETE /models/{name}``),
``invoke`` (``POST /models/{name}/invoke``). Statuses copy Multi Model Server: 409 for a second load of a
name, 404 for an unknown model or missing model folder, 507 when out of memory.

- `EmbeddedContainer`: the project's own model server, in the front's process, no Java and no Docker.
  Each model's ``code/inference.py`` is imported on its own, as each MMS worker process does, and runs with
  the inference toolkit's semantics (`HandlerChain`) in a worker thread.
- `HttpContainer`: any server on the container API over HTTP: Multi Model Server with the toolkit
  (`real_stack.py`), the production image under Docker, or `creative-scoring model-server`.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from local_endpoint.headers import CUSTOM_ATTRIBUTES

TRACEBACK = "\nTraceback (most recent call last):"  # what the toolkit puts between an error's message and trace

log = logging.getLogger("local_endpoint.model_server")


class ContainerUnavailable(Exception):
    """The model server could not be reached."""


@dataclass(frozen=True)
class ContainerResponse:
    status: int
    body: bytes
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_parts(self) -> tuple[str, str | None]:
        """An error answer's message, and the traceback the toolkit appends to it (None when there is none)."""
        message, separator, trace = self.body.decode("utf-8", "replace").partition(TRACEBACK)
        return message.strip(), (separator.lstrip("\n") + trace).rstrip() if separator else None

    def json(self) -> Any:
        return json.loads(self.body)


class Container(Protocol):
    async def ping(self) -> bool: ...
    async def load(self, name: str, url: str) -> ContainerResponse: ...
    async def unload(self, name: str) -> ContainerResponse: ...
    async def list_models(self) -> list[str]: ...
    async def invoke(self, name: str | None, body: bytes, headers: dict[str, str]) -> ContainerResponse: ...
    async def close(self) -> None: ...


def _error(status: int, kind: str, message: str) -> ContainerResponse:
    body = json.dumps({"code": status, "type": kind, "message": message}, indent=2) + "\n"
    return ContainerResponse(status, body.encode(), "application/json")


def _status(message: str) -> ContainerResponse:
    return ContainerResponse(200, json.dumps({"status": message}).encode(), "application/json")


class RequestContext:
    """The parts of the model server's context a handler may use: system properties and headers."""

    def __init__(self, model_dir: Path, request_headers: dict[str, str] | None = None) -> None:
        self.system_properties = {"model_dir": str(model_dir), "gpu_id": 0, "server_name": "local-endpoint"}
        self.request_headers = {k.lower(): v for k, v in (request_headers or {}).items()}
        self.response_headers: dict[str, str] = {}

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_headers.get(key.lower())

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers[key] = value


@dataclass
class _LoadedModel:
    url: Path
    chain: HandlerChain
    model: Any
    limiter: anyio.CapacityLimiter


class EmbeddedContainer:
    """An in-process model server implementing the container API."""

    _import_lock = threading.Lock()  # importing rewrites sys.modules and sys.path

    def __init__(self, *, workers_per_model: int = 2, default_accept: str = "application/json") -> None:
        self.workers_per_model = workers_per_model
        self.default_accept = default_accept
        self._models: dict[str, _LoadedModel] = {}

    async def ping(self) -> bool:
        return True

    async def load(self, name: str, url: str) -> ContainerResponse:
        if name in self._models:
            return _error(409, "ConflictStatusException", f"Model {name} is already registered.")
        path = Path(url)
        if not path.is_dir():
            return _error(404, "ModelNotFoundException", f"Model not found in model store: {url}")
        try:
            loaded = await anyio.to_thread.run_sync(self._load, path)
        except MemoryError:
            return _error(507, "ServiceUnavailableException", "System out of memory")
        except Exception as e:  # the user's model_fn or module failed: report it, register nothing
            log.exception("model %s failed to load from %s", name, url)  # the model server's log has it
            return _error(500, "ModelLoadException", f"{type(e).__name__}: {e}")
        if name in self._models:  # a concurrent load of the same name won
            return _error(409, "ConflictStatusException", f"Model {name} is already registered.")
        self._models[name] = loaded
        return _status("Workers scaled")

    def _load(self, path: Path) -> _LoadedModel:
        with self._import_lock:
            chain = HandlerChain(import_handler(path / "code"), default_accept=self.default_accept)
        model = chain.load(path, RequestContext(path))
        return _LoadedModel(path, chain, model, anyio.CapacityLimiter(self.workers_per_model))

    async def unload(self, name: str) -> ContainerResponse:
        if self._models.pop(name, None) is None:
            return _error(404, "ModelNotFoundException", f"Model not found: {name}")
        return _status(f'Model "{name}" unregistered')

    async def list_models(self) -> list[str]:
        return sorted(self._models)

    def model_url(self, name: str) -> str:
        return str(self._models[name].url)

    async def invoke(self, name: str | None, body: bytes, headers: dict[str, str]) -> ContainerResponse:
        if name is None:
            if len(self._models) != 1:
                return _error(400, "BadRequestException", "Parameter model_name is required.")
            name = next(iter(self._models))
        loaded = self._models.get(name)
        if loaded is None:
            return _error(404, "ModelNotFoundException", f"Model not found: {name}")
        lowered = {k.lower(): v for k, v in headers.items()}
        context = RequestContext(loaded.url, headers)
        try:
            result = await anyio.to_thread.run_sync(
                lambda: loaded.chain.invoke(
                    loaded.model, body, lowered.get("content-type"), lowered.get("accept"), context
                ),
                limiter=loaded.limiter,
            )
        except MemoryError:
            return _error(507, "ServiceUnavailableException", "Out of resources")
        return ContainerResponse(result.status, result.wire_body(), result.content_type, context.response_headers)

    async def close(self) -> None:
        self._models.clear()


class HttpContainer:
    """A model server reached over HTTP at ``base_url``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=None, limits=limits)

    async def _send(self, method: str, path: str, **kwargs: Any) -> ContainerResponse:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise ContainerUnavailable(f"model server at {self.base_url} is unreachable: {e}") from e
        headers = {k: v for k, v in response.headers.items() if k.lower() == CUSTOM_ATTRIBUTES.lower()}
        return ContainerResponse(response.status_code, response.content, response.headers.get("content-type"), headers)

    async def ping(self) -> bool:
        try:
            return (await self._send("GET", "/ping")).ok
        except ContainerUnavailable:
            return False

    async def load(self, name: str, url: str) -> ContainerResponse:
        return await self._send("POST", "/models", json={"model_name": name, "url": url})

    async def unload(self, name: str) -> ContainerResponse:
        return await self._send("DELETE", f"/models/{name}")

    async def list_models(self) -> list[str]:
        response = await self._send("GET", "/models")
        return sorted(m["modelName"] for m in response.json().get("models", [])) if response.ok else []

    async def invoke(self, name: str | None, body: bytes, headers: dict[str, str]) -> ContainerResponse:
        path = "/invocations" if name is None else f"/models/{name}/invoke"
        return await self._send("POST", path, content=body, headers=headers)

    async def close(self) -> None:
        await self._client.aclose()


def create_container_app(container: EmbeddedContainer) -> Starlette:
    """Serve an `EmbeddedContainer` over HTTP on the container API (``creative-scoring model-server``)."""

    def reply(result: ContainerResponse) -> Response:
        return Response(result.body, result.status, headers=result.headers, media_type=result.content_type)

    async def ping(request: Request) -> Response:
        return Response(json.dumps({"status": "Healthy"}, indent=2), media_type="application/json")

    async def models(request: Request) -> Response:
        if request.method == "GET":
            listed = [{"modelName": n, "modelUrl": container.model_url(n)} for n in await container.list_models()]
            return Response(json.dumps({"models": listed}), media_type="application/json")
        try:
            spec = await request.json()
            name, url = str(spec["model_name"]), str(spec["url"])
        except (ValueError, KeyError, TypeError):
            return reply(_error(400, "BadRequestException", 'Body must be {"model_name": ..., "url": ...}.'))
        return reply(await container.load(name, url))

    async def model(request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            return reply(await container.unload(name))
        if name not in await container.list_models():
            return reply(_error(404, "ModelNotFoundException", f"Model not found: {name}"))
        listed = {"modelName": name, "modelUrl": container.model_url(name)}
        return Response(json.dumps([listed]), media_type="application/json")

    async def invoke(request: Request) -> Response:
        name = request.path_params.get("name")
        return reply(await container.invoke(name, await request.body(), dict(request.headers)))

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/invocations", invoke, methods=["POST"]),
            Route("/models", models, methods=["GET", "POST"]),
            Route("/models/{name}", model, methods=["GET", "DELETE"]),
            Route("/models/{name}/invoke", invoke, methods=["POST"]),
        ]
    )
