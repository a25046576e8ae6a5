"""The same requests, good and bad, through the embedded backend and the real stack (Multi Model Server with
the SageMaker inference toolkit), both behind the front: same status, body and content type."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from local_endpoint.real_stack import available
from tests.conftest import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, LocalServer

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
    "unknown-target-model": ("creative-scorer-v9.tar.gz", CREATIVES, JSON, JSON),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    missing = available()
    if missing:
        pytest.skip(f"the real stack cannot run here: {missing}")
    tmp = tmp_path_factory.mktemp("parity")
    started = {backend: LocalServer(tmp, "--backend", backend) for backend in ("embedded", "real-stack")}
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
        return error.code, error.headers.get("Content-Type"), error_type, _decoded(error.read(), server.url)


def _decoded(body: bytes, server_url: str = "") -> object:
    text = body.decode()
    if server_url:  # the log link names the server; everything else must match
        text = text.replace(server_url.removeprefix("http://"), "<server>")
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
    original = {
        name: json.loads(json.dumps(_send(servers["embedded"], *REQUESTS[name])[3])).get("OriginalStatusCode")
        for name in ("unsupported-content-type", "invalid-creative")
    }
    assert original == {"unsupported-content-type": 415, "invalid-creative": 400}
