"""What a deployable configuration may hold: value forms, the keys each hosting mode refuses, and the
combinations SageMaker would reject at deploy time, refused at synth time with the fix."""

from __future__ import annotations

import re

from creative_scoring.config import defaults
from creative_scoring.config.model import (
    BLUE_GREEN,
    ROLLING,
    AsyncConfig,
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


def _one_model_keys(hosting: str) -> dict[str, str]:
    return {
        "models": f"{hosting} endpoints host one model; name it in 'model' and remove models",
        "model_cache": f"{hosting} endpoints keep their one model loaded; remove model_cache",
    }


ASYNC_KEYS = {**_one_model_keys(AsyncConfig.hosting), "serverless": "only hosting 'serverless' takes it; remove it"}
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


def check_triton(node: Node, endpoint: MultiModelConfig) -> None:
    key = node.key("instance_type")
    if endpoint.instance.is_gpu and defaults.TRITON_REPOSITORY not in endpoint.image:
        raise ConfigError(
            f"{key}: multi-model endpoints on GPU instances ({endpoint.instance_type}) accept only NVIDIA Triton "
            f"images, not {endpoint.image}; use hosting 'inference-components' for GPU, a CPU instance type, "
            "or a sagemaker-tritonserver image"
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


def check_capacity(node: Node, endpoint: InferenceComponentsConfig) -> None:
    instance, count = endpoint.instance, endpoint.instance_count
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
