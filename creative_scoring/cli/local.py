"""Commands that run on this machine: the local SageMaker endpoint, its model server, local batch transform."""

from __future__ import annotations

import enum
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from creative_scoring.paths import CDK_JSON, LOCAL_STATE, MODEL_ARTIFACTS

MIB = 1024 * 1024


class Backend(enum.StrEnum):
    embedded = "embedded"
    real_stack = "real-stack"
    container = "container"


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="This machine")(serve)
    app.command("model-server", rich_help_panel="This machine")(model_server)
    app.command(
        rich_help_panel="This machine",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )(transform)


def serve(
    env: Annotated[str, typer.Option(help="Environment of cdk.json to serve.")] = "dev",
    config: Annotated[Path, typer.Option(help="CDK settings file.")] = CDK_JSON,
    host: Annotated[str, typer.Option(help="Address to bind (loopback only by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the runtime API.")] = 8080,
    backend: Annotated[Backend, typer.Option(help="Model server behind the front.")] = Backend.embedded,
    container_url: Annotated[str | None, typer.Option(help="Model server address for --backend container.")] = None,
    container_models_path: Annotated[
        str | None, typer.Option(help="Where that server sees the extracted models (Docker).")
    ] = None,
    models_dir: Annotated[Path, typer.Option(help="Folder of archives and manifest.json.")] = MODEL_ARTIFACTS,
    workdir: Annotated[Path | None, typer.Option(help="Where archives are extracted (default: a temp folder).")] = None,
    cache_mb: Annotated[float, typer.Option(help="Multi-model cache budget per endpoint, MiB.")] = 512.0,
    load_timeout: Annotated[float, typer.Option(help="Seconds before ModelNotReadyException.")] = 60.0,
    invocation_timeout: Annotated[float, typer.Option(help="Seconds a model may take to answer.")] = 60.0,
    log_level: Annotated[LogLevel, typer.Option(help="Log level of the request log.")] = LogLevel.info,
    state_dir: Annotated[
        Path | None, typer.Option(help="Async queue and notifications (default .local-endpoint/ENV).")
    ] = None,
    s3_endpoint_url: Annotated[
        str | None, typer.Option(help="S3 for async inputs and outputs (default: the local one, on disk).")
    ] = None,
    s3_port: Annotated[
        int | None,
        typer.Option(help="Port of the local S3 (default: chosen at its first start, then kept).", min=1, max=65535),
    ] = None,
    async_bucket: Annotated[str, typer.Option(help="Bucket of async outputs and failures.")] = "creative-scoring-local",
    async_max_input_mb: Annotated[float, typer.Option(help="Async input limit, MiB.")] = 1024.0,
) -> None:
    """Serve one environment's SageMaker endpoints on this machine (the runtime API the AWS SDKs call)."""
    from creative_scoring.config import ConfigError
    from local_endpoint import server
    from local_endpoint.settings import Settings, load_endpoints

    if s3_port is not None and s3_endpoint_url is not None:
        raise typer.BadParameter(
            "--s3-port moves the local S3; with --s3-endpoint-url there is none", param_hint="--s3-port"
        )
    if backend is Backend.container and not container_url:
        raise typer.BadParameter("--backend container needs --container-url (the model server's address)")
    if backend is Backend.real_stack and (missing := server.real_stack_missing()):
        raise typer.BadParameter(f"--backend real-stack cannot start: {missing}", param_hint="--backend")
    try:
        region, endpoints = load_endpoints(env, cdk_json=config, models_dir=models_dir)
    except ConfigError as e:
        typer.echo(f"invalid configuration: {e}", err=True)
        raise typer.Exit(2) from e
    with tempfile.TemporaryDirectory(prefix="local-endpoint-") as scratch:
        settings = Settings(
            environment=env,
            endpoints=endpoints,
            models_dir=models_dir,
            workdir=workdir or Path(scratch),
            host=host,
            port=port,
            backend=backend.value,
            container_url=container_url,
            container_models_path=container_models_path,
            cache_budget_bytes=int(cache_mb * MIB),
            load_timeout_s=load_timeout,
            invocation_timeout_s=invocation_timeout,
            region=region,
            state_dir=state_dir or LOCAL_STATE / env,
            s3_endpoint_url=s3_endpoint_url,
            s3_port=s3_port,
            async_bucket=async_bucket,
            async_max_input_bytes=int(async_max_input_mb * MIB),
        )
        try:
            server.serve(settings, log_level=log_level.value)
        except server.StateFolderInUse as e:
            typer.echo(f"cannot start: {e}", err=True)
            raise typer.Exit(2) from e
        except server.S3ServerError as e:
            typer.echo(f"cannot start the local S3: {e}", err=True)
            raise typer.Exit(2) from e


def model_server(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the container API.")] = 9080,
    log_level: Annotated[LogLevel, typer.Option(help="Log level.")] = LogLevel.warning,
) -> None:
    """Serve only the embedded model server, on the container API (what SageMaker's front calls)."""
    from local_endpoint import server

    server.serve_model_server(host=host, port=port, log_level=log_level.value)


def transform(ctx: typer.Context) -> None:
    """Run a batch transform job on this machine, over a folder or an S3 prefix (transform --help)."""
    from local_endpoint.transform.cli import run_cli

    raise typer.Exit(run_cli(ctx.args))
