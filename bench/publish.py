"""Benchmark of publish-to-first-answer on the local endpoint, next to the way without publishing: copying the
archive into the models folder and restarting the endpoint. In one run, on the same archive, each way
``--repeat`` times.

- publish: ``creative-scoring models publish ARCHIVE --name NAME --local`` against the running endpoint (package,
  check by loading and scoring the samples, store), then the first ``InvokeEndpoint`` with ``TargetModel``
  answered; the endpoint keeps serving throughout.
- restart: copy the archive into the models folder, start the endpoint, first answer (stopping the previous
  one is not counted, in favour of this way).

While publishing, another client keeps invoking a reference model; the failures it saw are reported (a restart
answers nothing from stop to ready). JSON on stdout (seconds, medians, the ratio restart / publish), progress
on stderr.

    python -m bench.publish [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from bench.processes import local_endpoint, progress
from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES

ENDPOINT = "creative-scoring-dev"
ARCHIVE = MODEL_ARTIFACTS / "creative-scorer-v2.tar.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each way (default 3)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as scratch:
        work = Path(scratch)
        published, served, failed = _publish_times(work / "publish", args.repeat)
        restarted = _restart_times(work / "restart", args.repeat)
    result = {
        "archive": ARCHIVE.name,
        "publish_to_first_answer_s": [round(s, 3) for s in published],
        "restart_to_first_answer_s": [round(s, 3) for s in restarted],
        "publish_median_s": round(statistics.median(published), 3),
        "restart_median_s": round(statistics.median(restarted), 3),
        "restart_over_publish": round(statistics.median(restarted) / statistics.median(published), 2),
        "other_model_requests_during_publish": served,
        "other_model_requests_failed_during_publish": failed,
    }
    print(json.dumps(result, indent=2))
    return 0


def _publish_times(work: Path, repeat: int) -> tuple[list[float], int, int]:
    times: list[float] = []
    with local_endpoint(work, "--env", "dev") as url, _traffic(url) as counts:
        for attempt in range(repeat):
            name = f"bench-{attempt}"
            started = time.perf_counter()
            command = [sys.executable, "-m", "creative_scoring", "models", "publish", str(ARCHIVE), "--name", name]
            command += ["--local", "--url", url, "--no-verify"]
            subprocess.run(command, check=True, capture_output=True, timeout=300)
            _first_answer(url, f"{name}.tar.gz")
            times.append(time.perf_counter() - started)
            progress(f"publish {attempt + 1}/{repeat}: {times[-1]:.2f} s")
    return times, counts["served"], counts["failed"]


@contextmanager
def _traffic(url: str) -> Iterator[dict[str, int]]:
    """Invoke creative-scorer-v1 in a loop on another thread until the block ends; count answers and failures."""
    counts = {"served": 0, "failed": 0}
    done = threading.Event()

    def invoke() -> None:
        while not done.is_set():
            try:
                _first_answer(url, "creative-scorer-v1.tar.gz")
                counts["served"] += 1
            except Exception:  # any failure counts; the benchmark reports them
                counts["failed"] += 1
            time.sleep(0.05)

    worker = threading.Thread(target=invoke, daemon=True)
    worker.start()
    try:
        yield counts
    finally:
        done.set()
        worker.join()


def _restart_times(work: Path, repeat: int) -> list[float]:
    models = work / "model_artifacts"
    shutil.copytree(MODEL_ARTIFACTS, models)
    times = []
    for attempt in range(repeat):
        started = time.perf_counter()
        shutil.copy(ARCHIVE, models / f"bench-{attempt}.tar.gz")
        with local_endpoint(work / str(attempt), "--env", "dev", "--models-dir", str(models)) as url:
            _first_answer(url, f"bench-{attempt}.tar.gz")
            times.append(time.perf_counter() - started)
        progress(f"restart {attempt + 1}/{repeat}: {times[-1]:.2f} s")
    return times


def _first_answer(url: str, target: str) -> None:
    client = boto3.client(
        "sagemaker-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    response = client.invoke_endpoint(
        EndpointName=ENDPOINT,
        TargetModel=target,
        Body=(SAMPLES / "creatives.json").read_bytes(),
        ContentType="application/json",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


if __name__ == "__main__":
    sys.exit(main())
