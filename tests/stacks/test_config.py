"""Configuration errors stop synth with a message naming the key, the value and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.config import ConfigError, parse_environments
from stacks.defaults import pytorch_image

MODELS = ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"]


def _endpoint(context: dict[str, Any], env: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = context["creative-scoring"]["environments"][env]["endpoints"][0]
    return endpoint


def _parse(context: dict[str, Any]) -> None:
    parse_environments(context["creative-scoring"], MODELS)


def test_the_committed_configuration_parses(context: dict[str, Any]) -> None:
    environments = parse_environments(context["creative-scoring"], MODELS)
    assert set(environments) == {"dev", "prod"}
    assert environments["prod"].endpoints[0].instance_type == "ml.g5.xlarge"
    assert environments["prod"].endpoints[0].instance.is_gpu


@pytest.mark.parametrize(
    ("env", "key", "value", "message"),
    [
        (
            "dev",
            "instance_type",
            "ml.x9.huge",
            "environments.dev.endpoints[0].instance_type: 'ml.x9.huge' is not allowed",
        ),
        ("dev", "hosting", "serverful", "hosting: 'serverful' is not allowed; expected one of"),
        ("dev", "name", "bad_name!", "name: 'bad_name!' is not allowed; expected 1-63 letters"),
        ("dev", "instance_count", 0, "instance_count: 0 is not allowed; expected a value between 1 and 100"),
        ("dev", "instance_count", "2", "instance_count: '2' is not allowed; expected a int"),
        ("dev", "model_cache", "Sometimes", "model_cache: 'Sometimes' is not allowed"),
    ],
)
def test_invalid_value_names_key_value_and_allowed(
    context: dict[str, Any], env: str, key: str, value: Any, message: str
) -> None:
    _endpoint(context, env)[key] = value
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _parse(context)


def test_unknown_model_in_inference_components_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["models"][0]["name"] = "creative-scorer-v9"
    with pytest.raises(ConfigError, match=r"models\[0\]\.name: 'creative-scorer-v9' is not allowed"):
        _parse(context)


def test_missing_region_is_named(context: dict[str, Any]) -> None:
    del context["creative-scoring"]["environments"]["dev"]["region"]
    with pytest.raises(ConfigError, match=r"environments\.dev\.region: required key is missing"):
        _parse(context)


def test_scaling_bounds_must_be_ordered(context: dict[str, Any]) -> None:
    _endpoint(context, "dev")["scaling"].update(min_instances=3, max_instances=2)
    with pytest.raises(ConfigError, match=r"scaling\.max_instances: 2 is not allowed; expected at least min_instances"):
        _parse(context)


def test_endpoint_names_are_unique_across_environments(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["name"] = "creative-scoring-dev"
    with pytest.raises(ConfigError, match="endpoint names \\['creative-scoring-dev'\\] are used twice"):
        _parse(context)


# Compliant / non-compliant pairs for each combination SageMaker would reject at deploy time.


def test_multi_model_on_cpu_is_accepted(context: dict[str, Any]) -> None:
    _parse(context)  # dev: multi-model on ml.c5.xlarge with the PyTorch CPU image


def test_multi_model_on_gpu_with_pytorch_image_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "dev").update(instance_type="ml.g5.xlarge", encrypt_volume=False)
    with pytest.raises(ConfigError, match=r"accept only NVIDIA Triton images.*use hosting 'inference-components'"):
        _parse(context)


def test_multi_model_on_gpu_with_triton_image_is_accepted(context: dict[str, Any]) -> None:
    triton = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
    _endpoint(context, "dev").update(instance_type="ml.g5.xlarge", encrypt_volume=False, image=triton)
    _parse(context)


def test_volume_size_on_ebs_instance_is_accepted(context: dict[str, Any]) -> None:
    _endpoint(context, "dev")["volume_size_gb"] = 30
    _parse(context)


def test_volume_size_on_nvme_instance_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["volume_size_gb"] = 30
    with pytest.raises(ConfigError, match=r"ml\.g5\.xlarge has local NVMe storage and takes no VolumeSizeInGB"):
        _parse(context)


def test_volume_encryption_on_nvme_instance_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["encrypt_volume"] = True
    with pytest.raises(ConfigError, match="SageMaker rejects a KmsKeyId for it; set encrypt_volume to false"):
        _parse(context)


def test_components_that_fit_the_gpus_are_accepted(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["instance_count"] = 3
    _parse(context)


def test_components_that_need_more_gpus_than_the_instances_have_are_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["models"][0]["copies"] = 2
    with pytest.raises(ConfigError, match=r"reserve 4 accelerators in all, but 3 x ml\.g5\.xlarge offer 3"):
        _parse(context)


def test_burstable_instances_are_refused_because_they_cannot_autoscale(context: dict[str, Any]) -> None:
    _endpoint(context, "dev")["instance_type"] = "ml.t2.medium"
    with pytest.raises(ConfigError, match=r"burstable ml\.t2\.medium cannot be autoscaled"):
        _parse(context)


def test_instance_count_outside_scaling_bounds_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod")["instance_count"] = 7
    with pytest.raises(ConfigError, match=r"instance_count: 7 is outside scaling bounds \[3, 6\]"):
        _parse(context)


def test_image_registry_follows_the_region() -> None:
    assert pytorch_image("us-east-1", gpu=True).startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    assert pytorch_image("af-south-1", gpu=False).startswith("626614931356.dkr.ecr.af-south-1.amazonaws.com/")
    assert pytorch_image("eu-west-1", gpu=True).endswith("-gpu-py312-cu124-ubuntu22.04-sagemaker")
