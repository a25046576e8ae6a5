"""Run the local endpoint: the runtime API front with its model server, or the embedded model server alone."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import uvicorn

from creative_scoring.artifacts.archive import read_manifest
from creative_scoring.paths import SAMPLES
from local_endpoint.backends import open_container
from local_endpoint.container import EmbeddedContainer, create_container_app
from local_endpoint.front.app import create_app
from local_endpoint.real_stack import available as real_stack_missing
from local_endpoint.s3_server import LocalS3, S3ServerError
from local_endpoint.settings import Settings
from local_endpoint.state_folder import StateFolderInUse, owned

__all__ = ["S3ServerError", "StateFolderInUse", "banner", "real_stack_missing", "serve", "serve_model_server"]


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Serve ``settings``' endpoints until Ctrl-C or SIGTERM, printing the banner once the model server is up.

    The process owns the state folder while it runs. When an async endpoint needs the local S3 server, it starts
    first and stops last. Raises `StateFolderInUse` or `S3ServerError` when it cannot start.
    """
    _log_to_stderr(log_level)
    # uvicorn re-raises the SIGTERM it caught once it has shut down: as SystemExit, the blocks below still run
    signal.signal(signal.SIGTERM, _exit)
    with owned(settings.state_dir), _local_s3(settings) as served:
        app = create_app(served, open_container, on_ready=lambda s3: print(banner(served, s3), flush=True))
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", lifespan="on")


def _exit(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _local_s3(settings: Settings) -> Iterator[Settings]:
    """``settings`` with the local S3 server's address, while it runs (the same settings when none is needed)."""
    if settings.local_s3_dir is None:
        yield settings
        return
    with LocalS3(settings.local_s3_dir, port=settings.s3_port, reserved=[settings.port]) as s3:
        yield replace(settings, s3_endpoint_url=s3.endpoint_url, local_s3_data=s3.data)


def serve_model_server(*, host: str, port: int, log_level: str = "warning") -> None:
    """Serve only the embedded model server on the container API."""
    _log_to_stderr(log_level)
    uvicorn.run(create_container_app(EmbeddedContainer()), host=host, port=port, log_level="warning")


def _log_to_stderr(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(message)s", stream=sys.stderr)


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
            f"fileb://{SAMPLES / 'creatives.json'}",
            "/dev/stdout",
        ]
    if example:
        credentials = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1"
        lines += ["try it:", f"  {credentials} {shlex.join(example)}"]
    if s3_endpoint_url:
        data = settings.local_s3_data
        where = f", the local S3 (this address is kept; data in {data})" if data else ""
        lines.append(
            f"async inputs and outputs: S3 at {s3_endpoint_url}{where}; "
            f"notifications in {settings.state_dir / 'notifications'}"
        )
    lines.append(f"endpoints and loaded models: {url}/_local/endpoints   (Ctrl-C stops)")
    return "\n".join(lines)
