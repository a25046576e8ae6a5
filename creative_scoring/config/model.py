"""The configuration as frozen, validated objects: one environment, its endpoints, one type per hosting mode.

An endpoint's type is its hosting mode, and it carries only the settings that mode uses: serverless endpoints
have no instances, only inference components have ``models``, only serverless and async endpoints host one
``model``, only multi-model endpoints have a model cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from creative_scoring.config.defaults import InstanceType
from creative_scoring.config.naming import stack_name

BLUE_GREEN = "blue-green"
ROLLING = "rolling"
ROLLOUT_STRATEGIES = (BLUE_GREEN, ROLLING)


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
    alarm_delay_s: int  # from the end of a minute until its datapoint can fire an alarm (unconfirmed: defaults)


@dataclass(frozen=True, kw_only=True)
class ComponentModel:
    """One model hosted as an inference component, with the resources each copy reserves.

    ``copies`` run at the least; autoscaling may raise them to ``max_copies``, which the fleet at its largest
    (``scaling.max_instances``) can hold alongside the other components' largest counts (checked at synth).
    """

    name: str
    copies: int
    max_copies: int
    accelerators: int
    cpu_cores: float
    memory_mb: int


@dataclass(frozen=True, kw_only=True)
class DataCapture:
    """Requests and responses SageMaker copies to S3 (``DataCaptureConfig``): a sample of them, KMS-encrypted."""

    enabled: bool
    sampling_percent: int


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
class BaseEndpointConfig:
    """What every endpoint has; ``hosting`` is the mode's name in cdk.json."""

    hosting: ClassVar[str]
    name: str
    image: str
    scaling: Scaling
    alarms: AlarmThresholds
    rollout: Rollout


@dataclass(frozen=True, kw_only=True)
class InstanceEndpointConfig(BaseEndpointConfig):
    """An endpoint on instances of one type, with an ML storage volume unless the instance has local NVMe."""

    instance_type: str
    instance: InstanceType
    instance_count: int
    volume_size_gb: int | None
    encrypt_volume: bool

    @property
    def gpus(self) -> int:
        return self.instance.gpus


@dataclass(frozen=True, kw_only=True)
class MultiModelConfig(InstanceEndpointConfig):
    """Every archive under the model prefix, picked per request with ``TargetModel``, loaded into a cache."""

    hosting: ClassVar[str] = "multi-model"
    model_cache: bool
    routing: str  # RoutingConfig.RoutingStrategy of the variant


@dataclass(frozen=True, kw_only=True)
class InferenceComponentsConfig(InstanceEndpointConfig):
    """Each model an inference component, invoked with ``InferenceComponentName``."""

    hosting: ClassVar[str] = "inference-components"
    models: tuple[ComponentModel, ...]
    routing: str  # RoutingConfig.RoutingStrategy of the variant
    data_capture: DataCapture


@dataclass(frozen=True, kw_only=True)
class AsyncConfig(InstanceEndpointConfig):
    """One model on instances that work through a queue of requests in S3 (``InvokeEndpointAsync``)."""

    hosting: ClassVar[str] = "async"
    model: str
    async_inference: AsyncInference
    data_capture: DataCapture


@dataclass(frozen=True, kw_only=True)
class ServerlessConfig(BaseEndpointConfig):
    """One model on serverless compute (CPU only): no instances, no volume."""

    hosting: ClassVar[str] = "serverless"
    model: str
    serverless: Serverless


EndpointConfig: TypeAlias = MultiModelConfig | InferenceComponentsConfig | ServerlessConfig | AsyncConfig


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str
    account: str | None
    region: str
    alarm_email: str | None
    endpoints: tuple[EndpointConfig, ...]

    @property
    def stack_name(self) -> str:
        return stack_name(self.name)
