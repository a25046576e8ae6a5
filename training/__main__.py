"""Command line: ``python -m training build`` trains and packages the models; ``score`` runs the samples."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from training.build import build
from training.samples import score_samples

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="train every reference model and write its archive")
    build_cmd.add_argument("--artifacts", type=Path, default=ROOT / "model_artifacts", help="output folder")
    build_cmd.add_argument("--only", nargs="*", default=[], metavar="NAME", help="build only these models")
    score_cmd = commands.add_parser("score", help="score the sample creatives on every archive")
    score_cmd.add_argument("--artifacts", type=Path, default=ROOT / "model_artifacts", help="archives folder")
    score_cmd.add_argument("--samples", type=Path, default=ROOT / "inference" / "samples", help="samples folder")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.artifacts, only=tuple(args.only), progress=lambda line: print(line, file=sys.stderr))
        return 0
    with tempfile.TemporaryDirectory(prefix="creative-scoring-") as workdir:
        return score_samples(args.artifacts, args.samples, Path(workdir))


if __name__ == "__main__":
    sys.exit(main())
