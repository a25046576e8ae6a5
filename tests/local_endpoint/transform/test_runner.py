"""The runner: a failed mini-batch fails only its input, 5xx answers are retried, gzip inputs are decompressed."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from local_endpoint.transform import run_transform
from tests.local_endpoint.conftest import write_test_archive
from tests.local_endpoint.transform.conftest import MALFORMED, lines_job, read_predictions, write_lines
from training.dataset import generate

FLAKY_PREDICT = """
global CALLS
CALLS += 1
if CALLS % 2:
    raise scoring_handler.InferenceError(scoring_handler.HTTPStatus.SERVICE_UNAVAILABLE, "busy, try again")
"""


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (MALFORMED, "is not valid JSON"),
        (json.dumps({**generate(1, seed=9).creatives[0], "channel": "radio"}), ".channel"),
    ],
    ids=["malformed-json", "invalid-creative"],
)
def test_a_bad_line_fails_its_file_with_its_line_number_and_other_files_succeed(
    tmp_path: Path, strategy: str, bad_line: str, expected: str
) -> None:
    creatives = generate(120, seed=5).creatives
    write_lines(tmp_path / "in" / "a-good.jsonl", creatives[:60])
    write_lines(tmp_path / "in" / "b-bad.jsonl", creatives[60:], replace={37: bad_line})

    result = run_transform(lines_job(tmp_path, batch_strategy=strategy))

    out = tmp_path / "out"
    assert len(read_predictions(out / "a-good.jsonl.out")) == 60
    assert not (out / "b-bad.jsonl.out").exists()
    report = json.loads((out / "b-bad.jsonl.out.failed.json").read_text())
    [failure] = report["failures"]
    assert failure["line"] == 37
    assert failure["status"] == 400
    assert expected in failure["message"]
    assert "Traceback" not in failure["message"]  # the toolkit appends one to the model's answer
    assert failure["attempts"] == 1  # a 4xx is not retried
    failed_records = 1 if strategy == "SingleRecord" else 60
    assert (report["records"], report["failed_records"]) == (60, failed_records)
    summary = result.to_dict()
    assert summary["status"] == "Failed"
    assert summary["files"] == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    assert summary["records"] == {
        "succeeded": 60,
        "failed": failed_records,
        "discarded": 60 - failed_records,
        "skipped": 0,
    }
    assert summary["failures"][0]["input"] == "b-bad.jsonl"


def test_5xx_answers_are_retried_up_to_max_retries(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_test_archive(models, "flaky", predict_fn_body=FLAKY_PREDICT, extra="\nCALLS = 0\n")
    write_lines(tmp_path / "in" / "part.jsonl", generate(8, seed=1).creatives)
    settings: dict[str, Any] = {"model": "flaky", "models_dir": models, "batch_strategy": "SingleRecord"}

    retried = run_transform(lines_job(tmp_path, "retried", invocation_max_retries=1, **settings)).to_dict()
    given_up = run_transform(lines_job(tmp_path, "given-up", invocation_max_retries=0, **settings)).to_dict()

    assert (retried["status"], retried["invocations"], retried["retries"]) == ("Completed", 16, 8)
    assert len(read_predictions(tmp_path / "retried" / "part.jsonl.out")) == 8
    assert given_up["status"] == "Failed"
    report = json.loads((tmp_path / "given-up" / "part.jsonl.out.failed.json").read_text())
    assert {(f["status"], f["message"], f["attempts"]) for f in report["failures"]} == {(503, "busy, try again", 1)}


def test_gzip_inputs_are_decompressed_with_compression_type_gzip(tmp_path: Path) -> None:
    creatives = generate(30, seed=4).creatives
    plain = write_lines(tmp_path / "plain" / "part.jsonl", creatives)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    shutil.copy(plain, tmp_path / "in" / "not-gzip.jsonl")

    result = run_transform(lines_job(tmp_path, compression_type="Gzip")).to_dict()

    predictions = read_predictions(tmp_path / "out" / "part.jsonl.gz.out")
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in creatives]
    assert result["settings"]["CompressionType"] == "Gzip"
    assert result["files"] == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    report = json.loads((tmp_path / "out" / "not-gzip.jsonl.out.failed.json").read_text())
    assert "it is not gzip data" in report["failures"][0]["message"]
