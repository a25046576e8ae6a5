"""Benchmark: the full handler chain (bytes in, bytes out) next to the raw forward pass, per model and batch size.

Prints one JSON document on stdout, and on stderr a table of the ratios against the targets: chain p50 at most
2x the forward pass p50 at batch 1 and 256, and 150,000 creatives/s through the chain for the n-gram models at
batch 256. The host's own work (decoding, featurizing, encoding) is the chain minus the forward pass; featurizing
is also timed alone. Runs unchanged on a GPU machine (CUDA is used when present, with synchronisation around
every timed call).

    python -m bench.handler_chain [--seconds 1.0] [--batch-sizes 1 16 256] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from creative_scoring.artifacts.archive import read_manifest, safe_extract
from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from creative_scoring.paths import MODEL_ARTIFACTS
from training.dataset import generate

JSON = "application/json"
LOADS = 5
NGRAM_TARGET_ROWS_PER_S = 150_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.handler_chain", description=__doc__.split("\n")[0])
    parser.add_argument("--artifacts", type=Path, default=MODEL_ARTIFACTS)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per measurement (default 1.0)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--models", nargs="*", default=[], help="model names (default: every archive)")
    args = parser.parse_args(argv)
    entries = [e for e in read_manifest(args.artifacts) if not args.models or e["name"] in args.models]
    if not entries:
        parser.error(f"no matching models in {args.artifacts}/manifest.json")
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        results = {e["name"]: _bench_model(e, args, Path(workdir)) for e in entries}
    print(json.dumps({"environment": _environment(), "seconds_per_measurement": args.seconds, "models": results}))
    _summary(results, {e["name"]: e["architecture"] for e in entries})
    return 0


def _summary(results: dict[str, Any], architectures: dict[str, str]) -> None:
    """The ratios and throughputs that the targets name, one line per model and batch size."""
    from creative_scorers import HASHED_NGRAM_MLP  # importable once training (above) has put the handler code in

    _progress(f"{'model':28} {'batch':>5} {'chain p50 ms':>12} {'forward p50':>11} {'ratio':>6} {'chain rows/s':>12}")
    for name, result in results.items():
        for size, run in result["batches"].items():
            targets = []
            if size in ("1", "256"):
                targets.append(("ratio <= 2x", run["chain_over_forward_p50"] <= 2))
            if size == "256" and architectures[name] == HASHED_NGRAM_MLP:
                targets.append(
                    (f">= {NGRAM_TARGET_ROWS_PER_S:,}/s", run["chain"]["rows_per_s"] >= NGRAM_TARGET_ROWS_PER_S)
                )
            verdict = ", ".join(f"{target}: {'met' if met else 'NOT met'}" for target, met in targets)
            _progress(
                f"{name:28} {size:>5} {run['chain']['p50_ms']:12.3f} {run['forward']['p50_ms']:11.3f} "
                f"{run['chain_over_forward_p50']:5.2f}x {run['chain']['rows_per_s']:12,.0f}  {verdict}"
            )


def _bench_model(entry: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    model_dir = safe_extract(args.artifacts / entry["archive"], workdir / entry["name"] / "model")
    handler = import_handler(model_dir / "code")
    chain = HandlerChain(handler)
    load_ms = [_timed(lambda: chain.load(model_dir)) * 1000 for _ in range(LOADS)]
    model = chain.load(model_dir)
    creatives = [{**c, "channel": entry["channels"][0]} for c in generate(max(args.batch_sizes), seed=99).creatives]
    result: dict[str, Any] = {
        "load_ms": {"median": round(statistics.median(load_ms), 2), "max": round(max(load_ms), 2)},
        "batches": {},
    }
    for size in args.batch_sizes:
        _progress(f"{entry['name']}: batch {size}")
        body = json.dumps({"instances": creatives[:size]}).encode()
        parsed = handler.input_fn(body, JSON)
        features = {k: v.to(model.device) for k, v in model.net.featurize(parsed).items()}
        chain_run = _measure(functools.partial(_invoke, chain, model, body), size, args.seconds)
        forward_run = _measure(functools.partial(_forward, model.net, features), size, args.seconds)
        featurize_run = _measure(functools.partial(model.net.featurize, parsed), size, args.seconds)
        result["batches"][str(size)] = {
            "chain": chain_run,
            "forward": forward_run,
            "featurize": featurize_run,
            "host_p50_ms": round(chain_run["p50_ms"] - forward_run["p50_ms"], 4),
            "chain_over_forward_p50": round(chain_run["p50_ms"] / forward_run["p50_ms"], 2),
        }
    return result


def _invoke(chain: HandlerChain, model: Any, body: bytes) -> None:
    response = chain.invoke(model, body, JSON, JSON)
    if response.status != 200:
        raise RuntimeError(f"the handler chain answered {response.status}: {response.body!r}")


def _forward(net: torch.nn.Module, features: dict[str, torch.Tensor]) -> None:
    with torch.inference_mode():
        net(features)


def _timed(fn: Callable[[], object]) -> float:
    _sync()
    started = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - started


def _measure(fn: Callable[[], object], rows: int, seconds: float) -> dict[str, float]:
    for _ in range(5):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 20:
        samples.append(_timed(fn))
    samples.sort()
    p50 = samples[len(samples) // 2]
    return {
        "rows_per_s": round(rows * len(samples) / sum(samples), 1),
        "p50_ms": round(p50 * 1000, 4),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 4),
        "calls": len(samples),
    }


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _environment() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
