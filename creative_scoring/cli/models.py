"""``creative-scoring models``: publish, list, verify and retire model versions of a multi-model endpoint, and
``creative-scoring smoke``: every endpoint and model of an environment, after a deploy.

Each verb works on a deployed stack (default; AWS credentials) or on the local endpoint of ``make local``
(``--local``), found the way each is found: stack outputs, or cdk.json and the local endpoint's folders.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ops.deployment import Deployment
    from ops.smoke import Probe
    from ops.versions import Version

EXIT_FAILED, EXIT_INVALID, EXIT_AWS, EXIT_INTERRUPTED = 1, 2, 3, 130
STACK_MISSING_HINT = "deploy it first (npx cdk deploy -c env=ENV), or pass --local for the local endpoint"

app = typer.Typer(
    help="Publish, list, verify and retire model versions on a live multi-model endpoint, without a deploy.",
    no_args_is_help=True,
)

Env = Annotated[str, typer.Option(help="Environment of cdk.json.")]
Local = Annotated[bool, typer.Option("--local", help="Work on the local endpoint of `make local`, not on AWS.")]
Url = Annotated[str, typer.Option(help="The local endpoint's address (with --local).")]
Region = Annotated[str | None, typer.Option(help="AWS region (default: the environment's).")]
Endpoint = Annotated[
    str | None, typer.Option(help="Multi-model endpoint (default: the environment's only one).", show_default=False)
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LOCAL_URL = "http://127.0.0.1:8080"


@contextmanager
def _boundary() -> Iterator[None]:
    """Typed errors to a message on stderr and an exit code; never a traceback."""
    from creative_scoring.artifacts.versions import VersionError
    from creative_scoring.config import ConfigError
    from ops.aws import AwsCallError, InvalidParameters
    from ops.deployment import DeploymentError

    try:
        yield
    except (VersionError, DeploymentError, ConfigError, InvalidParameters) as e:
        _fail(EXIT_INVALID, str(e))
    except OSError as e:  # the local folders: permissions, a full disk
        _fail(EXIT_FAILED, f"{e.strerror or e} ({e.filename or 'a local file'})")
    except AwsCallError as e:
        missing_stack = e.code == "ValidationError" and "does not exist" in e.message
        _fail(EXIT_AWS, f"{e.hint()}; {STACK_MISSING_HINT}" if missing_stack else e.hint())
    except KeyboardInterrupt:
        _fail(
            EXIT_INTERRUPTED,
            "interrupted: an archive being stored was removed with its record; an inference component update "
            "already requested goes on in SageMaker (creative-scoring models list shows what is stored)",
        )


def _fail(code: int, message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _deployment(env: str, local: bool, url: str, region: str | None) -> Deployment:
    from ops import deployment

    return deployment.local(env, url=url) if local else deployment.in_aws(env, region=region)


@app.command()
def publish(
    source: Annotated[Path, typer.Argument(help="A trained model folder, or a .tar.gz model archive.")],
    name: Annotated[str, typer.Option(help="Version name: the TargetModel is NAME.tar.gz.", show_default=False)],
    env: Env = "dev",
    endpoint: Endpoint = None,
    component: Annotated[
        str | None,
        typer.Option(
            help="Put the version live on this inference component (its name or its model's) instead of "
            "publishing it to a multi-model endpoint.",
            show_default=False,
        ),
    ] = None,
    local: Local = False,
    url: Url = LOCAL_URL,
    region: Region = None,
    verify: Annotated[bool, typer.Option(help="Invoke the new version on the endpoint once stored.")] = True,
) -> None:
    """Package SOURCE with the deployed inference code, check it loads and scores, store it, verify it live."""
    from ops.versions import publish as publish_version

    with _boundary():
        deployment = _deployment(env, local, url, region)
        deployment.check_not_deploying()
        if component is not None:
            hosting, route = deployment.component(component)
            target = hosting.name
        else:
            target, route = deployment.multi_model_endpoint(endpoint).name, None
        with _upload_bar(f"storing {name}") as progress:
            published = publish_version(
                deployment.store, name, source, published_by=deployment.published_by, progress=progress
            )
        record = published.record
        if published.already:
            typer.echo(f"{name} is already published with these contents ({record.sha256[:12]}): nothing stored")
        else:
            scored = sum(len(s.scores) for s in published.samples)
            typer.echo(f"checked {name}: loads, and scores {scored} sample creatives in [0, 1] (handler chain)")
            typer.echo(
                f"stored {name}.tar.gz ({record.size_bytes} bytes, sha256 {record.sha256[:12]}) at "
                f"{deployment.store.where}"
            )
        if route is not None:
            _put_live(deployment, route, record)
        if verify:
            _verify(deployment, target, name, route)


def _put_live(deployment: Deployment, component: str, record: Any) -> None:
    from ops.components import ComponentUpdateFailed, UpdateUnderWay, put_live
    from ops.versions import FolderStore, S3Store

    store = deployment.store
    if isinstance(store, FolderStore):  # the local endpoint switches the component on its next invocation
        store.pin(component, record.name, deployment.published_by)
        typer.echo(f"{component} serves {record.name} from its next invocation")
        return
    assert isinstance(store, S3Store)
    try:
        live = put_live(
            deployment.sagemaker,
            store.s3,
            store.bucket,
            component=component,
            version=record.name,
            archive_key=record.archive,
            sha256=record.sha256,
            pinned_by=deployment.published_by,
            progress=lambda line: typer.echo(line, err=True),
        )
    except (ComponentUpdateFailed, UpdateUnderWay) as e:
        _fail(EXIT_FAILED, str(e))
    typer.echo(f"{component} serves {live.version} (Model {live.model_name}; it served {live.previous_model})")


@contextmanager
def _upload_bar(description: str) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda sent: bar.advance(task, sent)


@app.command()
def verify(
    name: Annotated[str, typer.Argument(help="Version name (TargetModel NAME.tar.gz).")],
    env: Env = "dev",
    endpoint: Endpoint = None,
    component: Annotated[
        str | None,
        typer.Option(help="Invoke this inference component instead (NAME is the label).", show_default=False),
    ] = None,
    local: Local = False,
    url: Url = LOCAL_URL,
    region: Region = None,
) -> None:
    """Invoke version NAME on the live endpoint with the sample creatives: scores in range, first-invoke latency."""
    with _boundary():
        deployment = _deployment(env, local, url, region)
        if component is None:
            _verify(deployment, deployment.multi_model_endpoint(endpoint).name, name)
        else:
            hosting, full = deployment.component(component)
            _verify(deployment, hosting.name, name, full)


def _verify(deployment: Deployment, endpoint: str, name: str, component: str | None = None) -> None:
    from creative_scoring.artifacts.versions import target_model
    from ops.smoke import probe

    route = {"InferenceComponentName": component} if component else {"TargetModel": target_model(name)}
    result = probe(deployment.runtime, endpoint, name, route)
    if not result.ok:
        _fail(EXIT_FAILED, f"verify {name} on {endpoint}: {result.status}")
    typer.echo(
        f"verified {name} on {endpoint}: first answer in {result.first_ms:.0f} ms (load included), "
        f"{len(result.scores)} scores in {result.score_range()}"
    )


@app.command("list")
def list_versions(
    env: Env = "dev",
    local: Local = False,
    url: Url = LOCAL_URL,
    region: Region = None,
    as_json: Json = False,
) -> None:
    """Every version a multi-model endpoint can load: origin, size, sha256, code digest, who published it when."""
    from ops.versions import versions

    with _boundary():
        deployment = _deployment(env, local, url, region)
        found = versions(deployment.store)
        loaded = deployment.loaded() if local else None
    if as_json:
        typer.echo(json.dumps([_version_json(v, loaded) for v in found], indent=2))
        return
    typer.echo(f"{len(found)} versions at {deployment.store.where}")
    typer.echo(_version_table(found, loaded))


def _version_json(version: Version, loaded: set[str] | None) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(version), "target_model": version.target_model, "loaded": _loaded(version, loaded)}


def _loaded(version: Version, loaded: set[str] | None) -> bool | None:
    return None if loaded is None else version.target_model in loaded


def _version_table(found: list[Version], loaded: set[str] | None) -> str:
    rows = [("name", "origin", "KiB", "sha256", "code", "published", "by", "loaded")]
    for v in found:
        is_loaded = _loaded(v, loaded)
        rows.append(
            (
                v.name,
                v.origin,
                f"{v.size_bytes / 1024:.0f}",
                (v.sha256 or "-")[:12],
                (v.code_sha256 or "-")[:12],
                v.published_at or "-",
                v.published_by or "-",
                "-" if is_loaded is None else ("yes" if is_loaded else "no"),
            )
        )
    return _columns(rows)


def _probe_table(probes: list[Probe]) -> str:
    rows = [("endpoint", "model", "first ms", "scores", "status")]
    for p in probes:
        latency = "-" if p.first_ms is None else f"{p.first_ms:.0f}"
        rows.append((p.endpoint, p.model, latency, p.score_range(), p.status))
    return _columns(rows)


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns, two spaces apart (the first row is the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


@app.command()
def retire(
    name: Annotated[str, typer.Argument(help="Version name.")],
    env: Env = "dev",
    local: Local = False,
    url: Url = LOCAL_URL,
    region: Region = None,
    reference: Annotated[
        bool, typer.Option("--reference", help="Allow removing a reference model of the deploy.")
    ] = False,
) -> None:
    """Remove published version NAME; a reference model of the deploy only with --reference."""
    from ops.versions import retire as retire_version

    with _boundary():
        deployment = _deployment(env, local, url, region)
        retired = retire_version(deployment.store, name, reference_too=reference)
    typer.echo(
        f"retired {retired.name} ({retired.origin}) from {deployment.store.where}: new invocations of "
        f"{retired.target_model} fail once no instance has it loaded (an instance that loaded it keeps it until "
        "it is unloaded)"
    )


def smoke(
    env: Env = "dev",
    local: Local = False,
    url: Url = LOCAL_URL,
    region: Region = None,
    as_json: Json = False,
) -> None:
    """Invoke every endpoint and model of an environment with the sample creatives; exit 1 on any failure."""
    with _boundary():
        deployment = _deployment(env, local, url, region)
        probes = _smoke(deployment)
    if as_json:
        typer.echo(json.dumps([p.to_json() for p in probes], indent=2))
    else:
        typer.echo(_probe_table(probes))
    failed = [p for p in probes if not p.ok]
    if failed:
        typer.echo(f"{len(failed)} of {len(probes)} models failed on {deployment.where}", err=True)
        raise typer.Exit(EXIT_FAILED)


def _smoke(deployment: Deployment) -> list[Probe]:
    from creative_scoring.config import AsyncConfig, InferenceComponentsConfig, MultiModelConfig, ServerlessConfig
    from creative_scoring.config.naming import component_name
    from ops.smoke import Probe, probe, probe_async
    from ops.versions import versions

    probes: list[Probe] = []
    targets = versions(deployment.store)
    live = deployment.store.pins()  # component -> the version put live on it
    for endpoint in deployment.endpoints:
        sys.stderr.write(f"smoke: {endpoint.name}\n")
        match endpoint:
            case MultiModelConfig():
                probes += [
                    probe(deployment.runtime, endpoint.name, v.name, {"TargetModel": v.target_model}) for v in targets
                ]
            case InferenceComponentsConfig():
                for model in endpoint.models:
                    component = component_name(endpoint.name, model.name)
                    label = f"{model.name} -> {live[component]}" if component in live else model.name
                    probes.append(
                        probe(deployment.runtime, endpoint.name, label, {"InferenceComponentName": component})
                    )
            case ServerlessConfig():
                probes.append(probe(deployment.runtime, endpoint.name, endpoint.model, {}))
            case AsyncConfig():
                where = deployment.async_inputs.get(endpoint.name)
                if where is None or deployment.s3 is None:
                    probes.append(Probe(endpoint.name, endpoint.model, problems=["no S3 for async inputs found"]))
                    continue
                probes.append(probe_async(deployment.runtime, deployment.s3, endpoint.name, endpoint.model, where))
    return probes
