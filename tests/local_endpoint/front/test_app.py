"""The front's app: its health check, its introspection route, and the models its lifespan loads at start."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, invoke_json

CREATIVES = (SAMPLES / "creatives.json").read_bytes()


def test_ping_is_healthy_only_while_the_model_server_answers(
    dev_server: LocalServer, unavailable_server: LocalServer
) -> None:
    with urllib.request.urlopen(f"{dev_server.url}/ping", timeout=10) as healthy:
        assert (healthy.status, json.load(healthy)["status"]) == (200, "Healthy")
    with pytest.raises(urllib.error.HTTPError) as unhealthy:
        urllib.request.urlopen(f"{unavailable_server.url}/ping", timeout=10)
    assert unhealthy.value.code == 503
    assert json.load(unhealthy.value)["status"] == "Unhealthy"


def test_introspection_lists_endpoints_and_loaded_models(dev: Any, dev_server: LocalServer) -> None:
    invoke_json(dev, DEV_ENDPOINT, "creative-scorer-v1.tar.gz")
    described = dev_server.describe()
    assert {e["name"]: e["hosting"] for e in described["endpoints"]} == {
        DEV_ENDPOINT: "multi-model",
        f"{DEV_ENDPOINT}-serverless": "serverless",
        f"{DEV_ENDPOINT}-async": "async",
    }
    v1 = [m for m in described["loaded_models"] if m["target"] == "creative-scorer-v1.tar.gz"]
    # The serverless endpoint's pinned copy and the multi-model cache's copy are separate models.
    assert sorted(m["pinned"] for m in v1) == [False, True]


def test_prod_components_and_the_async_model_are_loaded_at_start(prod_server: LocalServer) -> None:
    assert prod_server.loaded_targets() == [
        "creative-scorer-social-v1.tar.gz",
        "creative-scorer-v1.tar.gz",
        "creative-scorer-v2.tar.gz",  # an inference component of creative-scoring-prod
        "creative-scorer-v2.tar.gz",  # the one model of creative-scoring-prod-async
    ]
    assert all(m["pinned"] for m in prod_server.describe()["loaded_models"])
