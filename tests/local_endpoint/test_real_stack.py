"""The committed archives served by the real stack: Multi Model Server with the SageMaker Inference Toolkit.

One server in multi-model mode, as a SageMaker multi-model endpoint's container runs, serves the module; every
archive is extracted to ``<tmp>/<name>/model`` and registered through ``POST /models``. Skipped when Java or the
packages of requirements-real-stack.txt are missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from creative_scoring.artifacts.archive import safe_extract
from creative_scoring.net import free_port
from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES
from local_endpoint.real_stack import RealStackServer, available
from tests.conftest import MANIFEST

REASON = available()
if REASON is not None:
    pytest.skip(REASON, allow_module_level=True)

JSON = "application/json"
GENERAL_MODELS = ["creative-scorer-v1", "creative-scorer-v2"]
SOCIAL_MODEL = "creative-scorer-social-v1"
CREATIVES = (SAMPLES / "creatives.json").read_bytes()


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, trust_env=False)  # trust_env: no proxy for 127.0.0.1


def _register(client: httpx.Client, name: str, model_dir: Path) -> httpx.Response:
    return client.post("/models", params={"model_name": name, "url": str(model_dir)})


def _invoke(client: httpx.Client, name: str, body: bytes = CREATIVES, content_type: str = JSON) -> httpx.Response:
    return client.post(f"/models/{name}/invoke", content=body, headers={"Content-Type": content_type})


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name ``text`` (the server's workdir is in Java's and the workers')."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every committed archive, extracted the way SageMaker does before it registers the model."""
    root = tmp_path_factory.mktemp("opt-ml-models")
    return {
        entry["name"]: safe_extract(MODEL_ARTIFACTS / entry["archive"], root / entry["name"] / "model")
        for entry in MANIFEST
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStackServer]:
    workdir = tmp_path_factory.mktemp("real-stack")
    with RealStackServer(workdir=workdir, port=free_port(), multi_model=True) as running:
        yield running
    assert _processes_mentioning(str(workdir)) == []


@pytest.fixture(scope="module")
def client(server: RealStackServer) -> Iterator[httpx.Client]:
    with _client(server.url) as c:
        yield c


@pytest.fixture(scope="module")
def registered(client: httpx.Client, model_dirs: dict[str, Path]) -> dict[str, Path]:
    """Every archive registered under its model name."""
    for name, model_dir in model_dirs.items():
        response = _register(client, name, model_dir)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "Workers scaled"}
    return model_dirs


def test_reference_models_are_all_present(model_dirs: dict[str, Path]) -> None:
    assert {*GENERAL_MODELS, SOCIAL_MODEL} <= set(model_dirs)


def test_ping_is_healthy(client: httpx.Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "Healthy"}


def test_server_binds_loopback_only(server: RealStackServer) -> None:
    properties = server.config_file.read_text()
    assert f"inference_address=http://127.0.0.1:{server.port}" in properties
    assert f"management_address=http://127.0.0.1:{server.port}" in properties
    assert "0.0.0.0" not in properties


@pytest.mark.parametrize("name", GENERAL_MODELS)
def test_invoke_scores_with_the_registered_archive(
    client: httpx.Client, registered: dict[str, Path], name: str
) -> None:
    response = _invoke(client, name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    predictions = response.json()["predictions"]
    instances: list[dict[str, Any]] = json.loads(CREATIVES)["instances"]
    assert isinstance(predictions, list)
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in instances]
    assert {p["model"] for p in predictions} == {name}
    assert all(0.0 <= p["score"] <= 1.0 for p in predictions)


def test_social_model_refuses_other_channels_with_400(client: httpx.Client, registered: dict[str, Path]) -> None:
    response = _invoke(client, SOCIAL_MODEL)
    assert response.status_code == 400
    assert response.text.startswith("instances[1].channel: creative-scorer-social-v1 scores channels ['social'] only")


def test_social_model_scores_social_creatives(client: httpx.Client, registered: dict[str, Path]) -> None:
    instances = [c for c in json.loads(CREATIVES)["instances"] if c["channel"] == "social"]
    response = _invoke(client, SOCIAL_MODEL, json.dumps({"instances": instances}).encode())
    assert response.status_code == 200, response.text
    assert {p["model"] for p in response.json()["predictions"]} == {SOCIAL_MODEL}


def test_unsupported_content_type_is_415_with_message_and_traceback(
    client: httpx.Client, registered: dict[str, Path]
) -> None:
    response = _invoke(client, "creative-scorer-v1", b"creative_id,headline\nc-1,hello\n", "text/csv")
    assert response.status_code == 415
    # The toolkit's Transformer.handle_error: the message, a newline, then the Python traceback; no content type.
    message, _, trace = response.text.partition("\n")
    assert message.startswith("Content-Type 'text/csv' is not supported")
    assert trace.startswith("Traceback (most recent call last):")
    assert "content-type" not in response.headers


def test_registering_the_same_name_twice_is_409(client: httpx.Client, registered: dict[str, Path]) -> None:
    response = _register(client, "creative-scorer-v1", registered["creative-scorer-v1"])
    assert response.status_code == 409
    assert response.json()["type"] == "ConflictStatusException"


def test_models_lists_the_registered_models(client: httpx.Client, registered: dict[str, Path]) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    listed = {m["modelName"]: m["modelUrl"] for m in response.json()["models"]}
    assert {name: str(model_dir) for name, model_dir in registered.items()}.items() <= listed.items()


def test_describe_model_shows_a_ready_worker(client: httpx.Client, registered: dict[str, Path]) -> None:
    response = client.get("/models/creative-scorer-v2")
    assert response.status_code == 200
    description = response.json()
    assert description["modelName"] == "creative-scorer-v2"
    assert [w["status"] for w in description["workers"]] == ["READY"]


def test_deleted_model_answers_404(client: httpx.Client, model_dirs: dict[str, Path]) -> None:
    name = "creative-scorer-v2-deleted"
    assert _register(client, name, model_dirs["creative-scorer-v2"]).status_code == 200
    assert _invoke(client, name).status_code == 200
    response = client.delete(f"/models/{name}")
    assert response.status_code == 200
    invoked = _invoke(client, name)
    assert invoked.status_code == 404
    assert invoked.json()["type"] == "ModelNotFoundException"
    assert client.get(f"/models/{name}").status_code == 404
    assert name not in {m["modelName"] for m in client.get("/models").json()["models"]}


def test_invoke_of_an_unknown_model_is_404(client: httpx.Client) -> None:
    assert _invoke(client, "no-such-model").status_code == 404


def test_invocations_needs_a_model_name_in_multi_model_mode(client: httpx.Client, registered: dict[str, Path]) -> None:
    # MMS does not read X-Amzn-SageMaker-Target-Model: SageMaker's front end routes to /models/{name}/invoke.
    response = client.post(
        "/invocations",
        content=CREATIVES,
        headers={"Content-Type": JSON, "X-Amzn-SageMaker-Target-Model": "creative-scorer-v1.tar.gz"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Parameter model_name is required."


def test_stop_ends_every_process_and_is_idempotent(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    server = RealStackServer(workdir=tmp_path / "stack", port=free_port())
    with server, _client(server.url) as c:
        assert _register(c, "creative-scorer-v1", model_dirs["creative-scorer-v1"]).status_code == 200
        assert len(_processes_mentioning(str(server.workdir))) >= 3  # Java, the worker launcher, its worker
    assert _processes_mentioning(str(server.workdir)) == []
    assert not server.running
    server.stop()
