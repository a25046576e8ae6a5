"""What a deployable configuration may hold: value forms, the keys each hosting mode refuses, and the
combinations SageMaker would reject at deploy time, refused at synth time with the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from creative_scoring.config import defaults
from creative_scoring.config.model import (
    BLUE_GREEN,
    ROLLING,
    AsyncConfig,
    ComponentModel,
    EndpointConfig,
    InferenceComponentsConfig,
    InstanceEndpointConfig,
    MultiModelConfig,
    ServerlessConfig,
)
from creative_scoring.config.reader import ConfigError, Node

ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GPU_TAG = re.compile(r"(^|[-_.])(gpu|cu\d+)([-_.]|$)")  # e.g. 2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker
# SageMaker pulls from ECR, and the execution role is scoped to the image's repository ARN.
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"/(?P<repo>[a-z0-9][a-z0-9._/-]*)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?$"
)
ECR_IMAGE_FORM = "an ECR image URI such as <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>"

# Endpoint keys a hosting mode would silently ignore, each with the fix.
_SINGLE_MODEL_ONLY = "only hosting 'serverless' and 'async' take it; remove it"
REAL_TIME_KEYS = {key: _SINGLE_MODEL_ONLY for key in ("model", "serverless", "async")}
MULTI_MODEL_KEYS = {**REAL_TIME_KEYS, "data_capture": "SageMaker captures no data on multi-model endpoints; remove it"}


def _one_model_keys(hosting: str) -> dict[str, str]:
    return {
        "models": f"{hosting} endpoints host one model; name it in 'model' and remove models",
        "model_cache": f"{hosting} endpoints keep their one model loaded; remove model_cache",
    }


# How a real-time variant spreads requests over its instances (RoutingConfig), by the name cdk.json uses.
ROUTING = {"least-outstanding-requests": "LEAST_OUTSTANDING_REQUESTS", "random": "RANDOM"}
ROUTING_DEFAULT = "least-outstanding-requests"  # an instance busy with a slow request gets no more meanwhile
_REAL_TIME_ROUTING = (
    "only the real-time instance modes ('multi-model', 'inference-components') route by a strategy; remove it"
)

ASYNC_KEYS = {
    **_one_model_keys(AsyncConfig.hosting),
    "serverless": "only hosting 'serverless' takes it; remove it",
    "routing": _REAL_TIME_ROUTING,
}
_NO_VOLUME = "serverless endpoints have no ML storage volume; remove it"
SERVERLESS_KEYS = {
    **_one_model_keys(ServerlessConfig.hosting),
    "instance_type": (
        "serverless endpoints run on CPU only; remove instance_type, or use hosting 'inference-components' for GPU"
    ),
    "instance_count": "serverless endpoints have no instances; size them with serverless.max_concurrency instead",
    "volume_size_gb": _NO_VOLUME,
    "encrypt_volume": _NO_VOLUME,
    "async": "only hosting 'async' takes it; remove it",
    "routing": _REAL_TIME_ROUTING,
    "data_capture": "SageMaker captures no data on serverless endpoints; remove it",
}

# Scaling keys a hosting mode would silently ignore, each with the fix.
_SERVERLESS_SCALES_CONCURRENCY = (
    "serverless endpoints scale provisioned concurrency between serverless.provisioned_concurrency and "
    "serverless.max_concurrency, not instances; remove it"
)
SERVERLESS_SCALING_KEYS = {
    key: _SERVERLESS_SCALES_CONCURRENCY
    for key in (
        "min_instances",
        "max_instances",
        "invocations_per_instance",
        "gpu_utilization_percent",
        "backlog_per_instance",
    )
}
_INSTANCE_SCALING_KEYS = {"provisioned_concurrency_utilization": "only hosting 'serverless' takes it; remove it"}
# Async endpoints publish no InvocationsPerInstance; they scale on their backlog alone.
_ASYNC_SCALES_ON_BACKLOG = "async endpoints scale on backlog_per_instance; remove it"
ASYNC_SCALING_KEYS = _INSTANCE_SCALING_KEYS | {
    "invocations_per_instance": _ASYNC_SCALES_ON_BACKLOG,
    "gpu_utilization_percent": _ASYNC_SCALES_ON_BACKLOG,
}
REAL_TIME_SCALING_KEYS = _INSTANCE_SCALING_KEYS | {"backlog_per_instance": "only hosting 'async' takes it; remove it"}
MULTI_MODEL_SCALING_KEYS = REAL_TIME_SCALING_KEYS | {
    "gpu_utilization_percent": "multi-model endpoints run on CPU instances only; remove it"
}


def check_triton(node: Node, endpoint: MultiModelConfig) -> None:
    """SageMaker runs GPU multi-model endpoints only on NVIDIA Triton, which cannot run this project's archives."""
    if endpoint.instance.is_gpu:
        raise ConfigError(
            f"{node.key('instance_type')}: multi-model endpoints on GPU instances ({endpoint.instance_type}) run only "
            "NVIDIA Triton, which serves a Triton model repository, not this project's inference.py archives; use "
            "hosting 'inference-components' for GPU, or a CPU instance type"
        )


def check_handler_image(node: Node, endpoint: EndpointConfig) -> None:
    """The archives hold an inference.py for the SageMaker PyTorch container; a Triton image would not run it."""
    if defaults.TRITON_REPOSITORY in endpoint.image:
        raise ConfigError(
            f"{node.key('image')}: {endpoint.image} is an NVIDIA Triton image, which serves a Triton model repository; "
            "this project deploys inference.py archives, which need the SageMaker PyTorch inference image "
            "(remove 'image' for the default)"
        )


def check_instances(node: Node, endpoint: InstanceEndpointConfig) -> None:
    instance, count = endpoint.instance, endpoint.instance_count
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
    if endpoint.instance_type.startswith("ml.t"):
        key = node.key("instance_type")
        raise ConfigError(f"{key}: burstable {endpoint.instance_type} cannot be autoscaled; use ml.c5 or ml.m5")
    if not endpoint.scaling.min_instances <= count <= endpoint.scaling.max_instances:
        raise ConfigError(
            f"{node.key('instance_count')}: {count} is outside scaling bounds "
            f"[{endpoint.scaling.min_instances}, {endpoint.scaling.max_instances}]"
        )


def _resources(endpoint: InferenceComponentsConfig) -> list[tuple[str, float, Callable[[ComponentModel], float]]]:
    """Per resource: its name, what one instance offers, and what one copy of a model reserves."""
    instance = endpoint.instance
    return [
        ("accelerators", instance.gpus, lambda m: m.accelerators),
        ("cpu_cores", instance.vcpus, lambda m: m.cpu_cores),
        ("memory_mb", instance.memory_gib * 1024, lambda m: m.memory_mb),
    ]


def per_instance(endpoint: InferenceComponentsConfig, model: ComponentModel) -> int:
    """How many copies of ``model`` one instance holds: a copy never spans instances."""
    return int(min((have // need(model) for _, have, need in _resources(endpoint) if need(model) > 0), default=0))


def fair_max_copies(endpoint: InferenceComponentsConfig) -> tuple[ComponentModel, ...]:
    """The models, each without ``max_copies`` given (0) getting its ``copies`` plus an equal share of what the
    largest fleet has left once every model's least (``copies``, or the ``max_copies`` given) is set aside.

    The share is counted in copies of the model on its scarcest resource, and capped at what the fleet's
    instances hold of that model one by one.
    """
    fleet = endpoint.scaling.max_instances
    defaulted = [m for m in endpoint.models if not m.max_copies]
    models = []
    for m in endpoint.models:
        if m.max_copies:
            models.append(m)
            continue
        extras = []
        for _, have, need in _resources(endpoint):
            if need(m) > 0:
                left = have * fleet - sum((o.max_copies or o.copies) * need(o) for o in endpoint.models)
                extras.append(max(0, int(left / len(defaulted) // need(m))))
        largest = min(m.copies + min(extras, default=0), per_instance(endpoint, m) * fleet)
        models.append(replace(m, max_copies=max(m.copies, largest)))
    return tuple(models)


def check_capacity(node: Node, endpoint: InferenceComponentsConfig) -> None:
    """The copies fit the instances at the start, and every model at its ``max_copies`` fits the largest fleet:
    otherwise autoscaling asks for copies that no instance can hold, and they wait unplaced.

    Checked: each resource summed over the fleet, and each model alone against what the instances hold of it one
    by one (a copy never spans instances). How several models pack together is left to SageMaker.
    """
    count, fleet = endpoint.instance_count, endpoint.scaling.max_instances
    for i, m in enumerate(endpoint.models):
        if m.max_copies < m.copies:
            raise node.fail(f"models[{i}].max_copies", m.max_copies, f"at least its copies ({m.copies})")
        if m.max_copies > (fits := per_instance(endpoint, m) * fleet):
            raise node.fail(
                f"models[{i}].max_copies",
                m.max_copies,
                f"at most {fits}: {per_instance(endpoint, m)} copies fit on one {endpoint.instance_type}, and "
                f"scaling.max_instances is {fleet}",
            )
    for field, have, need in _resources(endpoint):
        start = sum(m.copies * need(m) for m in endpoint.models)
        if start > have * count:
            raise ConfigError(
                f"{node.key('models')}: the inference components reserve {start:g} {field} in all, but "
                f"{count} x {endpoint.instance_type} offer {have * count:g}; "
                "raise instance_count, pick a larger instance type, or reserve less per copy"
            )
        largest = sum(m.max_copies * need(m) for m in endpoint.models)
        if largest > have * fleet:
            asked = ", ".join(f"{m.name} {m.max_copies} x {need(m):g}" for m in endpoint.models)
            raise ConfigError(
                f"{node.key('models')}: at their max_copies the inference components ask for {largest:g} {field} "
                f"({asked}), but the largest fleet, scaling.max_instances {fleet} x {endpoint.instance_type}, offers "
                f"{have * fleet:g}; lower max_copies, or raise scaling.max_instances"
            )


def check_rollback_timing(node: Node, endpoint: EndpointConfig) -> None:
    """A rollout that rolls back on alarms must wait, after each traffic shift or batch, long enough for an alarm
    to fire: ``evaluation_minutes`` one-minute datapoints after the partial minute of the shift, plus the delay
    before the last one arrives. Shorter, and a bad release has taken all traffic before any alarm could stop it."""
    rollout, minutes = endpoint.rollout, endpoint.alarms.evaluation_minutes
    # One minute more than the window: the minute in which traffic shifts holds only part of the new traffic.
    needed = 60 * (minutes + 1) + rollout.alarm_delay_s
    if rollout.auto_rollback and rollout.wait_s < needed:
        raise ConfigError(
            f"{node.key('rollout.wait_s')}: {rollout.wait_s} s is shorter than the rollback alarms need to fire, "
            f"{needed} s ((alarms.evaluation_minutes {minutes} + 1 for the minute of the shift) x 60 s + "
            f"rollout.alarm_delay_s {rollout.alarm_delay_s} s); wait at least {needed} s (at most 3600), or "
            "evaluate alarms over fewer minutes"
        )


def check_serverless(node: Node, endpoint: ServerlessConfig) -> None:
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
