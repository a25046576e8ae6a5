"""Running local endpoints (real server processes on free ports) and test model archives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from creative_scoring.artifacts.archive import read_members, write_archive
from creative_scoring.net import ServerExited, wait_until_serving
from creative_scoring.net import free_port as free_port  # the test modules take it from here
from creative_scoring.paths import MODEL_ARTIFACTS, ROOT, SAMPLES
from tests.conftest import moto_server

DEV_ENDPOINT = "creative-scoring-dev"
PROD_ENDPOINT = "creative-scoring-prod"


ECHO_ATTRIBUTES = """

def output_fn(prediction, accept, context):
    name = "X-Amzn-SageMaker-Custom-Attributes"
    context.set_response_header(0, name, "echo:" + (context.get_request_header(0, name) or ""))
    return scoring_handler.output_fn(prediction, accept)
"""


class LocalServer:
    """``creative-scoring serve`` in a subprocess; stderr (the request log) goes to ``log_path``."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"server-{self.port}.log"
        command = [sys.executable, "-m", "creative_scoring", "serve", "--port", str(self.port), *args]
        if "--state-dir" in args:
            self.state_dir = Path(args[args.index("--state-dir") + 1])
        else:  # not the repository's own .local-endpoint/ENV, which one server at a time owns
            self.state_dir = tmp / f"state-{self.port}"
            command += ["--state-dir", str(self.state_dir)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120) -> None:
        try:
            wait_until_serving(f"{self.url}/_local/endpoints", timeout_s=timeout, process=self.process)
        except ServerExited as e:
            raise RuntimeError(f"local endpoint exited: {self.log_path.read_text()}") from e
        except TimeoutError as e:
            self.stop()
            raise RuntimeError(f"local endpoint not ready in {timeout}s: {self.log_path.read_text()}") from e

    def describe(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_local/endpoints", timeout=5) as response:
            result: dict[str, Any] = json.load(response)
            return result

    def loaded_targets(self) -> list[str]:
        return sorted(m["target"] for m in self.describe()["loaded_models"])

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    """A real S3 API (moto's server) on a loopback port, for async and batch transform tests."""
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def server_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-endpoint")


@pytest.fixture(scope="session")
def dev_server(server_tmp: Path) -> Iterator[LocalServer]:
    server = LocalServer(server_tmp, "--env", "dev")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prod_server(server_tmp: Path) -> Iterator[LocalServer]:
    server = LocalServer(server_tmp, "--env", "prod")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dev(dev_server: LocalServer) -> Any:
    """boto3's runtime client for the dev endpoints."""
    return sagemaker_runtime(dev_server.url)


@pytest.fixture(scope="module")
def prod(prod_server: LocalServer) -> Any:
    """boto3's runtime client for the prod endpoints."""
    return sagemaker_runtime(prod_server.url)


def _load(server: LocalServer, target: str) -> None:
    client = sagemaker_runtime(server.url)
    for _ in range(30):
        try:
            client.invoke_endpoint(EndpointName=DEV_ENDPOINT, TargetModel=target, Body=b"{}", ContentType="text/csv")
        except client.exceptions.ModelNotReadyException:
            continue
        except client.exceptions.ModelError:
            return  # the model answered (415 for this body, or its timeout): it is loaded
    raise RuntimeError(f"{target} did not load")


def sagemaker_runtime(url: str) -> Any:
    """A stock boto3 client that only changes the endpoint URL (no retries, to keep error tests fast)."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=70),
    )


def write_test_archive(
    models_dir: Path, name: str, model_fn_body: str = "pass", predict_fn_body: str = "pass", extra: str = ""
) -> Path:
    """An archive with creative-scorer-v1's weights and handler, whose ``model_fn`` and ``predict_fn`` first
    run the given code. The real handler ships as ``code/scoring_handler.py``; ``code/inference.py`` wraps it.
    """
    members = read_members(MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz")
    files = {k: v for k, v in members.items() if k != "code/inference.py"}
    files["code/scoring_handler.py"] = members["code/inference.py"]
    load = textwrap.indent(textwrap.dedent(model_fn_body).strip(), "    ")
    predict = textwrap.indent(textwrap.dedent(predict_fn_body).strip(), "    ")
    files["code/inference.py"] = (
        "import time\n\nimport scoring_handler\nfrom scoring_handler import input_fn, output_fn\n\n\n"
        f"def model_fn(model_dir):\n{load}\n    return scoring_handler.model_fn(model_dir)\n\n\n"
        f"def predict_fn(data, model):\n{predict}\n    return scoring_handler.predict_fn(data, model)\n" + extra
    ).encode()
    path = models_dir / f"{name}.tar.gz"
    write_archive(path, files)
    return path


def copy_reference_archives(models_dir: Path) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    for archive in MODEL_ARTIFACTS.glob("*.tar.gz"):
        shutil.copy(archive, models_dir / archive.name)
    shutil.copy(MODEL_ARTIFACTS / "manifest.json", models_dir / "manifest.json")


@pytest.fixture(scope="session")
def unavailable_server(server_tmp: Path) -> Iterator[LocalServer]:
    """A front whose model server is not there."""
    server = LocalServer(server_tmp, "--backend", "container", "--container-url", f"http://127.0.0.1:{free_port()}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broken_server(server_tmp: Path) -> Iterator[LocalServer]:
    """A front that cannot extract archives: its work folder is a file."""
    workdir = server_tmp / "workdir-is-a-file"
    workdir.write_text("")
    server = LocalServer(server_tmp, "--workdir", str(workdir))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow_server(server_tmp: Path) -> Iterator[LocalServer]:
    """Test models behind 1 s load and invocation timeouts: some never finish loading and one never answers
    while the server runs (they wait for a file the fixture creates at the end), one echoes the request's custom
    attributes through the model server's context."""
    models = server_tmp / "slow-models"
    copy_reference_archives(models)
    release = server_tmp / "release-slow-models"
    wait = f"import os\nwhile not os.path.exists({str(release)!r}):\n    time.sleep(0.05)"
    for client in ("boto3", "js", "cli"):
        write_test_archive(models, f"slow-load-{client}", model_fn_body=wait)
    write_test_archive(models, "slow-answer", predict_fn_body=wait)
    write_test_archive(models, "echo", extra=ECHO_ATTRIBUTES)
    args = ["--models-dir", str(models), "--load-timeout", "1", "--invocation-timeout", "1"]
    server = LocalServer(server_tmp, *args)
    for target in ("echo.tar.gz", "slow-answer.tar.gz"):  # loaded up front, so only the slow-load ones are slow
        _load(server, target)
    yield server
    release.touch()
    server.stop()


CREATIVES = (SAMPLES / "creatives.json").read_bytes()


def invoke_json(client: Any, endpoint: str, target: str | None, body: bytes = CREATIVES, **extra: Any) -> Any:
    """``InvokeEndpoint`` with a JSON body, naming ``target`` as ``TargetModel`` when given."""
    targeted = {"TargetModel": target} if target is not None else {}
    return client.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="application/json", **targeted, **extra)
