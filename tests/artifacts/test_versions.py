"""The checks a model version passes before it is stored: it loads, scores the samples, and scores in [0, 1]."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from creative_scoring.artifacts.archive import write_archive
from creative_scoring.artifacts.versions import VersionError, check_scores, target_model
from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES


def _archive(tmp_path: Path, handler: str) -> Path:
    archive = tmp_path / "candidate.tar.gz"
    write_archive(archive, {"model.json": b"{}", "code/inference.py": textwrap.dedent(handler).encode()})
    return archive


SCORES = """
import json
def model_fn(model_dir):
    return None
def input_fn(body, content_type):
    return body
def predict_fn(data, model):
    return {SCORE}
def output_fn(prediction, accept):
    return json.dumps({"predictions": [{"score": prediction}]}), "application/json"
"""


def test_the_reference_models_pass(tmp_path: Path) -> None:
    results = check_scores(MODEL_ARTIFACTS / "creative-scorer-social-v1.tar.gz", SAMPLES, tmp_path)
    statuses = {r.sample: r.status for r in results}
    assert statuses["social.jsonl"] == 200
    assert statuses["creatives.json"] == 400  # other channels: refused by the model, reported, not a failure


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (SCORES.replace("{SCORE}", "1.5"), r"scores outside \[0, 1\]"),
        (SCORES.replace("{SCORE}", "1 / 0"), "fails on sample .*HTTP 500: division by zero"),
        (
            "def model_fn(model_dir):\n    raise RuntimeError('no weights')\n",
            "does not load through model_fn: .*no weights",
        ),
        (SCORES.replace("{SCORE}", "'high'"), "the response is not"),
    ],
)
def test_a_model_that_does_not_load_or_score_in_range_is_refused(tmp_path: Path, handler: str, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        check_scores(_archive(tmp_path, handler), SAMPLES, tmp_path / "work")


@pytest.mark.parametrize("name", ["creative-scorer-v3", "a", "v1.2.3", "0-day"])
def test_names_that_are_plain_keys_are_target_models(name: str) -> None:
    assert target_model(name) == f"{name}.tar.gz"


@pytest.mark.parametrize("name", ["", "UPPER", "under_score", "slash/name", "trailing-", ".leading", "a" * 101])
def test_other_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(VersionError, match="use 1 to 100 lowercase letters"):
        target_model(name)
