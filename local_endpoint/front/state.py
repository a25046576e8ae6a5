"""What the routes of one running front share: the app's lifespan makes it, and each request finds it in its state."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from starlette.requests import Request

from creative_scoring.artifacts.published import SUFFIX
from local_endpoint.async_inference import AsyncService
from local_endpoint.errors import ValidationError
from local_endpoint.headers import check_endpoint_name
from local_endpoint.models import ModelManager
from local_endpoint.settings import LocalEndpoint, Settings

log = logging.getLogger(__name__)


@dataclass
class Front:
    settings: Settings
    models: ModelManager
    async_service: AsyncService | None = None  # None when no endpoint is asynchronous
    in_flight: dict[str, int] = field(default_factory=dict)  # serverless invocations under way, per endpoint
    live: dict[str, tuple[int, str]] = field(default_factory=dict)  # component -> (record mtime, live archive)

    def live_archive(self, endpoint: LocalEndpoint, component: str) -> str:
        """The archive ``component`` serves: the version put live on it, or the one cdk.json names. The record
        is read again only when its modification time changes (one stat per invocation)."""
        pin = self.settings.pins_dir / f"{component}.json"
        try:
            modified = pin.stat().st_mtime_ns
        except FileNotFoundError:
            return endpoint.components[component]
        if (known := self.live.get(component)) is not None and known[0] == modified:
            return known[1]
        try:
            archive = f"{json.loads(pin.read_bytes())['version']}{SUFFIX}"
        except (OSError, ValueError, KeyError) as e:  # a record this front cannot read: keep serving, say why
            log.warning("ignoring %s (%s): %s keeps its archive", pin, e, component)
            return endpoint.components[component]
        self.live[component] = (modified, archive)
        return archive

    def endpoint(self, name: str) -> LocalEndpoint:
        """The endpoint called ``name``; a `ValidationError` when the name is malformed or unknown."""
        check_endpoint_name(name)
        endpoint = self.settings.endpoint(name)
        if endpoint is None:
            raise ValidationError(f"Endpoint {name} of account {self.settings.account} not found.")
        return endpoint


def front_of(request: Request) -> Front:
    front: Front = request.state.front
    return front
