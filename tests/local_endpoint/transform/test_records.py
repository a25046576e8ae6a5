"""Records: SplitType and BatchStrategy cut inputs into mini-batches, AssembleWith puts the answers back in order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from creative_scoring.paths import SAMPLES
from local_endpoint.transform import run_transform
from tests.local_endpoint.transform.conftest import MODEL, lines_job, read_predictions, write_lines
from training.dataset import generate


def test_100k_lines_in_multi_record_batches_come_back_one_per_input_line_in_order(tmp_path: Path) -> None:
    creatives = generate(100_000, seed=20260).creatives
    write_lines(tmp_path / "in" / "creatives.jsonl", creatives)

    result = run_transform(lines_job(tmp_path, max_payload_mb=2, max_concurrent_transforms=2))

    predictions = read_predictions(tmp_path / "out" / "creatives.jsonl.out")
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in creatives]
    assert all(0.0 <= p["score"] <= 1.0 and p["model"] == MODEL for p in predictions)
    summary = result.to_dict()
    assert summary["status"] == "Completed"
    assert summary["records"] == {"succeeded": 100_000, "failed": 0, "discarded": 0, "skipped": 0}
    assert 25 <= summary["invocations"] <= 40  # mini-batches of up to 2 MiB, ~530 bytes a creative


def test_single_record_gives_the_same_scores_as_multi_record(tmp_path: Path) -> None:
    write_lines(tmp_path / "in" / "part-1.jsonl", generate(150, seed=3).creatives)

    multi = run_transform(lines_job(tmp_path, "multi"))
    single = run_transform(lines_job(tmp_path, "single", batch_strategy="SingleRecord"))

    singles = read_predictions(tmp_path / "single" / "part-1.jsonl.out")
    batched = read_predictions(tmp_path / "multi" / "part-1.jsonl.out")
    assert [p["creative_id"] for p in singles] == [p["creative_id"] for p in batched]
    # a batched forward pass may differ from a single one in the last float bits: scores are rounded to 1e-6
    assert [p["score"] for p in singles] == pytest.approx([p["score"] for p in batched], abs=2e-6)
    assert (multi.to_dict()["invocations"], single.to_dict()["invocations"]) == (1, 150)


def test_split_type_none_sends_a_json_file_whole(tmp_path: Path) -> None:
    instances = json.loads((SAMPLES / "creatives.json").read_text())["instances"]
    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLES / "creatives.json", tmp_path / "in" / "creatives.json")
    whole = lines_job(
        tmp_path,
        "whole",
        content_type="application/json",
        accept="application/json",
        split_type="None",
        batch_strategy=None,
        assemble_with="None",
    )

    result = run_transform(whole)

    assert result.to_dict()["invocations"] == 1
    predictions = json.loads((tmp_path / "whole" / "creatives.json.out").read_text())["predictions"]
    assert [p["creative_id"] for p in predictions] == [i["creative_id"] for i in instances]
    write_lines(tmp_path / "lines" / "creatives.jsonl", instances)  # the same creatives one per line score the same
    run_transform(lines_job(tmp_path, "by-line", input=str(tmp_path / "lines")))
    assert read_predictions(tmp_path / "by-line" / "creatives.jsonl.out") == predictions
