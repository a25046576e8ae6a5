"""Score the sample creatives on every archive, extracted and loaded the way SageMaker does."""

from __future__ import annotations

import json
import time
from pathlib import Path

from creative_scoring.artifacts.archive import read_manifest, safe_extract
from creative_scoring.artifacts.handler_chain import HandlerChain, import_handler
from creative_scoring.artifacts.versions import samples


def score_samples(artifacts_dir: Path, samples_dir: Path, workdir: Path) -> int:
    """Print one line per (model, sample creative); return 1 if any request failed, else 0."""
    models = read_manifest(artifacts_dir)
    if not models:
        print(f"no models in {artifacts_dir}: run `creative-scoring train build` first")
        return 1
    requests = samples(samples_dir)
    failed = False
    print(f"{'model':<27} {'version':<8} {'sample':<16} {'creative_id':<14} score")
    for entry in models:
        model_dir = safe_extract(artifacts_dir / entry["archive"], workdir / entry["name"] / "model")
        chain = HandlerChain(import_handler(model_dir / "code"))
        started = time.perf_counter()
        model = chain.load(model_dir)
        print(f"# {entry['name']}: model_fn took {(time.perf_counter() - started) * 1000:.0f} ms")
        for sample, body, content_type in requests:
            response = chain.invoke(model, body, content_type, "application/json")
            if response.status != 200:
                print(
                    f"{entry['name']:<27} {entry['version']:<8} {sample:<16} HTTP {response.status}: "
                    f"{response.body.decode()}"
                )
                failed = failed or response.status >= 500
                continue
            for p in json.loads(response.body)["predictions"]:
                print(f"{p['model']:<27} {p['model_version']:<8} {sample:<16} {p['creative_id']:<14} {p['score']:.4f}")
    return 1 if failed else 0
