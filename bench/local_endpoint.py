"""Benchmark of the local endpoint: the embedded backend against the real stack (Multi Model Server + toolkit),
both behind the front, and each model server with the front bypassed; in one run, on the same model.

For each setup and concurrency (1, 8, 32): requests/s and p50/p99 latency from wrk (one creative per request
to creative-scorer-v1); then the cold first invocation of every model and the resident memory of the whole
process tree with all reference models loaded. JSON on stdout, progress on stderr.

    python -m bench.local_endpoint [--seconds 10] [--concurrency 1 8 32]

Needs wrk (Debian package ``wrk``) and, for the real stack, a Java runtime.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench.processes import local_endpoint, progress, stop_tree
from creative_scoring.artifacts.archive import read_manifest, safe_extract
from creative_scoring.net import free_port, wait_until_serving
from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES
from local_endpoint.headers import TARGET_MODEL
from local_endpoint.real_stack import RealStackServer, available

ARTIFACTS = MODEL_ARTIFACTS
ENDPOINT = "creative-scoring-dev"
MODEL = "creative-scorer-v1"
SAMPLE = json.dumps(json.loads((SAMPLES / "creatives.json").read_text())["instances"][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.local_endpoint", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per load point (default 10)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    missing = available()
    if missing:
        parser.error(f"the real stack cannot run here: {missing}")
    results: dict[str, Any] = {"model": MODEL, "seconds_per_point": args.seconds, "throughput": {}}
    with tempfile.TemporaryDirectory(prefix="bench-local-") as scratch:
        work = Path(scratch)
        for backend in ("embedded", "real-stack"):
            with local_endpoint(work / backend, "--env", "dev", "--backend", backend) as url:
                progress(f"front + {backend}: cold invocations")
                results.setdefault("cold_first_invoke_ms", {})[backend] = _cold_invocations(url)
                results.setdefault("rss_mb_all_models_loaded", {})[backend] = _rss_mb(url, work / backend)
                headers = {TARGET_MODEL: f"{MODEL}.tar.gz"}
                path = f"/endpoints/{ENDPOINT}/invocations"
                results["throughput"][f"front+{backend}"] = _load_points(url + path, headers, args)
        for backend in ("embedded", "real-stack"):
            with _bare_container(work / f"bare-{backend}", backend) as url:
                results["throughput"][f"{backend} (front bypassed)"] = _load_points(
                    f"{url}/models/{MODEL}/invoke", {}, args
                )
    results["ratios"] = _ratios(results["throughput"])
    print(json.dumps(results, indent=2))
    return 0


@contextmanager
def _bare_container(work: Path, backend: str) -> Iterator[str]:
    """A model server with ``MODEL`` registered, reached without the front."""
    model_dir = safe_extract(ARTIFACTS / f"{MODEL}.tar.gz", work / "models" / MODEL / "model")
    if backend == "real-stack":
        with RealStackServer(workdir=work / "mms", port=free_port()) as server:  # entering starts it
            _register(server.url, model_dir)
            yield server.url
        return
    port = free_port()
    command = [sys.executable, "-m", "creative_scoring", "model-server", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/ping", timeout_s=180, process=process)
        _register(url, model_dir)
        yield url
    finally:
        stop_tree(process.pid)


def _register(url: str, model_dir: Path) -> None:
    body = json.dumps({"model_name": MODEL, "url": str(model_dir)}).encode()
    request = urllib.request.Request(f"{url}/models", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def _cold_invocations(url: str) -> dict[str, float]:
    cold = {}
    for entry in read_manifest(ARTIFACTS):
        started = time.perf_counter()
        _invoke(url, entry["archive"])
        cold[entry["name"]] = round((time.perf_counter() - started) * 1000, 1)
    return cold


def _invoke(url: str, target: str) -> None:
    instance = json.loads(SAMPLE) | {"channel": "social"}
    request = urllib.request.Request(
        f"{url}/endpoints/{ENDPOINT}/invocations",
        json.dumps(instance).encode(),
        {"Content-Type": "application/json", TARGET_MODEL: target},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def _rss_mb(url: str, work: Path) -> float:
    """Resident memory of the front, its children, and every process started with a path in its work folder
    (Multi Model Server daemonizes: Java and its Python workers are not the front's children)."""
    port = int(url.rsplit(":", 1)[1])
    front = next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid)
    processes = {p.pid: p for p in [psutil.Process(front), *psutil.Process(front).children(recursive=True)]}
    for process in psutil.process_iter(["cmdline"]):
        if any(str(work) in part for part in process.info["cmdline"] or []):
            processes[process.pid] = process
    return round(float(sum(p.memory_info().rss for p in processes.values())) / 2**20, 1)


def _load_points(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    script = _wrk_script(headers)
    points = {}
    for connections in args.concurrency:
        progress(f"  {url} c={connections}")
        _wrk(url, script, connections, 2)  # warm-up
        points[f"c{connections}"] = _wrk(url, script, connections, args.seconds)
    return points


def _wrk_script(headers: dict[str, str]) -> Path:
    headers = {"Content-Type": "application/json", **headers}
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(SAMPLE)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path = Path(tempfile.mkstemp(suffix=".lua")[1])
    path.write_text("\n".join(lines) + "\n")
    return path


def _wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url} answered {errors[1]} errors under load:\n{output}")
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),  # type: ignore[index]
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
    }


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def _ratios(throughput: dict[str, Any]) -> dict[str, float]:
    """Embedded over real stack, both behind the front; and the whole local endpoint over the bare Multi Model Server.

    The second is the bar the local endpoint has to clear: with its front, the embedded backend serves at least
    what Multi Model Server serves with no front at all.
    """
    embedded, real = throughput["front+embedded"], throughput["front+real-stack"]
    bare_real = throughput["real-stack (front bypassed)"]
    ratios = {}
    for point in embedded:
        ratios[f"throughput_{point}"] = round(embedded[point]["requests_per_s"] / real[point]["requests_per_s"], 2)
        ratios[f"p99_{point}"] = round(embedded[point]["p99_ms"] / real[point]["p99_ms"], 2)
        ratios[f"throughput_{point}_over_bare_real_stack"] = round(
            embedded[point]["requests_per_s"] / bare_real[point]["requests_per_s"], 2
        )
    return ratios


if __name__ == "__main__":
    sys.exit(main())
