"""Throughput of the local batch transform (``local_endpoint/transform/``) in creatives per second.

N generated creatives (``training.dataset.generate``) in JSON Lines files are transformed with SplitType Line,
JSON Lines in and out, AssembleWith Line, for BatchStrategy MultiRecord and SingleRecord, with 1 and 2 workers
(MaxConcurrentTransforms). A job's time runs from the start to the last output written: listing, model
extraction and load (about 0.3 s) included. The reference, in the same run, is the model's handler chain
(``input_fn``, ``predict_fn``, ``output_fn``) called in this process on the same JSON Lines in mini-batches of
the same size, with no server, files or splitting. JSON on stdout, progress on stderr.

    python -m bench.batch_transform [--creatives 100000] [--files 4] [--model creative-scorer-v1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from creative_scoring.artifacts.archive import safe_extract
from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from creative_scoring.artifacts.transform_request import DEFAULT_MAX_PAYLOAD_MB
from creative_scoring.paths import MODEL_ARTIFACTS
from local_endpoint.transform import TransformJob, run_transform
from local_endpoint.transform.model import resolve_model
from training.dataset import generate

JSONLINES = "application/jsonlines"
ARTIFACTS = MODEL_ARTIFACTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_transform", description=__doc__.split("\n")[0])
    parser.add_argument("--creatives", type=int, default=100_000, help="creatives to transform (default 100000)")
    parser.add_argument("--files", type=int, default=4, help="input files they are split into (default 4)")
    parser.add_argument("--model", default="creative-scorer-v1", help="model name or archive")
    parser.add_argument("--max-payload-mb", type=int, default=DEFAULT_MAX_PAYLOAD_MB, help="MaxPayloadInMB")
    parser.add_argument("--strategies", nargs="+", default=["MultiRecord", "SingleRecord"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "model": args.model,
        "creatives": args.creatives,
        "files": args.files,
        "max_payload_mb": args.max_payload_mb,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "creatives_per_second": {},
        "seconds": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as scratch:
        work = Path(scratch)
        _progress(f"generating {args.creatives:,} creatives")
        creatives = generate(args.creatives, seed=1).creatives
        per_file = -(-len(creatives) // args.files)
        for index in range(args.files):
            chunk = creatives[index * per_file : (index + 1) * per_file]
            (work / "in").mkdir(exist_ok=True)
            (work / "in" / f"part-{index:03d}.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chunk))
        for strategy in args.strategies:
            for workers in args.workers:
                name = f"{strategy}/workers={workers}"
                _progress(f"transform {name}")
                job = TransformJob(
                    model=args.model,
                    input=str(work / "in"),
                    output=str(work / f"out-{strategy}-{workers}"),
                    content_type=JSONLINES,
                    accept=JSONLINES,
                    split_type="Line",
                    batch_strategy=strategy,
                    max_payload_mb=args.max_payload_mb,
                    assemble_with="Line",
                    max_concurrent_transforms=workers,
                    workdir=work / "model",
                )
                started = time.perf_counter()
                result = run_transform(job)
                seconds = time.perf_counter() - started
                summary = result.to_dict()
                if not result.ok or summary["records"]["succeeded"] != args.creatives:
                    print(f"{name} failed: {json.dumps(summary['failures'])[:2000]}", file=sys.stderr)
                    return 1
                results["seconds"][name] = round(seconds, 2)
                results["creatives_per_second"][name] = round(args.creatives / seconds)
        _progress("reference: the handler chain in this process")
        reference = _handler_chain_rate(creatives, args, work / "reference")
    results["reference_handler_chain_creatives_per_second"] = reference
    results["ratios"] = {f"{name} / handler chain": round(rate / reference, 2)
                         for name, rate in results["creatives_per_second"].items()}  # fmt: skip
    print(json.dumps(results, indent=2))
    return 0


def _handler_chain_rate(creatives: list[dict[str, Any]], args: argparse.Namespace, work: Path) -> int:
    """Creatives per second through input_fn, predict_fn and output_fn, one MultiRecord-sized body at a time."""
    os.environ["SAGEMAKER_BATCH"] = "true"  # as in a transform container: the handler's batch limit
    model_dir = safe_extract(resolve_model(args.model, ARTIFACTS), work / "model")
    chain = HandlerChain(import_handler(model_dir / "code"))
    model = chain.load(model_dir)
    limit, bodies, lines = args.max_payload_mb * 1024 * 1024, [], b""
    for creative in creatives:
        line = json.dumps(creative).encode() + b"\n"
        if lines and len(lines) + len(line) > limit:
            bodies.append(lines)
            lines = b""
        lines += line
    bodies.append(lines)
    started = time.perf_counter()
    for body in bodies:
        response = chain.invoke(model, body, JSONLINES, JSONLINES)
        if response.status != 200:
            raise RuntimeError(f"the handler chain answered {response.status}: {response.body[:500]!r}")
    return round(len(creatives) / (time.perf_counter() - started))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
