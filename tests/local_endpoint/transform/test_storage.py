"""S3 locations: inputs and outputs through an S3 endpoint (moto's server), keys relative to the prefix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from creative_scoring.paths import MODEL_ARTIFACTS
from local_endpoint.transform import run_transform
from local_endpoint.transform.checkpoint import CHECKPOINT
from tests.local_endpoint.transform.conftest import MALFORMED, MODEL, lines_job
from training.dataset import generate


def _encode(creatives: list[dict[str, Any]], replace: dict[int, str] | None = None) -> bytes:
    lines = [json.dumps(c) for c in creatives]
    for number, text in (replace or {}).items():
        lines[number - 1] = text
    return "".join(line + "\n" for line in lines).encode()


def test_s3_input_and_output_through_an_s3_endpoint(tmp_path: Path, s3: Any, s3_url: str) -> None:
    bucket = "transform-data"
    s3.create_bucket(Bucket=bucket)
    archive = MODEL_ARTIFACTS / f"{MODEL}.tar.gz"
    s3.put_object(Bucket=bucket, Key="models/model.tar.gz", Body=archive.read_bytes())
    creatives = generate(40, seed=8).creatives
    s3.put_object(Bucket=bucket, Key="in/day=1/a.jsonl", Body=_encode(creatives[:20]))
    s3.put_object(Bucket=bucket, Key="in/day=2/b.jsonl", Body=_encode(creatives[20:], {7: MALFORMED}))
    job = lines_job(
        tmp_path,
        model=f"s3://{bucket}/models/model.tar.gz",
        input=f"s3://{bucket}/in/",
        output=f"s3://{bucket}/scored",
        s3_endpoint_url=s3_url,
    )

    def read(key: str) -> bytes:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def keys() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="scored/").get("Contents", [])}

    first = run_transform(job).to_dict()

    assert first["status"] == "Failed"
    assert keys() == {f"scored/{CHECKPOINT}", "scored/day=1/a.jsonl.out", "scored/day=2/b.jsonl.out.failed.json"}
    ids = [json.loads(line)["creative_id"] for line in read("scored/day=1/a.jsonl.out").splitlines()]
    assert ids == [c["creative_id"] for c in creatives[:20]]
    report = json.loads(read("scored/day=2/b.jsonl.out.failed.json"))
    assert (report["input"], report["failures"][0]["line"]) == (f"s3://{bucket}/in/day=2/b.jsonl", 7)

    s3.put_object(Bucket=bucket, Key="in/day=2/b.jsonl", Body=_encode(creatives[20:]))  # fixed: only it is redone
    done: list[str] = []
    second = run_transform(job, on_file_done=lambda r: done.append(r.key)).to_dict()

    assert done == ["day=2/b.jsonl"]
    assert (second["status"], second["files"]["skipped"]) == ("Completed", 1)
    assert keys() == {f"scored/{CHECKPOINT}", "scored/day=1/a.jsonl.out", "scored/day=2/b.jsonl.out"}
