"""The deployment configuration: cdk.json context parsed once into frozen, validated objects.

Every error names the key (as a path such as ``environments.prod.endpoints[0].instance_type``), the value,
and what is allowed, and stops synth before CloudFormation or SageMaker would reject the deployment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stacks import defaults
from stacks.defaults import INSTANCE_TYPES, InstanceType

MULTI_MODEL = "multi-model"
INFERENCE_COMPONENTS = "inference-components"
SERVERLESS = "serverless"
ASYNC = "async"
HOSTING_MODES = (MULTI_MODEL, INFERENCE_COMPONENTS, SERVERLESS, ASYNC)
SINGLE_MODEL = (SERVERLESS, ASYNC)  # one archive per endpoint, named by the endpoint's ``model``
BLUE_GREEN = "blue-green"
ROLLING = "rolling"
ROLLOUT_STRATEGIES = (BLUE_GREEN, ROLLING)

_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GPU_TAG = re.compile(r"(^|[-_.])(gpu|cu\d+)([-_.]|$)")  # e.g. 2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker
# SageMaker pulls from ECR, and the execution role is scoped to the image's repository ARN.
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"/(?P<repo>[a-z0-9][a-z0-9._/-]*)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?$"
)
_ECR_IMAGE_FORM = "an ECR image URI such as <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value that would not deploy; the message names the key, the value and the fix."""


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """Instance bounds and targets; serverless endpoints scale provisioned concurrency instead of instances."""

    enabled: bool
    min_instances: int  # 0 only for async endpoints, which queue requests while no instance runs
    max_instances: int
    invocations_per_instance: int
    gpu_utilization_percent: int
    backlog_per_instance: int  # async: queued requests per instance that target tracking aims for
    provisioned_concurrency_utilization: float  # serverless: share of provisioned concurrency in use, 0-1
    scale_in_cooldown_s: int
    scale_out_cooldown_s: int


@dataclass(frozen=True, kw_only=True)
class AlarmThresholds:
    """Alarm thresholds in the units people think in; metrics.py converts (latencies are µs in CloudWatch)."""

    model_latency_p99_ms: float
    overhead_latency_p99_ms: float
    errors_5xx_per_minute: int
    errors_4xx_rate: float
    cpu_percent: int
    gpu_percent: int
    gpu_memory_percent: int
    disk_percent: int
    model_loading_wait_p99_ms: float
    cache_hit_rate_min: float
    model_setup_p99_ms: float  # serverless cold start
    backlog_size: int  # async: requests queued or in progress
    oldest_request_age_s: int  # async: age of the oldest queued request
    invocation_failures_per_minute: int  # async: requests that failed for any reason
    evaluation_minutes: int


@dataclass(frozen=True, kw_only=True)
class Rollout:
    strategy: str
    canary_percent: int
    batch_percent: int
    wait_s: int
    auto_rollback: bool


@dataclass(frozen=True, kw_only=True)
class ComponentModel:
    """One model hosted as an inference component, with the resources each copy reserves."""

    name: str
    copies: int
    accelerators: int
    cpu_cores: float
    memory_mb: int


@dataclass(frozen=True, kw_only=True)
class Serverless:
    """A serverless endpoint's capacity: memory per concurrent invocation, and how many may run at once."""

    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int  # 0: on demand only, no autoscaling


@dataclass(frozen=True, kw_only=True)
class AsyncInference:
    """How SageMaker feeds queued requests to an async endpoint's container, and what notifications carry."""

    max_concurrent_invocations_per_instance: int
    include_response_in_notifications: bool


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """One endpoint. Fields that a hosting mode does not use are ``None`` or empty:

    - ``instance_type``, ``instance``, ``instance_count``: ``None`` for serverless.
    - ``model``: the archive model a serverless or async endpoint hosts; ``None`` otherwise.
    - ``models``: inference components only. ``serverless`` and ``async_inference``: their mode only.
    """

    name: str
    hosting: str
    instance_type: str | None
    instance: InstanceType | None
    instance_count: int | None
    image: str
    model_cache: bool
    model: str | None
    models: tuple[ComponentModel, ...]
    serverless: Serverless | None
    async_inference: AsyncInference | None
    volume_size_gb: int | None
    encrypt_volume: bool
    scaling: Scaling
    alarms: AlarmThresholds
    rollout: Rollout

    @property
    def gpus(self) -> int:
        return self.instance.gpus if self.instance else 0


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str
    alarm_email: str | None
    endpoints: tuple[EndpointConfig, ...]

    @property
    def stack_name(self) -> str:
        return f"CreativeScoring-{self.name}"


class _Node:
    """A mapping read from cdk.json that knows its own key path, for error messages."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected an object, got {value!r}")
        self.value, self.path = value, path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self.key(name)}: {value!r} is not allowed; expected {allowed}")

    def child(self, name: str, default: Any = None) -> _Node:
        return _Node(self.value.get(name, default if default is not None else {}), self.key(name))

    def get(self, name: str, kind: type[T], default: T | None = None) -> T:
        if name not in self.value:
            if default is None:
                raise ConfigError(f"{self.key(name)}: required key is missing")
            return default
        value = self.value[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, value, f"a {kind.__name__}")
        return value

    def number(self, name: str, kind: type[T], default: T, low: float, high: float) -> T:
        value = self.get(name, kind, default)
        if not low <= value <= high:  # type: ignore[operator]
            raise self.fail(name, value, f"a value between {low:g} and {high:g}")
        return value

    def choice(self, name: str, allowed: Collection[str], default: str | None = None) -> str:
        value = self.get(name, str, default)
        if value not in allowed:
            raise self.fail(name, value, f"one of {sorted(allowed)}")
        return value

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        return None if self.value.get(name) is None else parse(name)

    def matching(self, name: str, pattern: re.Pattern[str], form: str, default: str | None = None) -> str:
        value = self.get(name, str, default)
        if not pattern.match(value):
            raise self.fail(name, value, form)
        return value


def parse_environments(context: Any, known_models: Collection[str]) -> dict[str, EnvironmentConfig]:
    """Parse the ``creative-scoring`` context block into one config per environment."""
    root = _Node(context, "creative-scoring")
    environments = root.child("environments")
    if not environments.value:
        raise ConfigError("creative-scoring.environments: declare at least one environment (e.g. dev, prod)")
    parsed = {name: _environment(environments.child(name), name, known_models) for name in environments.value}
    names = [e.name for env in parsed.values() for e in env.endpoints]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"creative-scoring.environments: endpoint names {duplicates} are used twice; names are global"
        )
    return parsed


def _environment(node: _Node, name: str, known_models: Collection[str]) -> EnvironmentConfig:
    region = node.matching("region", _REGION, "an AWS region such as 'us-east-1'")
    endpoints = node.value.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise node.fail("endpoints", endpoints, "a non-empty list of endpoints")
    return EnvironmentConfig(
        name=name,
        account=node.optional("account", lambda k: node.matching(k, _ACCOUNT, "a 12-digit account id or null")),
        region=region,
        alarm_email=node.optional("alarm_email", lambda k: node.matching(k, _EMAIL, "an e-mail address or null")),
        endpoints=tuple(
            _endpoint(_Node(e, f"{node.key('endpoints')}[{i}]"), region, known_models) for i, e in enumerate(endpoints)
        ),
    )


def _endpoint(node: _Node, region: str, known_models: Collection[str]) -> EndpointConfig:
    hosting = node.choice("hosting", HOSTING_MODES)
    _refuse_keys(node, _foreign_keys(hosting))
    instance_type = None if hosting == SERVERLESS else node.choice("instance_type", INSTANCE_TYPES)
    instance = INSTANCE_TYPES[instance_type] if instance_type else None
    endpoint = EndpointConfig(
        name=node.matching("name", _ENDPOINT_NAME, "1-63 letters, digits and single hyphens"),
        hosting=hosting,
        instance_type=instance_type,
        instance=instance,
        instance_count=node.number("instance_count", int, 1, 1, 100) if instance else None,
        image=node.matching(
            "image", ECR_IMAGE, _ECR_IMAGE_FORM, defaults.pytorch_image(region, gpu=bool(instance and instance.is_gpu))
        ),
        model_cache=node.choice("model_cache", ("Enabled", "Disabled"), "Enabled") == "Enabled",
        model=node.choice("model", known_models) if hosting in SINGLE_MODEL else None,
        models=tuple(_component_models(node, known_models)) if hosting == INFERENCE_COMPONENTS else (),
        serverless=_serverless(node.child("serverless")) if hosting == SERVERLESS else None,
        async_inference=_async_inference(node.child("async")) if hosting == ASYNC else None,
        volume_size_gb=node.optional("volume_size_gb", lambda k: node.number(k, int, 30, 1, 512)),
        encrypt_volume=node.get("encrypt_volume", bool, bool(instance and not instance.local_nvme)),
        scaling=_scaling(node.child("scaling"), hosting),
        alarms=_alarms(node.child("alarms")),
        rollout=_rollout(node.child("rollout")),
    )
    _check_combination(node, endpoint)
    return endpoint


def _foreign_keys(hosting: str) -> dict[str, str]:
    """Endpoint keys that ``hosting`` would silently ignore, each with the fix."""
    if hosting in (MULTI_MODEL, INFERENCE_COMPONENTS):
        single = "only hosting 'serverless' and 'async' take it; remove it"
        return {"model": single, "serverless": single, "async": single}
    single_model = {
        "models": f"{hosting} endpoints host one model; name it in 'model' and remove models",
        "model_cache": f"{hosting} endpoints keep their one model loaded; remove model_cache",
    }
    if hosting == ASYNC:
        return {**single_model, "serverless": "only hosting 'serverless' takes it; remove it"}
    no_volume = "serverless endpoints have no ML storage volume; remove it"
    return {
        **single_model,
        "instance_type": (
            "serverless endpoints run on CPU only; remove instance_type, or use hosting 'inference-components' for GPU"
        ),
        "instance_count": "serverless endpoints have no instances; size them with serverless.max_concurrency instead",
        "volume_size_gb": no_volume,
        "encrypt_volume": no_volume,
        "async": "only hosting 'async' takes it; remove it",
    }


def _refuse_keys(node: _Node, refused: Mapping[str, str]) -> None:
    for key, fix in refused.items():
        if key in node.value:
            raise ConfigError(f"{node.key(key)}: {fix}")


def _serverless(node: _Node) -> Serverless:
    memory_mb = node.number("memory_mb", int, defaults.SERVERLESS_MEMORY_MB, 1024, 6144)
    if memory_mb % 1024:
        raise node.fail("memory_mb", memory_mb, "1024, 2048, 3072, 4096, 5120 or 6144 (1 GB steps)")
    max_concurrency = node.number("max_concurrency", int, defaults.SERVERLESS_MAX_CONCURRENCY, 1, 200)
    return Serverless(
        memory_mb=memory_mb,
        max_concurrency=max_concurrency,
        provisioned_concurrency=node.number(
            "provisioned_concurrency", int, defaults.SERVERLESS_PROVISIONED_CONCURRENCY, 0, max_concurrency
        ),
    )


def _async_inference(node: _Node) -> AsyncInference:
    return AsyncInference(
        max_concurrent_invocations_per_instance=node.number(
            "max_concurrent_invocations_per_instance", int, defaults.ASYNC_MAX_CONCURRENT_INVOCATIONS, 1, 1000
        ),
        include_response_in_notifications=node.get(
            "include_response_in_notifications", bool, defaults.ASYNC_INCLUDE_RESPONSE_IN_NOTIFICATIONS
        ),
    )


def _component_models(node: _Node, known_models: Collection[str]) -> list[ComponentModel]:
    models = node.value.get("models")
    if not isinstance(models, list) or not models:
        raise node.fail("models", models, "a non-empty list of models for inference-components hosting")
    parsed = []
    for i, raw in enumerate(models):
        model = _Node(raw, f"{node.key('models')}[{i}]")
        parsed.append(
            ComponentModel(
                name=model.choice("name", known_models),
                copies=model.number("copies", int, 1, 1, 100),
                accelerators=model.number("accelerators", int, 1, 0, 8),
                cpu_cores=model.number("cpu_cores", float, 1.0, 0.25, 192.0),
                memory_mb=model.number("memory_mb", int, 2048, 128, 1_000_000),
            )
        )
    return parsed


def _scaling(node: _Node, hosting: str) -> Scaling:
    _refuse_keys(node, _foreign_scaling_keys(hosting))
    scaling = Scaling(
        enabled=node.get("enabled", bool, True),
        min_instances=node.number("min_instances", int, 1, 0, 100),
        max_instances=node.number("max_instances", int, 2, 1, 100),
        invocations_per_instance=node.number("invocations_per_instance", int, 600, 1, 1_000_000),
        gpu_utilization_percent=node.number("gpu_utilization_percent", int, 70, 1, 100),
        backlog_per_instance=node.number("backlog_per_instance", int, defaults.BACKLOG_PER_INSTANCE, 1, 10_000),
        provisioned_concurrency_utilization=node.number(
            "provisioned_concurrency_utilization", float, defaults.PROVISIONED_CONCURRENCY_UTILIZATION, 0.1, 1
        ),
        scale_in_cooldown_s=node.number("scale_in_cooldown_s", int, 300, 0, 3600),
        scale_out_cooldown_s=node.number("scale_out_cooldown_s", int, 60, 0, 3600),
    )
    if scaling.min_instances == 0 and hosting != ASYNC:
        raise ConfigError(
            f"{node.key('min_instances')}: 0 is allowed only for hosting 'async', which queues requests while no "
            f"instance runs; a {hosting} endpoint at 0 instances refuses every request: set at least 1"
        )
    if scaling.min_instances > scaling.max_instances:
        raise node.fail("max_instances", scaling.max_instances, f"at least min_instances ({scaling.min_instances})")
    return scaling


def _foreign_scaling_keys(hosting: str) -> dict[str, str]:
    """Scaling keys that ``hosting`` would silently ignore, each with the fix."""
    if hosting == SERVERLESS:
        fix = (
            "serverless endpoints scale provisioned concurrency between serverless.provisioned_concurrency and "
            "serverless.max_concurrency, not instances; remove it"
        )
        keys = ("min_instances", "max_instances", "invocations_per_instance", "gpu_utilization_percent")
        return {key: fix for key in (*keys, "backlog_per_instance")}
    refused = {"provisioned_concurrency_utilization": "only hosting 'serverless' takes it; remove it"}
    if hosting == ASYNC:
        # Async endpoints publish no InvocationsPerInstance; they scale on their backlog alone.
        fix = "async endpoints scale on backlog_per_instance; remove it"
        return refused | {"invocations_per_instance": fix, "gpu_utilization_percent": fix}
    return refused | {"backlog_per_instance": "only hosting 'async' takes it; remove it"}


def _alarms(node: _Node) -> AlarmThresholds:
    return AlarmThresholds(
        model_latency_p99_ms=node.number("model_latency_p99_ms", float, 250.0, 1, 60_000),
        overhead_latency_p99_ms=node.number("overhead_latency_p99_ms", float, 50.0, 1, 60_000),
        errors_5xx_per_minute=node.number("errors_5xx_per_minute", int, 5, 1, 1_000_000),
        errors_4xx_rate=node.number("errors_4xx_rate", float, 0.05, 0.0001, 1),
        cpu_percent=node.number("cpu_percent", int, 80, 1, 100),
        gpu_percent=node.number("gpu_percent", int, 90, 1, 100),
        gpu_memory_percent=node.number("gpu_memory_percent", int, 90, 1, 100),
        disk_percent=node.number("disk_percent", int, 85, 1, 100),
        model_loading_wait_p99_ms=node.number("model_loading_wait_p99_ms", float, 10_000.0, 1, 360_000),
        cache_hit_rate_min=node.number("cache_hit_rate_min", float, 0.8, 0, 1),
        model_setup_p99_ms=node.number("model_setup_p99_ms", float, defaults.MODEL_SETUP_P99_MS, 1, 3_600_000),
        backlog_size=node.number("backlog_size", int, defaults.BACKLOG_SIZE, 1, 1_000_000),
        oldest_request_age_s=node.number("oldest_request_age_s", int, defaults.OLDEST_REQUEST_AGE_S, 60, 21_600),
        invocation_failures_per_minute=node.number(
            "invocation_failures_per_minute", int, defaults.INVOCATION_FAILURES_PER_MINUTE, 1, 1_000_000
        ),
        evaluation_minutes=node.number("evaluation_minutes", int, 3, 1, 60),
    )


def _rollout(node: _Node) -> Rollout:
    return Rollout(
        strategy=node.choice("strategy", ROLLOUT_STRATEGIES, BLUE_GREEN),
        canary_percent=node.number("canary_percent", int, 10, 1, 50),
        batch_percent=node.number("batch_percent", int, 25, 5, 50),
        wait_s=node.number("wait_s", int, 300, 0, 3600),
        auto_rollback=node.get("auto_rollback", bool, True),
    )


def _check_combination(node: _Node, endpoint: EndpointConfig) -> None:
    """Combinations SageMaker would reject at deploy time, refused at synth time with the fix."""
    instance, count = endpoint.instance, endpoint.instance_count
    if instance is None or count is None:  # serverless: no instances
        _check_serverless(node, endpoint)
        return
    key = node.key("instance_type")
    if endpoint.hosting == MULTI_MODEL and instance.is_gpu and defaults.TRITON_REPOSITORY not in endpoint.image:
        raise ConfigError(
            f"{key}: multi-model endpoints on GPU instances ({endpoint.instance_type}) accept only NVIDIA Triton "
            f"images, not {endpoint.image}; use hosting 'inference-components' for GPU, a CPU instance type, "
            "or a sagemaker-tritonserver image"
        )
    if instance.local_nvme and endpoint.volume_size_gb is not None:
        raise ConfigError(
            f"{node.key('volume_size_gb')}: {endpoint.instance_type} has local NVMe storage and takes no "
            "VolumeSizeInGB; remove volume_size_gb"
        )
    if instance.local_nvme and endpoint.encrypt_volume:
        raise ConfigError(
            f"{node.key('encrypt_volume')}: {endpoint.instance_type} has local NVMe storage (encrypted by the "
            "hardware) and SageMaker rejects a KmsKeyId for it; set encrypt_volume to false"
        )
    if (endpoint.instance_type or "").startswith("ml.t"):
        raise ConfigError(f"{key}: burstable {endpoint.instance_type} cannot be autoscaled; use ml.c5 or ml.m5")
    if not endpoint.scaling.min_instances <= count <= endpoint.scaling.max_instances:
        raise ConfigError(
            f"{node.key('instance_count')}: {count} is outside scaling bounds "
            f"[{endpoint.scaling.min_instances}, {endpoint.scaling.max_instances}]"
        )
    _check_capacity(node, endpoint, instance, count)


def _check_serverless(node: _Node, endpoint: EndpointConfig) -> None:
    tag = endpoint.image.rpartition("/")[2].partition(":")[2]
    if _GPU_TAG.search(tag):
        raise ConfigError(
            f"{node.key('image')}: serverless endpoints run on CPU only, and {endpoint.image} is a GPU image; "
            "use a CPU image, or hosting 'async' or 'inference-components' for GPU"
        )
    if endpoint.rollout.strategy == ROLLING:
        raise node.child("rollout").fail(
            "strategy", ROLLING, f"'{BLUE_GREEN}': SageMaker does not roll serverless endpoints out in batches"
        )


def _check_capacity(node: _Node, endpoint: EndpointConfig, instance: InstanceType, count: int) -> None:
    for field, have, need in (
        ("accelerators", instance.gpus, sum(m.copies * m.accelerators for m in endpoint.models)),
        ("cpu_cores", instance.vcpus, sum(m.copies * m.cpu_cores for m in endpoint.models)),
        ("memory_mb", instance.memory_gib * 1024, sum(m.copies * m.memory_mb for m in endpoint.models)),
    ):
        if need > have * count:
            raise ConfigError(
                f"{node.key('models')}: the inference components reserve {need:g} {field} in all, but "
                f"{count} x {endpoint.instance_type} offer {have * count:g}; "
                "raise instance_count, pick a larger instance type, or reserve less per copy"
            )
