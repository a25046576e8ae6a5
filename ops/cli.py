"""``creative-scoring sagemaker``: operations on a deployed environment that CloudFormation has no resource for.

creative-scoring sagemaker transform --env dev --endpoint creative-scoring-dev-async \\
    --input s3://BUCKET/batch/creative-scoring-dev-async/input/2025-01-01/  # output: the stack's prefix + job name
creative-scoring sagemaker transform --model NAME --input ... --output ... --no-wait  # returns once created
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from creative_scoring.config.naming import stack_name
from ops import aws
from ops import transform as job

EXIT_OK, EXIT_JOB_FAILED, EXIT_INVALID, EXIT_AWS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULTS = {f.name: f.default for f in fields(job.TransformRequest)}
POSITIONAL = ("job_name", "model_name", "input_uri", "output_uri")  # build_request's named arguments
EPILOG = """\
Without --output the results go to the stack output <Endpoint>BatchOutputPath + <job name>/, the prefix the
Model's role may write. Ctrl-C stops the waiting, not the job; it prints how to follow or stop the job.

exit codes: 0 job completed (or created, with --no-wait); 1 job Failed or Stopped; 2 invalid arguments;
3 an AWS call failed (credentials, permissions, missing stack); 130 interrupted (Ctrl-C). Limits and the API
each option maps to: docs/batch-transform.md."""


def main(argv: list[str] | None = None, client_factory: aws.ClientFactory = aws.boto3_client) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if not (args.model or args.endpoint):
            parser.error("pass --endpoint (its Model is read from the stack outputs) or --model NAME")
        if not (args.output or args.endpoint):
            parser.error("pass --output S3_URI, or --endpoint to write under the stack's <Endpoint>BatchOutputPath")
    except SystemExit as e:  # --help and usage errors: argparse has printed them
        return e.code if isinstance(e.code, int) else EXIT_INVALID
    try:
        description = _transform(args, client_factory)
    except job.JobFailed as e:
        print(e, file=sys.stderr)
        return EXIT_JOB_FAILED
    except job.TransformError as e:
        print(f"invalid transform request: {e}", file=sys.stderr)
        return EXIT_INVALID
    except job.AwsCallError as e:
        print(_aws_error(e, args.region), file=sys.stderr)
        return EXIT_AWS
    except job.Interrupted as e:  # a KeyboardInterrupt, so caught first
        print(_interrupted(e, args.region), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted before a transform job was created: nothing was started", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        shown = {k: v for k, v in description.items() if k != "ResponseMetadata"}
        print(json.dumps(shown, indent=2, default=str))
    else:
        print(summary(description, args.region))
    return EXIT_OK


def _transform(args: argparse.Namespace, client_factory: aws.ClientFactory) -> dict[str, Any]:
    stack = stack_name(args.env)
    outputs: dict[str, str] = {}
    if args.endpoint and not (args.model and args.output):  # one DescribeStacks for the Model and the output
        outputs = job.stack_outputs(aws.client(client_factory, "cloudformation", args.region), stack)
    model = args.model or job.find_model(None, stack, args.endpoint, outputs)
    job_name = args.job_name or default_job_name(args.endpoint or model, datetime.now(UTC))
    output = args.output or job.default_output_uri(outputs, stack, args.endpoint, job_name)
    request = job.build_request(job_name, model, args.input, output, **_options(args))
    sagemaker = aws.client(client_factory, "sagemaker", args.region)
    return job.run(sagemaker, request, wait=not args.no_wait, poll_s=args.poll_s, progress=_progress)


def _aws_error(e: job.AwsCallError, region: str | None) -> str:
    hints = [e.hint()]
    if e.api == "DescribeTransformJob" and e.job_name:
        hints.append(
            f"transform job {e.job_name} was created and keeps running; "
            f"follow it: {_aws_cli('describe', e.job_name, region)}"
        )
    return "; ".join(hints)


def _interrupted(e: job.Interrupted, region: str | None) -> str:
    stop = f"stop it: {_aws_cli('stop', e.job_name, region)}"
    if e.created is None:
        return (
            f"interrupted while creating transform job {e.job_name}: it may exist and run. "
            f"Check: {_aws_cli('describe', e.job_name, region)}; {stop}"
        )
    return (
        f"interrupted: transform job {e.job_name} keeps running (Ctrl-C stops only the waiting). "
        f"Follow it: {_aws_cli('describe', e.job_name, region)}; {stop}"
    )


def _aws_cli(verb: str, job_name: str, region: str | None) -> str:
    where = f" --region {region}" if region else ""
    return f"aws sagemaker {verb}-transform-job --transform-job-name {job_name}{where}"


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options = {name: getattr(args, name) for name in DEFAULTS if name not in POSITIONAL}
    options["batch_strategy"] = None if args.batch_strategy == "None" else args.batch_strategy
    options["environment"] = dict(args.environment or [])
    return options


def default_job_name(base: str, now: datetime) -> str:
    """``<base>-YYYYmmdd-HHMMSS``, ``base`` cut so the name fits TransformJobName's 63 characters."""
    return f"{base[:47].rstrip('-')}-{now:%Y%m%d-%H%M%S}"


def summary(description: dict[str, Any], region: str | None = None) -> str:
    """What a person needs from the last DescribeTransformJob response: status, where the results are."""
    name, status = description["TransformJobName"], description["TransformJobStatus"]
    lines = [
        f"transform job {name}: {status}",
        f"  model   {description['ModelName']}",
        f"  input   {description['TransformInput']['DataSource']['S3DataSource']['S3Uri']}",
        f"  output  {description.get('TransformOutput', {}).get('S3OutputPath')} (<input key>.out per input object)",
        f"  arn     {description['TransformJobArn']}",
    ]
    if status not in ("Completed", "Failed", "Stopped"):
        lines.append(f"follow it: {_aws_cli('describe', name, region)}")
    return "\n".join(lines)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds, 0 or more")
    return seconds


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="creative-scoring sagemaker", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    transform = commands.add_parser(
        "transform",
        help="run a batch transform job on a deployed Model",
        description="Run a SageMaker batch transform job on the Model behind an endpoint of a deployed stack.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _where(transform.add_argument_group("model and data"))
    _how(transform.add_argument_group("records and payloads (TransformInput, TransformOutput, limits)"))
    _resources(transform.add_argument_group("instances and the container"))
    _run(transform.add_argument_group("running"))
    return parser


def _where(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--env", default="dev", help="the Model is read from stack CreativeScoring-ENV (default: dev)")
    group.add_argument("--endpoint", help="endpoint whose Model to use, e.g. creative-scoring-dev-async")
    group.add_argument("--model", help="SageMaker Model name; with --output, skips the stack lookup")
    group.add_argument("--input", required=True, metavar="S3_URI", help="S3 prefix or object: s3://bucket/key")
    group.add_argument(
        "--output",
        metavar="S3_URI",
        help="S3 prefix for the results (default with --endpoint: the stack output <Endpoint>BatchOutputPath "
        "+ JOB_NAME/)",
    )
    group.add_argument("--job-name", help="TransformJobName (default: ENDPOINT-YYYYmmdd-HHMMSS, UTC)")
    group.add_argument("--region", help="AWS region (default: the configured one)")


def _how(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--content-type", default=DEFAULTS["content_type"], help=_default("ContentType of requests"))
    group.add_argument("--split-type", choices=["None", "Line"], default=DEFAULTS["split_type"], help=_default(""))
    group.add_argument(
        "--compression",
        dest="compression_type",
        choices=["None", "Gzip"],
        default=DEFAULTS["compression_type"],
        help=_default(""),
    )
    group.add_argument(
        "--batch-strategy",
        choices=["SingleRecord", "MultiRecord", "None"],
        default="None",
        help=_default("needs --split-type Line; None omits it"),
    )
    group.add_argument(
        "--max-payload-mb", type=int, default=DEFAULTS["max_payload_mb"], metavar="N", help=_default("0..100")
    )
    group.add_argument(
        "--max-concurrent-transforms",
        type=int,
        default=DEFAULTS["max_concurrent_transforms"],
        metavar="N",
        help=_default(
            "per instance, 0: SageMaker decides (1 without execution-parameters); times --max-payload-mb at most 100"
        ),
    )
    group.add_argument(
        "--assemble-with", choices=["None", "Line"], default=DEFAULTS["assemble_with"], help=_default("")
    )
    group.add_argument("--accept", help="Accept of requests (default: none sent; the model's default type)")
    group.add_argument("--kms-key-id", help="KMS key for the output objects (default: the bucket's encryption)")


def _resources(group: argparse._ArgumentGroup) -> None:
    types = len(job.transform_instance_types())
    group.add_argument(
        "--instance-type",
        default=DEFAULTS["instance_type"],
        metavar="TYPE",
        help=_default(f"one of the {types} batch transform types of botocore's SageMaker model"),
    )
    group.add_argument("--instance-count", type=int, default=DEFAULTS["instance_count"], metavar="N", help=_default(""))
    group.add_argument(
        "--invocation-timeout-s",
        type=int,
        default=DEFAULTS["invocation_timeout_s"],
        metavar="S",
        help=_default("seconds per request, 1..3600"),
    )
    group.add_argument(
        "--invocation-max-retries",
        type=int,
        default=DEFAULTS["invocation_max_retries"],
        metavar="N",
        help=_default("retries of a failed request, 0..3"),
    )
    group.add_argument(
        "--container-env",
        dest="environment",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="container environment variable, repeatable (at most 16)",
    )


def _run(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--no-wait", action="store_true", help="return once the job is created")
    group.add_argument(
        "--poll-s",
        type=_seconds,
        default=30.0,
        metavar="S",
        help=_default("seconds between DescribeTransformJob; the status is printed when it changes and every 10 min"),
    )
    group.add_argument("--json", action="store_true", help="print the last DescribeTransformJob response as JSON")


def _default(text: str) -> str:
    return f"{text} (default: %(default)s)".lstrip()


if __name__ == "__main__":
    sys.exit(main())
