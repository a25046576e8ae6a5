"""`make bench` runs end to end and prints what the targets are judged by (never a timed assertion)."""

from __future__ import annotations

import json

import pytest

from bench.handler_chain import main


def test_the_handler_chain_benchmark_prints_json_and_the_ratio_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seconds", "0.01", "--batch-sizes", "1", "256", "--models", "creative-scorer-v1"]) == 0
    out, err = capsys.readouterr()
    batches = json.loads(out)["models"]["creative-scorer-v1"]["batches"]
    assert set(batches) == {"1", "256"}
    for run in batches.values():
        assert run["chain_over_forward_p50"] > 0
        assert run["featurize"]["calls"] >= 20
    assert "ratio <= 2x: " in err
    assert ">= 150,000/s: " in err
