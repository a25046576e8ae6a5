"""The handler functions, called directly as the toolkit calls them."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import inference
from creative_scorers import Scorer
from inference import BadRequest, UnsupportedMediaType, input_fn, model_fn, output_fn, predict_fn
from tests.conftest import LoadedArchive


@pytest.fixture(scope="module")
def scorer(loaded_archives: dict[str, LoadedArchive]) -> Scorer:
    return model_fn(str(loaded_archives["creative-scorer-v1"].model_dir))


@pytest.fixture(scope="module")
def social_scorer(loaded_archives: dict[str, LoadedArchive]) -> Scorer:
    return model_fn(str(loaded_archives["creative-scorer-social-v1"].model_dir))


def _json(instances: list[Any]) -> str:
    return json.dumps({"instances": instances})


def test_model_fn_loads_on_the_cpu_when_no_gpu_is_present(scorer: Scorer) -> None:
    assert scorer.device == torch.device("cpu")
    assert not scorer.net.training
    assert scorer.config.name == "creative-scorer-v1"


def test_model_fn_accepts_the_model_server_context(loaded_archives: dict[str, LoadedArchive]) -> None:
    context = SimpleNamespace(system_properties={"gpu_id": 0, "model_dir": "ignored"})
    model = model_fn(str(loaded_archives["creative-scorer-v2"].model_dir), context)
    assert model.config.name == "creative-scorer-v2"


def test_json_instances_are_decoded_in_order(creatives: list[dict[str, Any]]) -> None:
    decoded = input_fn(_json(creatives), "application/json")
    assert [c.creative_id for c in decoded] == [c["creative_id"] for c in creatives]


def test_a_single_json_creative_is_a_batch_of_one(creative: dict[str, Any]) -> None:
    decoded = input_fn(json.dumps(creative).encode(), "application/json; charset=utf-8")
    assert [c.creative_id for c in decoded] == [creative["creative_id"]]


def test_jsonlines_skips_blank_lines_and_accepts_bytes(creatives: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(c) for c in creatives[:2]) + "\n\n" + json.dumps(creatives[2]) + "\n"
    decoded = input_fn(body.encode(), "application/jsonlines")
    assert [c.creative_id for c in decoded] == ["c-1001", "c-1002", "c-1003"]


@pytest.mark.parametrize("body", [_json([]), b"", b"\n"])
def test_empty_batch_decodes_to_nothing(body: str | bytes) -> None:
    content_type = "application/json" if isinstance(body, str) else "application/jsonlines"
    assert len(input_fn(body, content_type)) == 0


@pytest.mark.parametrize(
    "content_type", ["text/csv", "application/x-npy", None, "", "application/json; charset=latin-1"]
)
def test_unsupported_content_type_is_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        input_fn(b"{}", content_type)
    assert raised.value.status_code == 415
    assert raised.value.phrase == "Unsupported Media Type"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("{not json", "application/json", "the body is not valid JSON"),
        ('{"instances": [{"headline": NaN}]}', "application/json", "the body is not valid JSON"),
        ("[1, 2]", "application/json", "the body must be a JSON object"),
        ('{"instances": {}}', "application/json", '{"instances": [creative, ...]}'),
        ('{"instances": [], "extra": 1}', "application/json", "with no other keys"),
        (b"\xff\xfe", "application/jsonlines", "not valid UTF-8"),
        ('{"headline": "x"}\n{oops', "application/jsonlines", "line 2 is not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "application/json", "not valid JSON"),
    ],
)
def test_malformed_body_is_400_naming_the_problem(body: str | bytes, content_type: str, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        input_fn(body, content_type)
    assert raised.value.status_code == 400
    assert message in str(raised.value)


def test_invalid_creative_is_400_naming_index_and_field(creatives: list[dict[str, Any]]) -> None:
    creatives[2]["image"]["text_area_ratio"] = 3
    with pytest.raises(BadRequest, match=r"instances\[2\]\.image\.text_area_ratio: 3 is outside"):
        input_fn(_json(creatives), "application/json")


def test_jsonlines_error_index_is_the_line_number(creatives: list[dict[str, Any]]) -> None:
    creatives[1]["channel"] = "radio"
    body = "\n".join(json.dumps(c) for c in creatives)
    with pytest.raises(BadRequest, match=r"instances\[1\]\.channel"):
        input_fn(body, "application/jsonlines")


def test_batch_over_the_documented_limit_is_400(monkeypatch: pytest.MonkeyPatch, creative: dict[str, Any]) -> None:
    monkeypatch.setattr(inference, "MAX_INSTANCES", 3)
    assert len(input_fn(_json([creative] * 3), "application/json")) == 3
    with pytest.raises(BadRequest, match="holds 4 instances; the limit is 3"):
        input_fn(_json([creative] * 4), "application/json")


def test_predict_fn_labels_each_score_with_model_name_and_version(
    scorer: Scorer, creatives: list[dict[str, Any]]
) -> None:
    predictions = predict_fn(input_fn(_json(creatives), "application/json"), scorer)
    assert [p.creative_id for p in predictions] == [c["creative_id"] for c in creatives]
    assert {(p.model, p.model_version) for p in predictions} == {("creative-scorer-v1", "1.1.0")}
    assert all(0.0 <= p.score <= 1.0 for p in predictions)


def test_predict_fn_scores_the_whole_request_in_one_forward_pass_under_inference_mode(
    scorer: Scorer, creative: dict[str, Any]
) -> None:
    calls: list[tuple[int, bool]] = []
    hook = scorer.net.register_forward_hook(
        lambda _m, args, _out: calls.append((args[0]["dense"].shape[0], torch.is_inference_mode_enabled()))
    )
    try:
        predict_fn(input_fn(_json([creative] * 256), "application/json"), scorer)
    finally:
        hook.remove()
    assert calls == [(256, True)]


def test_scores_do_not_depend_on_batch_companions(scorer: Scorer, creatives: list[dict[str, Any]]) -> None:
    batched = predict_fn(input_fn(_json(creatives), "application/json"), scorer)
    alone = [predict_fn(input_fn(_json([c]), "application/json"), scorer)[0] for c in creatives]
    assert [p.score for p in batched] == pytest.approx([p.score for p in alone], abs=1e-5)


def test_predict_fn_of_an_empty_batch_is_empty(scorer: Scorer) -> None:
    assert predict_fn(input_fn(_json([]), "application/json"), scorer) == []


def test_channel_model_refuses_other_channels_with_400(social_scorer: Scorer, creatives: list[dict[str, Any]]) -> None:
    with pytest.raises(BadRequest, match=r"instances\[1\]\.channel: creative-scorer-social-v1 scores channels"):
        predict_fn(input_fn(_json(creatives), "application/json"), social_scorer)


PREDICTIONS = [inference.Prediction(creative_id="a", score=0.5, model="m", model_version="1")]
EXPECTED = [{"creative_id": "a", "score": 0.5, "model": "m", "model_version": "1"}]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/json", "application/json"),
        ("application/jsonlines", "application/jsonlines"),
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/html, application/jsonlines;q=0.9", "application/jsonlines"),
        ("APPLICATION/JSON; charset=utf-8", "application/json"),
    ],
)
def test_output_fn_returns_body_and_the_content_type_it_chose(accept: str | None, content_type: str) -> None:
    body, chosen = output_fn(PREDICTIONS, accept)
    assert chosen == content_type
    decoded = json.loads(body)["predictions"] if chosen == "application/json" else [json.loads(body)]
    assert decoded == EXPECTED


def test_jsonlines_output_is_one_prediction_per_line() -> None:
    body, _ = output_fn(PREDICTIONS * 3, "application/jsonlines")
    assert body.count("\n") == 3
    assert body.endswith("\n")
    assert output_fn([], "application/jsonlines") == ("", "application/jsonlines")


@pytest.mark.parametrize("accept", ["text/csv", "application/x-npy, text/html"])
def test_unsupported_accept_is_415(accept: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="is not supported; accept one of"):
        output_fn(PREDICTIONS, accept)


def test_a_bytearray_body_from_the_model_server_decodes_and_names_a_bad_line(creatives: list[dict[str, Any]]) -> None:
    body = "\n".join(json.dumps(c) for c in creatives)
    assert len(input_fn(bytearray(body.encode()), "application/jsonlines")) == len(creatives)
    with pytest.raises(BadRequest, match="line 2 is not valid JSON"):
        input_fn(bytearray(f"{json.dumps(creatives[0])}\n{{oops\n".encode()), "application/jsonlines")


def test_mangled_bodies_are_400_or_scored_never_another_error(creatives: list[dict[str, Any]]) -> None:
    """Flip, cut and splice the bytes of valid bodies: input_fn answers every one with a batch or a BadRequest."""
    rng = random.Random(11)
    bodies = [_json(creatives).encode(), "\n".join(json.dumps(c) for c in creatives).encode()]
    outcomes = {"scored": 0, "refused": 0}
    refusals: list[BadRequest] = []
    for _ in range(3_000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body))
            match rng.randrange(4):
                case 0:
                    body[at] = rng.randrange(256)
                case 1:
                    del body[at:]
                case 2:
                    body[at:at] = rng.choice([b'"', b"1e999", b"[", b"}", b"\xff", b"\x00", b"-", b"null", b",{}"])
                case _:
                    del body[at : at + rng.randint(1, 30)]
        for content_type in ("application/json", "application/jsonlines"):
            data: str | bytes = bytes(body)
            if content_type == "application/json":
                try:
                    data = bytes(body).decode("utf-8")  # the toolkit decodes JSON before input_fn
                except UnicodeDecodeError:
                    continue
            try:
                input_fn(data, content_type)
                outcomes["scored"] += 1
            except BadRequest as e:
                refusals.append(e)
                outcomes["refused"] += 1
    assert min(outcomes.values()) > 50, outcomes  # both kinds of answer were exercised
    assert all(e.status_code == 400 and str(e) for e in refusals)
