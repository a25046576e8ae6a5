"""Failures of the local machine or of the model server reach boto3 as SageMaker's service errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from creative_scoring.paths import MODEL_ARTIFACTS, ROOT, SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer, sagemaker_runtime

CREATIVES = (SAMPLES / "creatives.json").read_bytes()


def _invoke(client: Any, target: str = "creative-scorer-v1.tar.gz") -> Any:
    return client.invoke_endpoint(
        EndpointName=DEV_ENDPOINT, TargetModel=target, Body=CREATIVES, ContentType="application/json"
    )


def test_unreachable_model_server_is_service_unavailable(unavailable_server: LocalServer) -> None:
    client = sagemaker_runtime(unavailable_server.url)
    with pytest.raises(client.exceptions.ServiceUnavailable) as raised:
        _invoke(client)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_local_failure_is_internal_failure_with_the_traceback_only_in_the_log(broken_server: LocalServer) -> None:
    client = sagemaker_runtime(broken_server.url)
    with pytest.raises(client.exceptions.InternalFailure) as raised:
        _invoke(client)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "Traceback" not in raised.value.response["Error"]["Message"]
    assert "Traceback" in broken_server.log()


def test_a_model_that_does_not_answer_in_time_is_a_model_error_with_status_0(slow_server: LocalServer) -> None:
    client = sagemaker_runtime(slow_server.url)
    with pytest.raises(client.exceptions.ModelError) as raised:
        _invoke(client, "slow-answer.tar.gz")
    assert raised.value.response["OriginalStatusCode"] == 0
    assert "timed out while waiting for a response from container primary" in raised.value.response["OriginalMessage"]


def test_ping_is_healthy_only_while_the_model_server_answers(
    dev_server: LocalServer, unavailable_server: LocalServer
) -> None:
    with urllib.request.urlopen(f"{dev_server.url}/ping", timeout=10) as healthy:
        assert (healthy.status, json.load(healthy)["status"]) == (200, "Healthy")
    with pytest.raises(urllib.error.HTTPError) as unhealthy:
        urllib.request.urlopen(f"{unavailable_server.url}/ping", timeout=10)
    assert unhealthy.value.code == 503
    assert json.load(unhealthy.value)["status"] == "Unhealthy"


def test_a_models_folder_without_a_manifest_says_what_is_missing_and_where(tmp_path: Path) -> None:
    shutil.copy(MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz", tmp_path)
    command = [sys.executable, "-m", "creative_scoring", "serve", "--port", "0", "--models-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"the models folder {tmp_path} has no manifest.json" in result.stderr
    assert "Traceback" not in result.stderr
