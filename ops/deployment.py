"""One environment as deployed, for the model-version and smoke commands: on this machine (the local endpoint of
``make local``) or in AWS (the stack of ``cdk deploy``), found the same way the users of each find it.

- Local: the endpoints of cdk.json, the reference models of ``model_artifacts/``, published versions in
  ``.local-endpoint/ENV/``, and the runtime API at ``--url`` (what ``make local`` serves).
- AWS: bucket, prefix, endpoint names and async input paths from the outputs of stack ``CreativeScoring-ENV``,
  never from hand-typed names; clients of the default credential chain.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from creative_scoring.artifacts.archive import read_manifest
from creative_scoring.config import (
    AsyncConfig,
    EndpointConfig,
    EnvironmentConfig,
    InferenceComponentsConfig,
    MultiModelConfig,
    load_environments,
)
from creative_scoring.config.naming import component_name, output_id, stack_name
from creative_scoring.paths import CDK_JSON, LOCAL_STATE, MODEL_ARTIFACTS
from ops import aws
from ops.versions import FolderStore, S3Store, VersionStore


class DeploymentError(ValueError):
    """The environment cannot be reached as asked; the message names the fix."""


@dataclass(frozen=True, kw_only=True)
class Deployment:
    environment: EnvironmentConfig
    where: str
    store: VersionStore
    runtime: Any  # a sagemaker-runtime client
    s3: Any  # an S3 client for async inputs and outputs
    async_inputs: dict[str, str]  # async endpoint -> S3 prefix for its inputs
    published_by: str
    sagemaker: Any = None  # a SageMaker client (AWS only): inference components
    stack_status: str | None = None  # AWS only: CREATE_COMPLETE, UPDATE_IN_PROGRESS, ...
    loaded: Callable[[], set[str]] = field(default=lambda: set())  # TargetModels loaded (local only)

    def multi_model_endpoint(self, name: str | None) -> MultiModelConfig:
        """The multi-model endpoint named ``name``, or the environment's only one."""
        endpoints = [e for e in self.environment.endpoints if isinstance(e, MultiModelConfig)]
        if name is not None:
            chosen = [e for e in endpoints if e.name == name]
            if not chosen:
                raise DeploymentError(
                    f"{name} is not a multi-model endpoint of {self.where}; those are {[e.name for e in endpoints]} "
                    "(a model version is published to a multi-model endpoint's TargetModel prefix)"
                )
            return chosen[0]
        if len(endpoints) != 1:
            raise DeploymentError(
                f"{self.where} has {len(endpoints)} multi-model endpoints ({[e.name for e in endpoints]}): "
                "name one with --endpoint"
                if endpoints
                else f"{self.where} has no multi-model endpoint: model versions are published to one (cdk.json)"
            )
        return endpoints[0]

    def component(self, name: str) -> tuple[InferenceComponentsConfig, str]:
        """The endpoint and full name of inference component ``name`` (its full name, or its model's name)."""
        for endpoint in self.environment.endpoints:
            if isinstance(endpoint, InferenceComponentsConfig):
                for model in endpoint.models:
                    full = component_name(endpoint.name, model.name)
                    if name in (full, model.name):
                        return endpoint, full
        known = [
            component_name(e.name, m.name)
            for e in self.environment.endpoints
            if isinstance(e, InferenceComponentsConfig)
            for m in e.models
        ]
        raise DeploymentError(f"no inference component {name!r} in {self.where}; its components: {known}")

    def check_not_deploying(self) -> None:
        """A deploy under way may already have carried the published versions to its new prefix: a version
        published now to the outputs' (old) prefix would not be carried, so publishing waits for the deploy."""
        if self.stack_status is not None and self.stack_status.endswith("_IN_PROGRESS"):
            raise DeploymentError(
                f"{self.where} is {self.stack_status}: publish once the deploy has finished (a version published "
                "during a deploy could miss the carry-over to its new inference code)"
            )

    @property
    def endpoints(self) -> tuple[EndpointConfig, ...]:
        return self.environment.endpoints


def _environment(env: str, config: Path, models_dir: Path) -> EnvironmentConfig:
    environments = load_environments(config, [str(m["name"]) for m in read_manifest(models_dir)])
    if env not in environments:
        raise DeploymentError(f"environment {env!r} is not in {config}; declared: {sorted(environments)}")
    return environments[env]


def local(
    env: str,
    *,
    url: str,
    config: Path = CDK_JSON,
    models_dir: Path = MODEL_ARTIFACTS,
    state_dir: Path | None = None,
) -> Deployment:
    """The local endpoint at ``url`` serving ``env``, and the folders it reads models from."""
    environment = _environment(env, config, models_dir)
    region = environment.region
    credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": region}
    runtime = boto3.session.Session(**credentials).client(
        "sagemaker-runtime", endpoint_url=url, config=Config(retries={"mode": "standard", "max_attempts": 2})
    )
    described = _describe_local(url)
    if described is not None and described.get("environment") != env:
        raise DeploymentError(
            f"the local endpoint at {url} serves environment {described.get('environment')!r}, not {env!r}: "
            f"pass --env {described.get('environment')}, or start it with make local ENV={env}"
        )
    if state_dir is None and described is not None:  # the folders the running endpoint reads
        state_dir = Path(described["published_dir"]).parent
    s3_url = next((e["async"]["s3_endpoint_url"] for e in (described or {}).get("endpoints", []) if e["async"]), None)
    bucket = (described or {}).get("async_bucket", "creative-scoring-local")
    return Deployment(
        environment=environment,
        where=f"the local endpoint at {url} (environment {env})",
        store=FolderStore(models_dir, state_dir or LOCAL_STATE / env),
        runtime=runtime,
        s3=boto3.session.Session(**credentials).client("s3", endpoint_url=s3_url) if s3_url else None,
        async_inputs={
            e.name: f"s3://{bucket}/smoke/{e.name}/" for e in environment.endpoints if isinstance(e, AsyncConfig)
        },
        published_by=f"{_user()}@{socket.gethostname()}",
        loaded=lambda: _loaded_targets(described),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name: a container without USER and no passwd entry
        return "unknown"


def _describe_local(url: str) -> dict[str, Any] | None:
    """The local endpoint's description, or None when nothing answers at ``url``."""
    try:
        response = httpx.get(f"{url}/_local/endpoints", timeout=5.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        raise DeploymentError(
            f"{url} answers GET /_local/endpoints with HTTP {response.status_code}: is it the "
            "local endpoint (make local)?"
        )
    described: dict[str, Any] = response.json()
    return described


def _loaded_targets(described: dict[str, Any] | None) -> set[str]:
    """The TargetModels loaded when the local endpoint was described (nothing, if none answered)."""
    loaded = (described or {}).get("loaded_models", [])
    return {m["target"] for m in loaded if m["state"] == "loaded" and not m["pinned"]}


def in_aws(
    env: str,
    *,
    region: str | None,
    client_factory: aws.ClientFactory = aws.boto3_client,
    config: Path = CDK_JSON,
    models_dir: Path = MODEL_ARTIFACTS,
) -> Deployment:
    """Stack ``CreativeScoring-ENV`` as deployed, read from its outputs (one DescribeStacks)."""
    environment = _environment(env, config, models_dir)
    region = region or environment.region
    stack = stack_name(env)
    status, outputs = aws.describe_stack(aws.client(client_factory, "cloudformation", region), stack)
    try:
        bucket, prefix_url = outputs["ModelBucket"], outputs["ModelDataPrefix"]
    except KeyError as e:
        raise DeploymentError(f"stack {stack} has no output {e}: deploy this version of the app (cdk deploy)") from e
    prefix = prefix_url.removeprefix(f"s3://{bucket}/")
    identity = aws.call(aws.client(client_factory, "sts", region), "GetCallerIdentity")
    return Deployment(
        environment=environment,
        where=f"stack {stack} in {region}",
        store=S3Store(aws.client(client_factory, "s3", region), bucket, prefix),
        runtime=aws.client(client_factory, "sagemaker-runtime", region),
        s3=aws.client(client_factory, "s3", region),
        async_inputs={
            e.name: outputs[output_id(e.name, "AsyncInputPath")]
            for e in environment.endpoints
            if isinstance(e, AsyncConfig) and output_id(e.name, "AsyncInputPath") in outputs
        },
        published_by=str(identity["Arn"]),
        sagemaker=aws.client(client_factory, "sagemaker", region),
        stack_status=status,
    )
