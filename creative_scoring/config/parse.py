"""The ``creative-scoring`` context block of cdk.json parsed once into frozen, validated objects.

Every error names the key (as a path such as ``environments.prod.endpoints[0].instance_type``), the value,
and what is allowed, and stops synth before CloudFormation or SageMaker would reject the deployment. The
endpoint's ``hosting`` key picks its parser in ``HOSTING``, the one place a hosting mode is looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any

from creative_scoring.config import defaults, rules
from creative_scoring.config.defaults import INSTANCE_TYPES, InstanceType
from creative_scoring.config.model import (
    BLUE_GREEN,
    ROLLOUT_STRATEGIES,
    AlarmThresholds,
    AsyncConfig,
    AsyncInference,
    ComponentModel,
    DataCapture,
    EndpointConfig,
    EnvironmentConfig,
    InferenceComponentsConfig,
    MultiModelConfig,
    Rollout,
    Scaling,
    Serverless,
    ServerlessConfig,
)
from creative_scoring.config.reader import ConfigError, Node


def parse_environments(context: Any, known_models: Collection[str]) -> dict[str, EnvironmentConfig]:
    """Parse the ``creative-scoring`` context block into one config per environment."""
    root = Node(context, "creative-scoring")
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


def _environment(node: Node, name: str, known_models: Collection[str]) -> EnvironmentConfig:
    region = node.matching("region", rules.REGION, "an AWS region such as 'us-east-1'")
    endpoints = node.value.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        raise node.fail("endpoints", endpoints, "a non-empty list of endpoints")
    return EnvironmentConfig(
        name=name,
        account=node.optional("account", lambda k: node.matching(k, rules.ACCOUNT, "a 12-digit account id or null")),
        region=region,
        alarm_email=node.optional("alarm_email", lambda k: node.matching(k, rules.EMAIL, "an e-mail address or null")),
        endpoints=tuple(
            _endpoint(Node(e, f"{node.key('endpoints')}[{i}]"), region, known_models) for i, e in enumerate(endpoints)
        ),
    )


def _endpoint(node: Node, region: str, known_models: Collection[str]) -> EndpointConfig:
    parse = HOSTING[node.choice("hosting", HOSTING)]
    endpoint = parse(node, region, known_models)
    rules.check_handler_image(node, endpoint)
    rules.check_rollback_timing(node, endpoint)
    return endpoint


# One parser per hosting mode; each reads only the keys its mode uses, in the same order.


def _multi_model(node: Node, region: str, known_models: Collection[str]) -> MultiModelConfig:
    node.refuse(rules.MULTI_MODEL_KEYS)
    instance_type, instance = _instance_type(node)
    endpoint = MultiModelConfig(
        name=_name(node),
        instance_type=instance_type,
        instance=instance,
        instance_count=_instance_count(node),
        image=_image(node, region, gpu=instance.is_gpu),
        model_cache=_model_cache(node),
        routing=_routing(node),
        volume_size_gb=_volume_size_gb(node),
        encrypt_volume=_encrypt_volume(node, instance),
        scaling=_scaling(node.child("scaling"), MultiModelConfig.hosting, rules.MULTI_MODEL_SCALING_KEYS),
        alarms=_alarms(node.child("alarms")),
        rollout=_rollout(node.child("rollout")),
    )
    rules.check_triton(node, endpoint)
    rules.check_instances(node, endpoint)
    return endpoint


def _inference_components(node: Node, region: str, known_models: Collection[str]) -> InferenceComponentsConfig:
    node.refuse(rules.REAL_TIME_KEYS)
    instance_type, instance = _instance_type(node)
    name, instance_count = _name(node), _instance_count(node)
    image = _image(node, region, gpu=instance.is_gpu)
    _model_cache(node)  # accepted and checked here as it always was, though only multi-model endpoints use it
    endpoint = InferenceComponentsConfig(
        name=name,
        instance_type=instance_type,
        instance=instance,
        instance_count=instance_count,
        image=image,
        models=_component_models(node, known_models),
        routing=_routing(node),
        data_capture=_data_capture(node.child("data_capture"), enabled=False),  # unconfirmed on components
        volume_size_gb=_volume_size_gb(node),
        encrypt_volume=_encrypt_volume(node, instance),
        scaling=_scaling(node.child("scaling"), InferenceComponentsConfig.hosting, rules.REAL_TIME_SCALING_KEYS),
        alarms=_alarms(node.child("alarms")),
        rollout=_rollout(node.child("rollout")),
    )
    endpoint = replace(endpoint, models=rules.fair_max_copies(endpoint))
    rules.check_instances(node, endpoint)
    rules.check_capacity(node, endpoint)
    return endpoint


def _async(node: Node, region: str, known_models: Collection[str]) -> AsyncConfig:
    node.refuse(rules.ASYNC_KEYS)
    instance_type, instance = _instance_type(node)
    endpoint = AsyncConfig(
        name=_name(node),
        instance_type=instance_type,
        instance=instance,
        instance_count=_instance_count(node),
        image=_image(node, region, gpu=instance.is_gpu),
        model=node.choice("model", known_models),
        async_inference=_async_inference(node.child("async")),
        data_capture=_data_capture(node.child("data_capture"), enabled=True),
        volume_size_gb=_volume_size_gb(node),
        encrypt_volume=_encrypt_volume(node, instance),
        scaling=_scaling(node.child("scaling"), AsyncConfig.hosting, rules.ASYNC_SCALING_KEYS, scales_to_zero=True),
        alarms=_alarms(node.child("alarms")),
        rollout=_rollout(node.child("rollout")),
    )
    rules.check_instances(node, endpoint)
    return endpoint


def _serverless(node: Node, region: str, known_models: Collection[str]) -> ServerlessConfig:
    node.refuse(rules.SERVERLESS_KEYS)
    endpoint = ServerlessConfig(
        name=_name(node),
        image=_image(node, region, gpu=False),
        model=node.choice("model", known_models),
        serverless=_serverless_capacity(node.child("serverless")),
        scaling=_scaling(node.child("scaling"), ServerlessConfig.hosting, rules.SERVERLESS_SCALING_KEYS),
        alarms=_alarms(node.child("alarms")),
        rollout=_rollout(node.child("rollout")),
    )
    rules.check_serverless(node, endpoint)
    return endpoint


HOSTING: dict[str, Callable[[Node, str, Collection[str]], EndpointConfig]] = {
    MultiModelConfig.hosting: _multi_model,
    InferenceComponentsConfig.hosting: _inference_components,
    ServerlessConfig.hosting: _serverless,
    AsyncConfig.hosting: _async,
}


# The keys the parsers share.


def _name(node: Node) -> str:
    return node.matching("name", rules.ENDPOINT_NAME, "1-63 letters, digits and single hyphens")


def _instance_type(node: Node) -> tuple[str, InstanceType]:
    instance_type = node.choice("instance_type", INSTANCE_TYPES)
    return instance_type, INSTANCE_TYPES[instance_type]


def _instance_count(node: Node) -> int:
    return node.number("instance_count", int, 1, 1, 100)


def _image(node: Node, region: str, *, gpu: bool) -> str:
    return node.matching("image", rules.ECR_IMAGE, rules.ECR_IMAGE_FORM, defaults.pytorch_image(region, gpu=gpu))


def _model_cache(node: Node) -> bool:
    return node.choice("model_cache", ("Enabled", "Disabled"), "Enabled") == "Enabled"


def _data_capture(node: Node, *, enabled: bool) -> DataCapture:
    return DataCapture(
        enabled=node.get("enabled", bool, enabled),
        sampling_percent=node.number("sampling_percent", int, defaults.CAPTURE_SAMPLING_PERCENT, 1, 100),
    )


def _routing(node: Node) -> str:
    return rules.ROUTING[node.choice("routing", rules.ROUTING, rules.ROUTING_DEFAULT)]


def _volume_size_gb(node: Node) -> int | None:
    return node.optional("volume_size_gb", lambda k: node.number(k, int, 30, 1, 512))


def _encrypt_volume(node: Node, instance: InstanceType) -> bool:
    return node.get("encrypt_volume", bool, not instance.local_nvme)


def _serverless_capacity(node: Node) -> Serverless:
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


def _async_inference(node: Node) -> AsyncInference:
    return AsyncInference(
        max_concurrent_invocations_per_instance=node.number(
            "max_concurrent_invocations_per_instance", int, defaults.ASYNC_MAX_CONCURRENT_INVOCATIONS, 1, 1000
        ),
        include_response_in_notifications=node.get(
            "include_response_in_notifications", bool, defaults.ASYNC_INCLUDE_RESPONSE_IN_NOTIFICATIONS
        ),
    )


def _component_models(node: Node, known_models: Collection[str]) -> tuple[ComponentModel, ...]:
    models = node.value.get("models")
    if not isinstance(models, list) or not models:
        raise node.fail("models", models, "a non-empty list of models for inference-components hosting")
    parsed = []
    for i, raw in enumerate(models):
        model = Node(raw, f"{node.key('models')}[{i}]")
        parsed.append(
            ComponentModel(
                name=model.choice("name", known_models),
                copies=model.number("copies", int, 1, 1, 100),
                max_copies=model.number("max_copies", int, 0, 1, 100) if "max_copies" in raw else 0,
                accelerators=model.number("accelerators", int, 1, 0, 8),
                cpu_cores=model.number("cpu_cores", float, 1.0, 0.25, 192.0),
                memory_mb=model.number("memory_mb", int, 2048, 128, 1_000_000),
            )
        )
    return tuple(parsed)


def _scaling(node: Node, hosting: str, refused: Mapping[str, str], *, scales_to_zero: bool = False) -> Scaling:
    node.refuse(refused)
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
    if scaling.min_instances == 0 and not scales_to_zero:
        raise ConfigError(
            f"{node.key('min_instances')}: 0 is allowed only for hosting 'async', which queues requests while no "
            f"instance runs; a {hosting} endpoint at 0 instances refuses every request: set at least 1"
        )
    if scaling.min_instances > scaling.max_instances:
        raise node.fail("max_instances", scaling.max_instances, f"at least min_instances ({scaling.min_instances})")
    return scaling


def _alarms(node: Node) -> AlarmThresholds:
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


def _rollout(node: Node) -> Rollout:
    return Rollout(
        strategy=node.choice("strategy", ROLLOUT_STRATEGIES, BLUE_GREEN),
        canary_percent=node.number("canary_percent", int, 10, 1, 50),
        batch_percent=node.number("batch_percent", int, 25, 5, 50),
        wait_s=node.number("wait_s", int, 300, 0, 3600),
        auto_rollback=node.get("auto_rollback", bool, True),
        alarm_delay_s=node.number("alarm_delay_s", int, defaults.ALARM_DELAY_S, 0, 900),
    )
