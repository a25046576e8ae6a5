"""``creative-scoring train``: build the reference models' archives, and score the sample creatives on them."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from creative_scoring.paths import MODEL_ARTIFACTS, SAMPLES

app = typer.Typer(help="Train the reference models and check their archives.", no_args_is_help=True)


@app.command()
def build(
    artifacts: Annotated[Path, typer.Option(help="Folder of the archives and manifest.json.")] = MODEL_ARTIFACTS,
    only: Annotated[list[str] | None, typer.Option(help="Build only this model (repeatable).")] = None,
) -> None:
    """Train every reference model (or --only some), package its archive and rewrite the manifest."""
    from training.build import build as build_models
    from training.train import REFERENCE_MODELS

    known = [spec.name for spec in REFERENCE_MODELS]
    if unknown := sorted(set(only or ()) - set(known)):
        raise typer.BadParameter(f"unknown model(s) {unknown}; known: {known}", param_hint="--only")
    build_models(artifacts, only=tuple(only or ()), progress=lambda line: print(line, file=sys.stderr))


@app.command()
def samples(
    artifacts: Annotated[Path, typer.Option(help="Folder of the archives and manifest.json.")] = MODEL_ARTIFACTS,
    samples_dir: Annotated[Path, typer.Option("--samples", help="Folder of sample requests.")] = SAMPLES,
) -> None:
    """Score the sample creatives on every archive through the handler chain, without a server."""
    from training.samples import score_samples

    with tempfile.TemporaryDirectory(prefix="creative-scoring-") as workdir:
        raise typer.Exit(score_samples(artifacts, samples_dir, Path(workdir)))
