"""End-to-end latency of the local endpoint's InvokeEndpointAsync at a given queue depth, next to the same
model's real-time latency (the reference), in one run.

The local endpoint serves the dev environment (``creative-scoring-dev-async``: creative-scorer-v2, 4 concurrent
invocations per instance, 1 instance) with its defaults: its own S3 server (SeaweedFS) on loopback. For each
queue depth D, D requests (each an S3 object of ``--creatives`` creatives) are submitted back to back with boto3
``invoke_endpoint_async``;
a request's latency runs from just before its call to the first time a listing of the output prefix shows its
output object, which is how a client polling S3 sees it (polls every ``--poll-ms``). The reference is
``invoke_endpoint`` of the same body to the same model through the multi-model endpoint, one call at a time.
JSON on stdout, progress on stderr.

    python -m bench.async_inference [--depths 1 16 64] [--creatives 10] [--reference-calls 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from bench.processes import local_endpoint, progress
from training.dataset import generate

ASYNC_ENDPOINT = "creative-scoring-dev-async"
REALTIME_ENDPOINT = "creative-scoring-dev"
MODEL_ARCHIVE = "creative-scorer-v2.tar.gz"
INPUTS = "bench-async-inputs"
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.async_inference", description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 16, 64], help="queue depths (default 1 16 64)")
    parser.add_argument("--creatives", type=int, default=10, help="creatives per request (default 10)")
    parser.add_argument("--reference-calls", type=int, default=50, help="real-time calls for the reference")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="S3 listing interval (default 10 ms)")
    args = parser.parse_args(argv)
    if min(args.depths) < 1 or args.creatives < 1 or args.reference_calls < 1:
        parser.error("--depths, --creatives and --reference-calls must be at least 1")

    body = json.dumps({"instances": generate(args.creatives, seed=11).creatives}).encode()
    with (
        tempfile.TemporaryDirectory(prefix="bench-async-") as scratch,
        local_endpoint(Path(scratch), "--env", "dev") as url,
    ):
        server = json.loads((Path(scratch) / "state" / "s3" / "server.json").read_text())
        s3 = boto3.client("s3", endpoint_url=server["endpoint_url"], **CREDENTIALS)
        s3.create_bucket(Bucket=INPUTS)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, **CREDENTIALS)
        progress(f"reference: {args.reference_calls} real-time calls")
        reference = _realtime_ms(runtime, body, args.reference_calls)
        _depth(runtime, s3, body, 1, args.poll_ms / 1000)  # warm-up: first S3 and model calls
        depths = {}
        for depth in args.depths:
            progress(f"queue depth {depth}")
            depths[str(depth)] = _depth(runtime, s3, body, depth, args.poll_ms / 1000)

    results: dict[str, Any] = {
        "endpoint": ASYNC_ENDPOINT,
        "model": MODEL_ARCHIVE,
        "creatives_per_request": args.creatives,
        "request_bytes": len(body),
        "poll_ms": args.poll_ms,
        "reference_realtime_ms": reference,
        "async_end_to_end_ms": depths,
        "ratios": {
            f"async p50 at depth {d} / real-time p50": round(r["p50"] / reference["p50"], 2) for d, r in depths.items()
        },
    }
    print(json.dumps(results, indent=2))
    return 0


def _realtime_ms(runtime: Any, body: bytes, calls: int) -> dict[str, float]:
    latencies = []
    for _ in range(calls + 1):
        started = time.perf_counter()
        response = runtime.invoke_endpoint(
            EndpointName=REALTIME_ENDPOINT, TargetModel=MODEL_ARCHIVE, Body=body, ContentType="application/json"
        )
        response["Body"].read()
        latencies.append((time.perf_counter() - started) * 1000)
    return _summary(latencies[1:])  # the first call loads the model into the multi-model cache


def _depth(runtime: Any, s3: Any, body: bytes, depth: int, poll_s: float) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}/{index:05d}.json" for index in range(depth)]
    for key in keys:
        s3.put_object(Bucket=INPUTS, Key=key, Body=body)
    submitted: dict[str, float] = {}
    failure_locations: set[str] = set()
    started = time.perf_counter()
    for key in keys:
        at = time.perf_counter()
        response = runtime.invoke_endpoint_async(
            EndpointName=ASYNC_ENDPOINT, InputLocation=f"s3://{INPUTS}/{key}", ContentType="application/json"
        )
        submitted[response["OutputLocation"]] = at
        failure_locations.add(response["FailureLocation"])
    done: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(done) < depth:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{depth - len(done)} of {depth} async results did not appear in 600 s")
        seen = _listed(s3, next(iter(submitted)))
        now = time.perf_counter()
        done.update({location: now for location in seen & submitted.keys() if location not in done})
        failed = _listed(s3, next(iter(failure_locations))) & failure_locations
        if failed:
            raise RuntimeError(f"{len(failed)} async requests failed, for example {min(failed)}")
        time.sleep(poll_s)
    summary = _summary([(done[location] - at) * 1000 for location, at in submitted.items()])
    drain_s = max(done.values()) - started
    return {**summary, "drain_s": round(drain_s, 3), "requests_per_s": round(depth / drain_s, 1)}


def _listed(s3: Any, sibling: str) -> set[str]:
    """Every object's ``s3://`` URI in the folder of ``sibling``."""
    bucket, _, key = sibling.removeprefix("s3://").partition("/")
    prefix = key.rsplit("/", 1)[0] + "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {f"s3://{bucket}/{item['Key']}" for page in pages for item in page.get("Contents", [])}


def _summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
    }


if __name__ == "__main__":
    sys.exit(main())
