"""``creative-scoring transform ...``: a job from the command line; the result as JSON on stdout, messages on stderr."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

from creative_scoring.artifacts.transform_request import (
    DEFAULT_MAX_PAYLOAD_MB,
    DEFAULT_MAX_RETRIES,
    JSONLINES,
    TransformError,
)
from creative_scoring.paths import MODEL_ARTIFACTS
from local_endpoint.transform.job import TransformJob
from local_endpoint.transform.runner import run_transform

_USAGE_EXAMPLE = """\
example (JSON Lines in, one prediction per line out):
  creative-scoring transform --model creative-scorer-v1 --input creatives/ --output scored/ \\
      --content-type application/jsonlines --accept application/jsonlines \\
      --split-type Line --batch-strategy MultiRecord --assemble-with Line --workers 2

exit status: 0 every input succeeded; 1 some input failed (see <input>.out.failed.json);
2 invalid settings or the job could not start; 130 interrupted (rerun the same command to resume).
"""


def build_parser() -> argparse.ArgumentParser:
    """The options, each stored under its `TransformJob` field (``--workers``: ``max_concurrent_transforms``)."""
    parser = argparse.ArgumentParser(
        prog="creative-scoring transform",
        description="Run a SageMaker batch transform job on this machine, the model in-process.",
        epilog=_USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--model", required=True, help="model archive: a .tar.gz path, s3:// URI or model name")
    add("--input", required=True, help="input folder, file or s3://bucket/prefix (S3DataSource)")
    add("--output", required=True, help="output folder or s3://bucket/prefix (S3OutputPath)")
    add("--content-type", default=JSONLINES, help=f"ContentType of each request (default {JSONLINES})")
    add("--accept", help="Accept of each request (default: none sent; the model's default type)")
    add("--split-type", default="None", help="SplitType: None (whole objects, default) or Line")
    add("--compression-type", default="None", help="CompressionType: None (default) or Gzip (inputs are gunzipped)")
    add("--batch-strategy", help="BatchStrategy with --split-type Line: SingleRecord (default) or MultiRecord")
    add("--max-payload-mb", type=int, default=DEFAULT_MAX_PAYLOAD_MB, help="MaxPayloadInMB, 1..100 (default 6)")
    add("--assemble-with", default="None", help="AssembleWith: None (default) or Line")
    add(
        "--workers",
        dest="max_concurrent_transforms",
        metavar="WORKERS",
        type=int,
        default=1,
        help="MaxConcurrentTransforms: mini-batches in flight",
    )
    add(
        "--max-retries",
        dest="invocation_max_retries",
        metavar="MAX_RETRIES",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help="InvocationsMaxRetries for 5xx, 0..3 (default 3)",
    )
    add(
        "--env",
        dest="environment",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Environment for the model (repeatable)",
    )
    add("--s3-endpoint-url", help="S3 endpoint for s3:// locations (e.g. the local endpoint's S3)")
    add("--models-dir", type=Path, default=MODEL_ARTIFACTS, help="folder that --model names are looked up in")
    add("--workdir", type=Path, help="where the archive is extracted (default: a temporary folder)")
    add("--no-progress", dest="progress", action="store_false", help="no progress line on stderr")
    return parser


def run_cli(argv: list[str]) -> int:
    """``creative-scoring transform ...``: the result as JSON on stdout; messages, never tracebacks."""
    try:
        options = vars(build_parser().parse_args(argv))
    except SystemExit as e:  # --help (0) or a usage error (2), already printed by argparse
        return e.code if isinstance(e.code, int) else 2
    progress = options.pop("progress")
    pairs = [item.partition("=") for item in options["environment"]]
    if bad := [key for key, sep, _ in pairs if not sep]:
        print(f"error: --env {bad[0]!r}: write KEY=VALUE", file=sys.stderr)
        return 2
    options["environment"] = {key: value for key, _, value in pairs}
    try:
        result = run_transform(TransformJob(**options), progress=progress)
    except TransformError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # the model may still be finishing a mini-batch in a thread the interpreter waits for at exit: another
        # Ctrl-C ends the process at once (status 130), without Python's KeyboardInterrupt traceback
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        print("interrupted: finished inputs are checkpointed; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # no traceback for the user; the message names what failed
        print(f"error: the transform stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2))
    return 0 if result.ok else 1
