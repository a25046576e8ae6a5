"""Settings of the local endpoint, read once: the endpoints of one environment of cdk.json, plus server options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from creative_scoring.artifacts.archive import MANIFEST, read_manifest
from creative_scoring.config import (
    AsyncConfig,
    ConfigError,
    EndpointConfig,
    InferenceComponentsConfig,
    MultiModelConfig,
    ServerlessConfig,
    load_environments,
)
from creative_scoring.config.naming import component_name
from creative_scoring.paths import CDK_JSON, LOCAL_STATE, MODEL_ARTIFACTS

REALTIME_MAX_BODY = 6 * 1024 * 1024
SERVERLESS_MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class LocalEndpoint:
    """One endpoint as cdk.json declares it.

    ``mode`` is the config type of its hosting mode: multi-model (``TargetModel``), inference components
    (``InferenceComponentName``), serverless or async (one model, ``model_archive``).
    """

    name: str
    mode: type[EndpointConfig]
    components: dict[str, str] = field(default_factory=dict)  # component name -> archive in the models folder
    model_archive: str | None = None
    cache_enabled: bool = True
    max_body_bytes: int = REALTIME_MAX_BODY
    max_concurrency: int | None = None  # serverless MaxConcurrency; async concurrent invocations
    include_response: bool = False  # async: the response goes into the success notification

    @property
    def kind(self) -> str:
        """The hosting mode as cdk.json names it."""
        return self.mode.hosting

    @property
    def multi_model(self) -> bool:
        return issubclass(self.mode, MultiModelConfig)

    @property
    def is_async(self) -> bool:
        return issubclass(self.mode, AsyncConfig)

    def preloads(self) -> dict[str, str]:
        """Models loaded at start, by the name the container knows them under: components, or the one model."""
        return {self.name: self.model_archive} if self.model_archive else dict(self.components)

    @classmethod
    def from_config(cls, endpoint: EndpointConfig) -> LocalEndpoint:
        match endpoint:
            case MultiModelConfig():
                return cls(name=endpoint.name, mode=MultiModelConfig, cache_enabled=endpoint.model_cache)
            case InferenceComponentsConfig():
                components = {component_name(endpoint.name, m.name): f"{m.name}.tar.gz" for m in endpoint.models}
                return cls(name=endpoint.name, mode=InferenceComponentsConfig, components=components)
            case ServerlessConfig():
                return cls(
                    name=endpoint.name,
                    mode=ServerlessConfig,
                    model_archive=f"{endpoint.model}.tar.gz",
                    max_body_bytes=SERVERLESS_MAX_BODY,
                    max_concurrency=endpoint.serverless.max_concurrency,
                )
            case AsyncConfig():
                per_instance = endpoint.async_inference.max_concurrent_invocations_per_instance
                return cls(
                    name=endpoint.name,
                    mode=AsyncConfig,
                    model_archive=f"{endpoint.model}.tar.gz",
                    max_concurrency=per_instance * endpoint.instance_count,
                    include_response=endpoint.async_inference.include_response_in_notifications,
                )


@dataclass(frozen=True, kw_only=True)
class Settings:
    environment: str
    endpoints: tuple[LocalEndpoint, ...]
    models_dir: Path
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = "embedded"
    container_url: str | None = None
    container_models_path: str | None = None  # where the model server sees workdir/models (a Docker bind mount)
    cache_budget_bytes: int = 512 * 1024 * 1024
    load_timeout_s: float = 60.0
    invocation_timeout_s: float = 60.0
    workers_per_model: int = 2
    region: str = "us-east-1"
    account: str = "000000000000"
    state_dir: Path = LOCAL_STATE / "state"  # async queue and notifications: survive restarts
    s3_endpoint_url: str | None = None  # None: the local S3 server that `server.serve` starts (state_dir / "s3")
    s3_port: int | None = None  # its port; None: the one chosen at its first start
    local_s3_data: Path | None = None  # set while the local S3 server serves s3_endpoint_url: its data folder
    async_bucket: str = "creative-scoring-local"
    async_max_input_bytes: int = 1024**3

    @property
    def published_dir(self) -> Path:
        """Where ``creative-scoring models publish --local`` puts versions: looked up after ``models_dir``."""
        return self.state_dir / "models"

    @property
    def pins_dir(self) -> Path:
        """Where the version live on each inference component is recorded (``COMPONENT.json``)."""
        return self.state_dir / "published" / "components"

    def async_location(self, endpoint: str, kind: str, filename: str) -> str:
        return f"s3://{self.async_bucket}/async/{endpoint}/{kind}/{filename}"

    @property
    def local_s3_dir(self) -> Path | None:
        """Where the local S3 server keeps its data and address; None when it is not needed."""
        needed = self.s3_endpoint_url is None and any(e.is_async for e in self.endpoints)
        return self.state_dir / "s3" if needed else None

    def endpoint(self, name: str) -> LocalEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


def load_endpoints(
    environment: str, cdk_json: Path = CDK_JSON, models_dir: Path = MODEL_ARTIFACTS
) -> tuple[str, tuple[LocalEndpoint, ...]]:
    """The region and endpoints of ``environment`` in ``cdk_json``; `ConfigError` names what is wrong."""
    environments = load_environments(cdk_json, _model_names(models_dir))
    if environment not in environments:
        raise ConfigError(f"environment {environment!r} is not in {cdk_json}; declared: {sorted(environments)}")
    env = environments[environment]
    return env.region, tuple(LocalEndpoint.from_config(e) for e in env.endpoints)


def _model_names(models_dir: Path) -> list[str]:
    """The models that ``models_dir``'s manifest lists: what the endpoints of cdk.json may name."""
    if not (models_dir / MANIFEST).is_file():
        raise ConfigError(
            f"the models folder {models_dir} has no {MANIFEST}, which lists the models the endpoints may serve: "
            f"copy {MODEL_ARTIFACTS / MANIFEST} there with the archives it names, or build both with "
            f"creative-scoring train build --artifacts {models_dir}"
        )
    try:
        return [str(m["name"]) for m in read_manifest(models_dir)]
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f'{models_dir / MANIFEST} is not a manifest ({{"models": [{{"name": ...}}]}}): {e!r}') from e
