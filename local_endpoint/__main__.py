"""``python -m local_endpoint``: serve an environment's SageMaker endpoints on this machine.

python -m local_endpoint serve --env dev                 # the runtime API on http://127.0.0.1:8080
python -m local_endpoint serve --backend real-stack      # Multi Model Server + inference toolkit behind it
python -m local_endpoint container --port 9080           # only the embedded model server (container API)
python -m local_endpoint transform --help                # a batch transform job, locally
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import uvicorn

from local_endpoint.backends import open_container
from local_endpoint.batch import run_cli as transform_cli
from local_endpoint.container import EmbeddedContainer, create_container_app
from local_endpoint.front import create_app
from local_endpoint.real_stack import available as real_stack_missing
from local_endpoint.settings import BACKENDS, ROOT, Settings, load_endpoints
from stacks.config import ConfigError
from training.archive import read_manifest

MIB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["transform"]:  # its own parser: python -m local_endpoint transform --help
        return transform_cli(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.command == "container":
        uvicorn.run(create_container_app(EmbeddedContainer()), host=args.host, port=args.port, log_level="warning")
        return 0
    if args.backend == "container" and not args.container_url:
        print("--backend container needs --container-url (the model server's address)", file=sys.stderr)
        return 2
    if args.backend == "real-stack" and (missing := real_stack_missing()):
        print(f"--backend real-stack cannot start: {missing}", file=sys.stderr)
        return 2
    try:
        region, endpoints = load_endpoints(args.env, cdk_json=args.config, models_dir=args.models_dir)
    except ConfigError as e:
        print(f"invalid configuration: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="local-endpoint-") as scratch:
        settings = Settings(
            environment=args.env,
            endpoints=endpoints,
            models_dir=args.models_dir,
            workdir=args.workdir or Path(scratch),
            host=args.host,
            port=args.port,
            backend=args.backend,
            container_url=args.container_url,
            container_models_path=args.container_models_path,
            cache_budget_bytes=int(args.cache_mb * MIB),
            load_timeout_s=args.load_timeout,
            invocation_timeout_s=args.invocation_timeout,
            region=region,
            state_dir=args.state_dir or ROOT / ".local-endpoint" / args.env,
            s3_endpoint_url=args.s3_endpoint_url,
            async_bucket=args.async_bucket,
            async_max_input_bytes=int(args.async_max_input_mb * MIB),
        )
        app = create_app(settings, open_container, on_ready=lambda s3: print(banner(settings, s3), flush=True))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
    return 0


def banner(settings: Settings, s3_endpoint_url: str | None = None) -> str:
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"local SageMaker endpoints of {settings.environment!r} ({settings.backend} backend) on {url}"]
    example = None
    for endpoint in settings.endpoints:
        if endpoint.is_async:
            lines.append(
                f"  {endpoint.name}: asynchronous, model {endpoint.model_archive}; output in "
                f"{settings.async_location(endpoint.name, 'output', '')}"
            )
            continue
        if endpoint.model_archive:
            lines.append(f"  {endpoint.name}: serverless, model {endpoint.model_archive}")
            continue
        if endpoint.multi_model:
            archives = sorted(p.name for p in settings.models_dir.glob("*.tar.gz"))
            lines.append(f"  {endpoint.name}: multi-model, TargetModel one of {archives}")
            general = [m["archive"] for m in read_manifest(settings.models_dir) if len(m["channels"]) > 1]
            target = ["--target-model", (general or archives)[0]] if archives else []
        else:
            lines.append(f"  {endpoint.name}: inference components {sorted(endpoint.components)}")
            target = ["--inference-component-name", sorted(endpoint.components)[0]]
        example = example or [
            "aws",
            "sagemaker-runtime",
            "invoke-endpoint",
            "--endpoint-url",
            url,
            "--endpoint-name",
            endpoint.name,
            *target,
            "--content-type",
            "application/json",
            "--body",
            f"fileb://{ROOT / 'inference' / 'samples' / 'creatives.json'}",
            "/dev/stdout",
        ]
    if example:
        credentials = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1"
        lines += ["try it:", f"  {credentials} {shlex.join(example)}"]
    if s3_endpoint_url:
        lines.append(
            f"async inputs and outputs: S3 at {s3_endpoint_url} (boto3 endpoint_url=, aws --endpoint-url), "
            f"notifications in {settings.state_dir / 'notifications'}"
        )
    lines.append(f"endpoints and loaded models: {url}/_local/endpoints   (Ctrl-C stops)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_endpoint", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the runtime API for one environment's endpoints")
    serve.add_argument("--env", default="dev", help="environment of cdk.json to serve (default: dev)")
    serve.add_argument("--config", type=Path, default=ROOT / "cdk.json", help="CDK settings file (default: cdk.json)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--backend", choices=BACKENDS, default="embedded", help="model server behind the front")
    serve.add_argument("--container-url", help="model server address for --backend container")
    serve.add_argument("--container-models-path", help="where that server sees the extracted models (Docker)")
    serve.add_argument("--models-dir", type=Path, default=ROOT / "model_artifacts", help="folder of archives")
    serve.add_argument("--workdir", type=Path, help="where archives are extracted (default: a temporary folder)")
    serve.add_argument(
        "--cache-mb", type=float, default=512.0, help="multi-model cache budget per endpoint, MiB (default 512)"
    )
    serve.add_argument("--load-timeout", type=float, default=60.0, help="seconds before ModelNotReadyException")
    serve.add_argument("--invocation-timeout", type=float, default=60.0, help="seconds a model may take")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--state-dir", type=Path, help="async queue and notifications (default .local-endpoint/ENV)")
    serve.add_argument("--s3-endpoint-url", help="S3 for async inputs and outputs (default: a local server)")
    serve.add_argument("--async-bucket", default="creative-scoring-local", help="bucket of async outputs")
    serve.add_argument("--async-max-input-mb", type=float, default=1024.0, help="async input limit (default 1 GB)")
    commands.add_parser("transform", help="run a batch transform job locally (transform --help)", add_help=False)
    container = commands.add_parser("container", help="serve only the embedded model server (container API)")
    container.add_argument("--host", default="127.0.0.1")
    container.add_argument("--port", type=int, default=9080)
    container.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    return parser


if __name__ == "__main__":
    sys.exit(main())
