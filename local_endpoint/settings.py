"""Settings of the local endpoint, read once: the endpoints of one environment of cdk.json, plus server options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stacks.config import MULTI_MODEL, ConfigError, EndpointConfig, parse_environments
from stacks.naming import component_name
from training.archive import read_manifest

ROOT = Path(__file__).resolve().parent.parent
REALTIME_MAX_BODY = 6 * 1024 * 1024
BACKENDS = ("embedded", "real-stack", "container")


@dataclass(frozen=True, kw_only=True)
class LocalEndpoint:
    """One endpoint as cdk.json declares it: multi-model (``TargetModel``) or inference components."""

    name: str
    multi_model: bool
    components: dict[str, str]  # inference component name -> archive name in the models folder
    cache_enabled: bool
    max_body_bytes: int = REALTIME_MAX_BODY

    @classmethod
    def from_config(cls, endpoint: EndpointConfig) -> LocalEndpoint:
        return cls(
            name=endpoint.name,
            multi_model=endpoint.hosting == MULTI_MODEL,
            components={component_name(endpoint.name, m.name): f"{m.name}.tar.gz" for m in endpoint.models},
            cache_enabled=endpoint.model_cache,
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

    def endpoint(self, name: str) -> LocalEndpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


def load_endpoints(
    environment: str, cdk_json: Path = ROOT / "cdk.json", models_dir: Path = ROOT / "model_artifacts"
) -> tuple[str, tuple[LocalEndpoint, ...]]:
    """The region and endpoints of ``environment`` in ``cdk_json``; `ConfigError` names what is wrong."""
    context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
    environments = parse_environments(context.get("creative-scoring"), [m["name"] for m in read_manifest(models_dir)])
    if environment not in environments:
        raise ConfigError(f"environment {environment!r} is not in {cdk_json}; declared: {sorted(environments)}")
    env = environments[environment]
    return env.region, tuple(LocalEndpoint.from_config(e) for e in env.endpoints)
