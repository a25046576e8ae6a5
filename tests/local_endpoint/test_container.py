"""The embedded model server against the reference: the same requests, good and bad, through the embedded backend
and the real stack (Multi Model Server with the SageMaker inference toolkit), both behind the front: same status,
body and content type. Besides the reference archives, small handler modules pin down the toolkit's semantics:
default handlers for the ones a module omits, and which exceptions set the status. And the response headers a
handler sets through the model server's context come back to the client."""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from creative_scoring.artifacts.archive import write_archive
from creative_scoring.paths import SAMPLES
from local_endpoint.real_stack import available
from tests.artifacts.test_handler_chain import NOT_UTF8
from tests.local_endpoint.conftest import (
    DEV_ENDPOINT,
    LocalServer,
    copy_reference_archives,
    invoke_json,
    sagemaker_runtime,
)

CREATIVES = (SAMPLES / "creatives.json").read_bytes()
SOCIAL = (SAMPLES / "social.jsonl").read_bytes()
JSON, JSONLINES = "application/json", "application/jsonlines"
V1, V2, SOCIAL_V1 = "creative-scorer-v1.tar.gz", "creative-scorer-v2.tar.gz", "creative-scorer-social-v1.tar.gz"
ONE = json.dumps(json.loads(CREATIVES)["instances"][0]).encode()

REQUESTS = {
    "json-v1": (V1, CREATIVES, JSON, JSON),
    "json-v2": (V2, CREATIVES, JSON, None),
    "jsonlines-social": (SOCIAL_V1, SOCIAL, JSONLINES, JSONLINES),
    "single-creative": (V1, ONE, JSON, "*/*"),
    "accept-list": (V2, SOCIAL, JSONLINES, "text/html, application/jsonlines"),
    "empty-batch": (V1, b'{"instances": []}', JSON, JSON),
    "charset-parameter": (V1, CREATIVES, "application/json; charset=utf-8", JSON),
    "unsupported-content-type": (V1, b"a,b\n1,2", "text/csv", JSON),
    "unsupported-accept": (V1, CREATIVES, JSON, "text/csv"),
    "no-content-type": (V1, CREATIVES, None, JSON),
    "malformed-json": (V1, b'{"instances": [', JSON, JSON),
    "nan": (V1, b'{"instances": [{"headline": NaN}]}', JSON, JSON),
    "invalid-creative": (V1, b'{"instances": [{"headline": "x"}]}', JSON, JSON),
    "wrong-channel": (SOCIAL_V1, CREATIVES, JSON, JSON),
    "batch-over-limit": (V1, b'{"instances": [' + b",".join([ONE] * 1001) + b"]}", JSON, JSON),
    "not-utf8": (V1, b"\xff\xfe", JSONLINES, JSON),
    **{f"not-utf8-json-{name}": (V1, body, JSON, JSON) for name, body in NOT_UTF8.items()},
    "not-utf8-csv": (V1, b"\xff,\xfe", "text/csv", JSON),
    "unknown-target-model": ("creative-scorer-v9.tar.gz", CREATIVES, JSON, JSON),
    "default-input-and-output-fn": ("defaults.tar.gz", b"[[1, 2], [3, 4]]", JSON, JSON),
    "default-output-fn-as-csv": ("defaults.tar.gz", b"1,2\n3,4", "text/csv", "text/csv"),
    "default-input-fn-unsupported-type": ("defaults.tar.gz", b"[1]", "application/x-unknown", JSON),
    "default-predict-fn": ("no-predict.tar.gz", b"[1]", JSON, JSON),
    "toolkit-error-sets-the-status": ("errors.tar.gz", b"toolkit", "text/plain", JSON),
    "other-status-code-is-a-500": ("errors.tar.gz", b"other", "text/plain", JSON),
    "plain-exception-is-a-500": ("errors.tar.gz", b"plain", "text/plain", JSON),
    "transform-fn": ("transform.tar.gz", b"body", "text/plain", "text/plain"),
}

# Handler modules whose behaviour the toolkit defines; each ships alone in code/inference.py.
HANDLERS = {
    "defaults": """
        def model_fn(model_dir): return 2.0
        def predict_fn(data, model): return data * model
        """,
    "no-predict": """
        def model_fn(model_dir): return None
        """,
    "errors": """
        from sagemaker_inference.errors import BaseInferenceToolkitError

        class LooksLikeOne(Exception):
            status_code = 418

        def model_fn(model_dir): return None
        def input_fn(data, content_type):
            if data == b"toolkit":
                raise BaseInferenceToolkitError(418, "short and stout", "I'm a teapot")
            if data == b"other":
                raise LooksLikeOne("a status code on another class")
            raise KeyError("plain")
        def predict_fn(data, model): return data
        def output_fn(prediction, accept): return prediction
        """,
    "transform": """
        def model_fn(model_dir): return b"model:"
        def transform_fn(model, data, content_type, accept): return model + data, "text/plain"
        """,
}


def _models_dir(root: Path) -> Path:
    copy_reference_archives(root)
    for name, source in HANDLERS.items():
        write_archive(root / f"{name}.tar.gz", {"code/inference.py": textwrap.dedent(source).encode()})
    return root


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    missing = available()
    if missing:
        pytest.skip(f"the real stack cannot run here: {missing}")
    tmp = tmp_path_factory.mktemp("parity")
    models = _models_dir(tmp / "models")
    started = {
        backend: LocalServer(tmp, "--backend", backend, "--models-dir", str(models))
        for backend in ("embedded", "real-stack")
    }
    yield started
    for server in started.values():
        server.stop()


def _send(
    server: LocalServer, target: str, body: bytes, content_type: str | None, accept: str | None
) -> tuple[int, str | None, str | None, object]:
    headers = {"X-Amzn-SageMaker-Target-Model": target}
    headers |= {"Content-Type": content_type} if content_type else {}
    headers |= {"Accept": accept} if accept else {}
    request = urllib.request.Request(f"{server.url}/endpoints/{DEV_ENDPOINT}/invocations", body, headers)
    if content_type is None:
        request.remove_header("Content-type")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers.get("Content-Type"), None, _decoded(response.read())
    except urllib.error.HTTPError as error:
        error_type = error.headers.get("x-amzn-ErrorType")
        return error.code, error.headers.get("Content-Type"), error_type, _decoded(error.read(), server)


def _decoded(body: bytes, server: LocalServer | None = None) -> object:
    text = body.decode()
    if server:  # the log link names the server, a missing model its state folder; everything else must match
        text = text.replace(server.url.removeprefix("http://"), "<server>").replace(str(server.state_dir), "<state>")
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("name", list(REQUESTS))
def test_both_backends_answer_alike(servers: dict[str, LocalServer], name: str) -> None:
    answers = {backend: _send(server, *REQUESTS[name]) for backend, server in servers.items()}
    assert answers["embedded"] == answers["real-stack"]


def test_parity_covers_successes_and_each_kind_of_client_error(servers: dict[str, LocalServer]) -> None:
    statuses = {name: _send(servers["embedded"], *request)[0] for name, request in REQUESTS.items()}
    assert set(statuses.values()) == {200, 400, 424}
    cases = {
        "unsupported-content-type": 415,
        "invalid-creative": 400,
        "not-utf8-json-random-bytes": 500,
        "default-predict-fn": 500,
        "toolkit-error-sets-the-status": 418,
        "other-status-code-is-a-500": 500,
    }
    original = {
        name: json.loads(json.dumps(_send(servers["embedded"], *REQUESTS[name])[3])).get("OriginalStatusCode")
        for name in cases
    }
    assert original == cases


def test_custom_attributes_set_by_the_handler_come_back(slow_server: LocalServer) -> None:
    client = sagemaker_runtime(slow_server.url)
    response = invoke_json(client, DEV_ENDPOINT, "echo.tar.gz", CustomAttributes="trace=42")
    assert response["CustomAttributes"] == "echo:trace=42"
    assert json.loads(response["Body"].read())["predictions"]
