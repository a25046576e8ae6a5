"""Multi-model behaviour: load on first use, once; LRU under a budget; Disabled cache; failures; new archives."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES
from tests.local_endpoint.conftest import LocalServer, copy_reference_archives, sagemaker_runtime, write_test_archive

_INSTANCES = json.loads((SAMPLES / "creatives.json").read_text())["instances"]
CREATIVES = json.dumps({"instances": [{**c, "channel": "social"} for c in _INSTANCES]}).encode()  # every model
CACHED, UNCACHED = "cache-test", "nocache-test"


def _config(path: Path) -> Path:
    endpoint = {"hosting": "multi-model", "instance_type": "ml.c5.xlarge"}
    environment = {
        "region": "us-east-1",
        "endpoints": [
            {**endpoint, "name": CACHED, "model_cache": "Enabled"},
            {**endpoint, "name": UNCACHED, "model_cache": "Disabled"},
        ],
    }
    path.write_text(json.dumps({"context": {"creative-scoring": {"environments": {"local": environment}}}}))
    return path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    copy_reference_archives(models)
    counter = models.parent / "loads.txt"
    write_test_archive(models, "counting", f"with open({str(counter)!r}, 'a') as f:\n    f.write('load\\n')")
    shared = models.parent / "shared-loads.txt"
    write_test_archive(models, "shared", f"with open({str(shared)!r}, 'a') as f:\n    f.write('load\\n')")
    release = models.parent / "release-slow"  # the slow model loads once the test creates this file
    write_test_archive(models, "slow", f"import os\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.01)")
    write_test_archive(models, "broken", "raise RuntimeError('weights are missing on purpose')")
    return models


@pytest.fixture(scope="module")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    tmp = tmp_path_factory.mktemp("cache-server")
    # 2.5 MiB holds two of the ~1.1 MB archives and the ~0.5 MB one, but not all three.
    args = ["--env", "local", "--config", str(_config(tmp / "cdk.json")), "--models-dir", str(models_dir)]
    server = LocalServer(tmp, *args, "--cache-mb", "2.5", "--load-timeout", "3")
    try:
        client = sagemaker_runtime(server.url)
        for _ in range(60):  # the first load also imports torch, which may outlast the load timeout when busy
            try:
                _invoke(client, "creative-scorer-v2.tar.gz")
                break
            except client.exceptions.ModelNotReadyException:
                continue
        else:
            raise RuntimeError("creative-scorer-v2 did not load in 60 load timeouts")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Any:
    return sagemaker_runtime(server.url)


def _invoke(client: Any, target: str, endpoint: str = CACHED) -> dict[str, Any]:
    response: dict[str, Any] = client.invoke_endpoint(
        EndpointName=endpoint, TargetModel=target, Body=CREATIVES, ContentType="application/json"
    )
    response["Body"].read()
    return response


def test_concurrent_first_requests_load_the_model_once(client: Any, models_dir: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _invoke(client, "counting.tar.gz"), range(8)))
    assert {r["ResponseMetadata"]["HTTPStatusCode"] for r in responses} == {200}
    assert (models_dir.parent / "loads.txt").read_text().splitlines() == ["load"]


def test_least_recently_used_model_is_unloaded_when_the_budget_is_full(client: Any, server: LocalServer) -> None:
    _invoke(client, "counting.tar.gz")
    _invoke(client, "creative-scorer-v2.tar.gz")
    _invoke(client, "creative-scorer-v1.tar.gz")
    _invoke(client, "creative-scorer-v2.tar.gz")  # v1 is now the least recently used
    _invoke(client, "creative-scorer-social-v1.tar.gz")
    assert "creative-scorer-v1.tar.gz" not in server.loaded_targets()
    assert {"creative-scorer-v2.tar.gz", "creative-scorer-social-v1.tar.gz"} <= set(server.loaded_targets())
    _invoke(client, "creative-scorer-v1.tar.gz")  # an unloaded model loads again on demand


def _loaded(server: LocalServer) -> set[tuple[str, str]]:
    return {(m["endpoint"], m["target"]) for m in server.describe()["loaded_models"]}


def test_disabled_cache_unloads_right_after_the_invocation_and_only_its_own_copy(
    client: Any, server: LocalServer
) -> None:
    _invoke(client, "shared.tar.gz")
    _invoke(client, "shared.tar.gz", endpoint=UNCACHED)
    assert (CACHED, "shared.tar.gz") in _loaded(server)
    assert (UNCACHED, "shared.tar.gz") not in _loaded(server)


def test_each_endpoint_loads_its_own_copy_of_a_target_model(client: Any, server: LocalServer, models_dir: Path) -> None:
    loads = models_dir.parent / "shared-loads.txt"
    _invoke(client, "shared.tar.gz")
    before = len(loads.read_text().splitlines())
    _invoke(client, "shared.tar.gz")  # cached on this endpoint: no load
    _invoke(client, "shared.tar.gz", endpoint=UNCACHED)  # another endpoint's instances: a load of its own
    assert len(loads.read_text().splitlines()) == before + 1


def test_slow_load_answers_model_not_ready_and_keeps_loading(client: Any, models_dir: Path) -> None:
    with pytest.raises(client.exceptions.ModelNotReadyException) as raised:
        _invoke(client, "slow.tar.gz")  # model_fn waits for the release file: the load outlasts the 3 s timeout
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    (models_dir.parent / "release-slow").touch()
    deadline = time.monotonic() + 60
    while True:  # the load that went on in the background finishes now
        try:
            assert _invoke(client, "slow.tar.gz")["ResponseMetadata"]["HTTPStatusCode"] == 200
            break
        except client.exceptions.ModelNotReadyException:
            assert time.monotonic() < deadline


def test_failed_load_is_a_model_error_and_is_retried_on_the_next_request(
    client: Any, server: LocalServer, models_dir: Path
) -> None:
    _invoke(client, "creative-scorer-v2.tar.gz")
    with pytest.raises(client.exceptions.ModelError) as raised:
        _invoke(client, "broken.tar.gz")
    assert raised.value.response["OriginalStatusCode"] == 500
    assert "weights are missing on purpose" in raised.value.response["OriginalMessage"]
    assert "broken.tar.gz" not in server.loaded_targets()
    assert "creative-scorer-v2.tar.gz" in server.loaded_targets()
    shutil.copy(MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz", models_dir / "broken.tar.gz")  # fixed in place
    assert _invoke(client, "broken.tar.gz")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_an_archive_added_while_running_is_invokable_without_a_restart(client: Any, models_dir: Path) -> None:
    with pytest.raises(client.exceptions.ValidationError):
        _invoke(client, "nested/creative-scorer-v3.tar.gz")
    (models_dir / "nested").mkdir()
    shutil.copy(MODEL_ARTIFACTS / "creative-scorer-v2.tar.gz", models_dir / "nested" / "creative-scorer-v3.tar.gz")
    assert _invoke(client, "nested/creative-scorer-v3.tar.gz")["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_corrupt_archive_is_a_validation_error_naming_it(client: Any, models_dir: Path) -> None:
    (models_dir / "corrupt.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(client.exceptions.ValidationError, match=r"corrupt\.tar\.gz cannot be used"):
        _invoke(client, "corrupt.tar.gz")
