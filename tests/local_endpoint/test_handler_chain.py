"""The whole chain on every committed archive, extracted and imported the way SageMaker does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from local_endpoint.handler_chain import HandlerChain, HandlerError, import_handler
from tests.conftest import MODEL_NAMES, SAMPLES, LoadedArchive

JSON = "application/json"
JSONLINES = "application/jsonlines"


@pytest.fixture(params=MODEL_NAMES)
def archive(request: pytest.FixtureRequest, loaded_archives: dict[str, LoadedArchive]) -> LoadedArchive:
    return loaded_archives[request.param]


def _social(creatives: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "channel": "social"} for c in creatives]


def test_reference_models_are_all_present() -> None:
    assert {"creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"} <= set(MODEL_NAMES)


def test_json_request_is_scored_by_every_archive(archive: LoadedArchive, creatives: list[dict[str, Any]]) -> None:
    body = json.dumps({"instances": _social(creatives)}).encode()
    response = archive.chain.invoke(archive.model, body, JSON, JSON)
    assert response.status == 200
    assert response.content_type == JSON
    predictions = json.loads(response.body)["predictions"]
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in creatives]
    assert {p["model"] for p in predictions} == {archive.entry["name"]}
    assert {p["model_version"] for p in predictions} == {archive.entry["version"]}


def test_jsonlines_request_gets_jsonlines_response(archive: LoadedArchive) -> None:
    body = (SAMPLES / "social.jsonl").read_bytes()
    response = archive.chain.invoke(archive.model, body, JSONLINES, JSONLINES)
    assert response.status == 200
    assert response.content_type == JSONLINES
    lines = response.body.decode().splitlines()
    assert [json.loads(line)["creative_id"] for line in lines] == ["s-2001", "s-2002"]


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_missing_or_wildcard_accept_gets_the_default(archive: LoadedArchive, accept: str | None) -> None:
    body = (SAMPLES / "social.jsonl").read_bytes()
    response = archive.chain.invoke(archive.model, body, JSONLINES, accept)
    assert response.status == 200
    assert response.content_type == JSON


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b'{"instances": []}', "text/csv", JSON, 415, "Content-Type 'text/csv' is not supported"),
        (b'{"instances": []}', JSON, "text/csv", 415, "Accept 'text/csv' is not supported"),
        (b'{"instances": [{"headline": 1}]}', JSON, JSON, 400, "instances[0].headline"),
        (b"{", JSON, JSON, 400, "the body is not valid JSON"),
    ],
)
def test_client_mistakes_are_4xx_with_a_message_and_no_traceback(
    archive: LoadedArchive, body: bytes, content_type: str, accept: str, status: int, message: str
) -> None:
    response = archive.chain.invoke(archive.model, body, content_type, accept)
    assert response.status == status
    assert message in response.body.decode()
    assert "Traceback" not in response.body.decode()


def test_empty_batch_gets_an_empty_result(archive: LoadedArchive) -> None:
    response = archive.chain.invoke(archive.model, b'{"instances": []}', JSON, JSON)
    assert (response.status, json.loads(response.body)) == (200, {"predictions": []})


def _module(tmp_path: Path, source: str) -> HandlerChain:
    (tmp_path / "inference.py").write_text(textwrap.dedent(source))
    return HandlerChain(import_handler(tmp_path))


def test_transform_fn_with_input_fn_is_refused_as_the_toolkit_does(tmp_path: Path) -> None:
    with pytest.raises(HandlerError, match="Cannot use transform_fn implementation in conjunction"):
        _module(
            tmp_path,
            """
            def model_fn(model_dir): return None
            def input_fn(data, content_type): return data
            def transform_fn(model, data, content_type, accept): return data
            """,
        )


def test_transform_fn_alone_runs_and_its_context_is_optional(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        def model_fn(model_dir, context): return context
        def transform_fn(model, data, content_type, accept): return (model.encode() + data, "text/plain")
        """,
    )
    model = chain.load(tmp_path, context="ctx:")
    assert chain.invoke(model, b"body", "text/plain", None).body == b"ctx:body"


def test_body_is_text_only_for_exactly_application_json(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        def model_fn(model_dir): return None
        def input_fn(data, content_type): return type(data).__name__
        def predict_fn(data, model): return data
        def output_fn(prediction, accept): return prediction
        """,
    )
    assert chain.invoke(None, b"{}", "application/json", None).body == b"str"
    assert chain.invoke(None, b"{}", "application/json; charset=utf-8", None).body == b"bytes"


def test_unexpected_handler_failure_is_500_with_its_message_only(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        def model_fn(model_dir): return None
        def input_fn(data, content_type): raise RuntimeError("boom")
        def predict_fn(data, model): return data
        def output_fn(prediction, accept): return prediction
        """,
    )
    response = chain.invoke(None, b"x", "text/plain", None)
    assert (response.status, response.body) == (500, b"boom")
