"""The whole chain on every committed archive, extracted and imported the way SageMaker does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from creative_scoring.artifacts.handler_chain import HandlerChain, HandlerError, import_handler
from creative_scoring.paths import SAMPLES
from tests.conftest import MODEL_NAMES, LoadedArchive

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


BOOM = """
def model_fn(model_dir): return None
def input_fn(data, content_type): raise RuntimeError("boom")
def predict_fn(data, model): return data
def output_fn(prediction, accept): return prediction
"""


def test_unexpected_handler_failure_is_500_with_its_message_only(tmp_path: Path) -> None:
    chain = _module(tmp_path, BOOM)
    response = chain.invoke(None, b"x", "text/plain", None)
    assert (response.status, response.body) == (500, b"boom")


# Bodies that are not UTF-8: the toolkit decodes them inside its error handling, so each is the model's 500.
NOT_UTF8 = {
    "random-bytes": bytes(range(128, 256)),
    "invalid-byte-inside-a-string": b'{"instances": [{"headline": "caf\xe9"}]}',
    "overlong-encoding": b'{"instances": [{"headline": "\xc0\xaf"}]}',
    "encoded-surrogate": b'{"instances": [{"headline": "\xed\xa0\x80"}]}',
    "truncated-sequence": b'{"instances": [{"headline": "\xe2\x82"}]}',
    "utf-16-with-bom": '{"instances": []}'.encode("utf-16"),
}


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_a_body_that_is_not_utf8_under_a_text_type_is_the_models_500(
    archive: LoadedArchive, body: bytes, content_type: str
) -> None:
    response = archive.chain.invoke(archive.model, body, content_type, JSON)
    assert response.status == 500
    assert response.body.decode().startswith("'utf-8' codec can't decode")
    assert response.trace is not None
    assert "UnicodeDecodeError" in response.trace


@pytest.mark.parametrize("body", NOT_UTF8.values(), ids=NOT_UTF8.keys())
def test_a_body_that_is_not_utf8_under_json_lines_is_the_handlers_400(archive: LoadedArchive, body: bytes) -> None:
    response = archive.chain.invoke(archive.model, body, JSONLINES, JSON)
    assert response.status == 400
    assert "the body is not valid UTF-8" in response.body.decode()


def test_an_error_keeps_its_traceback_apart_and_the_wire_body_appends_it_as_the_toolkit_does(tmp_path: Path) -> None:
    chain = _module(tmp_path, BOOM)
    response = chain.invoke(None, b"x", "text/plain", None)
    assert response.trace is not None
    assert response.trace.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError("boom")' in response.trace
    assert response.wire_body() == b"boom\n" + response.trace.encode()


def test_a_module_without_input_and_output_fn_gets_the_toolkits_numpy_defaults(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        def model_fn(model_dir): return 2.0
        def predict_fn(data, model): return data * model
        """,
    )
    response = chain.invoke(chain.load(tmp_path), b"[[1, 2], [3, 4]]", "application/json", "text/csv")
    assert (response.status, response.content_type) == (200, "text/csv")
    assert response.body.decode().split() == ["2.0,4.0", "6.0,8.0"]


def test_a_module_without_predict_fn_fails_each_request_as_the_toolkit_does(tmp_path: Path) -> None:
    chain = _module(tmp_path, "def model_fn(model_dir): return None\n")
    response = chain.invoke(None, b"[1]", "application/json", None)
    assert response.status == 500
    assert "Please provide a predict_fn implementation." in response.body.decode()


def test_a_module_without_model_fn_cannot_load(tmp_path: Path) -> None:
    chain = _module(tmp_path, "def predict_fn(data, model): return data\n")
    with pytest.raises(NotImplementedError, match="Please provide a model_fn implementation"):
        chain.load(tmp_path)


def test_pre_model_fn_and_model_warmup_fn_run_around_model_fn(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        CALLS = []
        def pre_model_fn(model_dir): CALLS.append("pre")
        def model_fn(model_dir): CALLS.append("model"); return CALLS
        def model_warmup_fn(model_dir, model): CALLS.append("warmup")
        def transform_fn(model, data, content_type, accept): return ",".join(model)
        """,
    )
    assert chain.invoke(chain.load(tmp_path), b"", None, None).body == b"pre,model,warmup"


def test_only_the_toolkits_error_class_sets_the_status(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        from sagemaker_inference.errors import BaseInferenceToolkitError

        class LooksLikeOne(Exception):
            status_code = 418
            message = "not the toolkit's class"

        def model_fn(model_dir): return None
        def input_fn(data, content_type):
            if data == b"toolkit":
                raise BaseInferenceToolkitError(418, "short and stout", "I'm a teapot")
            raise LooksLikeOne("a status code on another class")
        def predict_fn(data, model): return data
        def output_fn(prediction, accept): return prediction
        """,
    )
    toolkit = chain.invoke(None, b"toolkit", "text/plain", None)
    other = chain.invoke(None, b"other", "text/plain", None)
    assert (toolkit.status, toolkit.body) == (418, b"short and stout")
    assert (other.status, other.body) == (500, b"a status code on another class")


def test_a_response_that_cannot_be_encoded_is_a_500_not_a_crash(tmp_path: Path) -> None:
    chain = _module(
        tmp_path,
        """
        def model_fn(model_dir): return None
        def transform_fn(model, data, content_type, accept): return "\\ud800"
        """,
    )
    response = chain.invoke(None, b"", None, None)
    assert response.status == 500
    assert "surrogates not allowed" in response.body.decode()
