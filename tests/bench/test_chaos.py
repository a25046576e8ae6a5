"""`make bench-chaos` kills the default setup for real and accounts for every accepted request."""

from __future__ import annotations

import json

import pytest

from bench.chaos import main


def test_the_chaos_benchmark_kills_each_kind_and_every_accepted_request_ends_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # seed 4: S3 alone at 1.4 s, then both at 2.5 s, then the endpoint: the first two find both processes up
    assert main(["--requests", "40", "--kills", "3", "--rate", "10", "--seed", "4", "--timeout", "400"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["accepted"] == 40
    assert (report["lost"], report["duplicated"], report["wrong"]) == (0, 0, 0)
    assert report["completed"] + report["failed"] == 40
    assert report["failed"] == 4  # 1 in 20 missing inputs and 1 in 20 refused bodies
    hits = [kill["hit"] for kill in report["kills"]]
    assert any("endpoint" in hit.split("+") for hit in hits)  # a live endpoint was killed
    assert any("s3" in hit.split("+") for hit in hits)  # a live S3 server was killed
    assert report["endpoint_exits_by_itself"] == 0
    assert report["endpoint_starts"] == 1 + sum("endpoint" in hit.split("+") for hit in hits)
    assert "0 lost and 0 duplicated" in err
