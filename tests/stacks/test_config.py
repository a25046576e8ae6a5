"""Configuration errors stop synth with a message naming the key, the value and the fix."""

from __future__ import annotations

import copy
import re
from typing import Any

import aws_cdk as cdk
import pytest

import app
from stacks.config import ASYNC, SERVERLESS, AsyncInference, ConfigError, EndpointConfig, Serverless, parse_environments
from stacks.defaults import pytorch_image

MODELS = ["creative-scorer-v1", "creative-scorer-v2", "creative-scorer-social-v1"]
DEV_SERVERLESS = "creative-scoring-dev-serverless"
DEV_ASYNC = "creative-scoring-dev-async"
PROD_ASYNC = "creative-scoring-prod-async"
GPU_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"


def _endpoint(context: dict[str, Any], env: str, name: str | None = None) -> dict[str, Any]:
    """The first endpoint of ``env``, or the one called ``name``."""
    endpoints: list[dict[str, Any]] = context["creative-scoring"]["environments"][env]["endpoints"]
    return next(e for e in endpoints if name in (None, e["name"]))


def _parse(context: dict[str, Any]) -> None:
    parse_environments(context["creative-scoring"], MODELS)


def _parsed(context: dict[str, Any], env: str, name: str) -> EndpointConfig:
    environments = parse_environments(context["creative-scoring"], MODELS)
    return next(e for e in environments[env].endpoints if e.name == name)


def _refused(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _parse(context)


def test_the_committed_configuration_parses(context: dict[str, Any]) -> None:
    environments = parse_environments(context["creative-scoring"], MODELS)
    assert set(environments) == {"dev", "prod"}
    assert environments["prod"].endpoints[0].instance_type == "ml.g5.xlarge"
    assert environments["prod"].endpoints[0].gpus == 1


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


# The image: SageMaker pulls it from ECR, and the execution role may pull from its repository only.

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ECR_IMAGE_FORM = "expected an ECR image URI such as <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>"


@pytest.mark.parametrize(
    "image",
    [
        f"{ECR}/creative-scoring/pytorch-inference:2.6.0-cpu",
        f"{ECR}/pytorch-inference@sha256:{'0' * 64}",
        f"{ECR}/pytorch-inference",  # no tag: SageMaker pulls :latest
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-inference:2.6.0",
    ],
)
def test_ecr_image_is_accepted(context: dict[str, Any], image: str) -> None:
    _endpoint(context, "dev")["image"] = image
    assert _parsed(context, "dev", "creative-scoring-dev").image == image


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime", ECR_IMAGE_FORM),  # Docker Hub
        ("public.ecr.aws/docker/library/python:3.12", ECR_IMAGE_FORM),  # ECR Public is not a private registry
        (f"{ECR}/", ECR_IMAGE_FORM),  # no repository
        (f"{ECR}/pytorch-inference:2.6.0 ", ECR_IMAGE_FORM),
        (["pytorch-inference"], "expected a str"),
    ],
)
def test_image_outside_ecr_is_a_configuration_error_naming_the_key(
    context: dict[str, Any], image: Any, allowed: str
) -> None:
    _endpoint(context, "dev")["image"] = image
    _refused(context, f"environments.dev.endpoints[0].image: {image!r} is not allowed; {allowed}")


# Whatever cdk.json holds, parsing ends in a ConfigError naming the key, never in another exception.

WRONG_TYPES = {"list": ["x"], "object": {"x": 1}, "string": "x", "bool": True, "number": 1.5}


def _json_type(value: Any) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "bool"),  # before number: a bool is an int
        ((int, float), "number"),
        (list, "list"),
        (dict, "object"),
        (str, "string"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def _keys(value: Any, path: str) -> list[tuple[str, list[str | int], Any]]:
    """Every key path under ``value`` (as errors spell it), how to reach it, and the committed value."""
    items: list[tuple[str | int, str]] = []
    if isinstance(value, dict):
        items = [(k, f"{path}.{k}") for k in value]
    elif isinstance(value, list):
        items = [(i, f"{path}[{i}]") for i in range(len(value))]
    found: list[tuple[str, list[str | int], Any]] = []
    for key, key_path in items:
        found.append((key_path, [key], value[key]))
        found += [(p, [key, *steps], v) for p, steps, v in _keys(value[key], key_path)]
    return found


def _replaced(context: dict[str, Any], steps: list[str | int], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(context)
    parent = changed["creative-scoring"]
    for step in steps[:-1]:
        parent = parent[step]
    parent[steps[-1]] = value
    return changed


def test_a_value_of_the_wrong_type_anywhere_is_a_configuration_error_naming_its_key(context: dict[str, Any]) -> None:
    keys = _keys(context["creative-scoring"], "creative-scoring")
    assert len(keys) > 150  # every key of both environments, down to each inference-component model
    unnamed = []
    for path, steps, committed in keys:
        for wrong in (v for kind, v in WRONG_TYPES.items() if kind != _json_type(committed)):
            try:
                _parse(_replaced(context, steps, wrong))
            except ConfigError as e:
                if not str(e).startswith(f"{path}: ") and not str(e).startswith(f"{path}."):
                    unnamed.append(f"{path} = {wrong!r}: {e}")
            else:
                unnamed.append(f"{path} = {wrong!r}: accepted")
    assert unnamed == []


# Serverless: one model on CPU, sized by memory and concurrency; no instance, volume or multi-model settings.


def test_committed_serverless_endpoint_has_one_model_and_no_instances(context: dict[str, Any]) -> None:
    endpoint = _parsed(context, "dev", DEV_SERVERLESS)
    assert (endpoint.hosting, endpoint.model) == (SERVERLESS, "creative-scorer-v1")
    assert endpoint.serverless == Serverless(memory_mb=2048, max_concurrency=5, provisioned_concurrency=0)
    assert (endpoint.instance_type, endpoint.instance, endpoint.instance_count) == (None, None, None)
    assert (endpoint.async_inference, endpoint.models, endpoint.encrypt_volume) == (None, (), False)
    assert endpoint.image == pytorch_image("us-east-1", gpu=False)


def test_serverless_defaults_need_only_a_model(context: dict[str, Any]) -> None:
    endpoint = _endpoint(context, "dev", DEV_SERVERLESS)
    for key in ("serverless", "alarms", "rollout"):
        del endpoint[key]
    assert _parsed(context, "dev", DEV_SERVERLESS).serverless == Serverless(
        memory_mb=2048, max_concurrency=5, provisioned_concurrency=0
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "instance_type",
            "ml.c5.xlarge",
            "instance_type: serverless endpoints run on CPU only; remove instance_type, or use hosting "
            "'inference-components' for GPU",
        ),
        ("instance_count", 1, "instance_count: serverless endpoints have no instances"),
        ("models", [{"name": "creative-scorer-v1"}], "models: serverless endpoints host one model; name it in 'model'"),
        ("model_cache", "Enabled", "model_cache: serverless endpoints keep their one model loaded; remove"),
        ("volume_size_gb", 30, "volume_size_gb: serverless endpoints have no ML storage volume; remove it"),
        ("encrypt_volume", True, "encrypt_volume: serverless endpoints have no ML storage volume; remove it"),
        ("async", {}, "async: only hosting 'async' takes it; remove it"),
        ("image", GPU_IMAGE, f"image: serverless endpoints run on CPU only, and {GPU_IMAGE} is a GPU image"),
        ("model", "creative-scorer-v9", "model: 'creative-scorer-v9' is not allowed; expected one of"),
    ],
)
def test_serverless_endpoint_refuses_what_serverless_compute_cannot_do(
    context: dict[str, Any], key: str, value: Any, message: str
) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)[key] = value
    _refused(context, f"creative-scoring.environments.dev.endpoints[1].{message}")


def test_serverless_endpoint_without_a_model_is_refused(context: dict[str, Any]) -> None:
    del _endpoint(context, "dev", DEV_SERVERLESS)["model"]
    _refused(context, "endpoints[1].model: required key is missing")


def test_serverless_endpoint_with_a_cpu_image_is_accepted(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["image"] = pytorch_image("us-east-1", gpu=False)
    _parse(context)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"memory_mb": 1536}, "serverless.memory_mb: 1536 is not allowed; expected 1024, 2048, 3072"),
        ({"memory_mb": 7168}, "serverless.memory_mb: 7168 is not allowed; expected a value between 1024 and 6144"),
        (
            {"max_concurrency": 201},
            "serverless.max_concurrency: 201 is not allowed; expected a value between 1 and 200",
        ),
        (
            {"max_concurrency": 5, "provisioned_concurrency": 6},
            "serverless.provisioned_concurrency: 6 is not allowed; expected a value between 0 and 5",
        ),
    ],
)
def test_serverless_capacity_outside_what_sagemaker_offers_is_refused(
    context: dict[str, Any], settings: dict[str, int], message: str
) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["serverless"].update(settings)
    _refused(context, message)


@pytest.mark.parametrize(
    "settings",
    [{"memory_mb": 6144}, {"memory_mb": 1024}, {"max_concurrency": 200}, {"provisioned_concurrency": 5}],
)
def test_serverless_capacity_at_the_limits_is_accepted(context: dict[str, Any], settings: dict[str, int]) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["serverless"].update(settings)
    _parse(context)


def test_serverless_rolling_rollout_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["rollout"]["strategy"] = "rolling"
    _refused(context, "rollout.strategy: 'rolling' is not allowed; expected 'blue-green'")


def test_serverless_scaling_of_instances_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["scaling"] = {"max_instances": 4}
    _refused(context, "scaling.max_instances: serverless endpoints scale provisioned concurrency")


def test_serverless_scaling_of_provisioned_concurrency_is_accepted(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_SERVERLESS)["scaling"] = {"provisioned_concurrency_utilization": 0.7}
    assert _parsed(context, "dev", DEV_SERVERLESS).scaling.provisioned_concurrency_utilization == 0.7


# Async: one model on instances (GPU allowed), scaling to zero on its backlog.


def test_committed_async_endpoints_scale_to_zero(context: dict[str, Any]) -> None:
    dev = _parsed(context, "dev", DEV_ASYNC)
    assert (dev.hosting, dev.model, dev.instance_type, dev.encrypt_volume) == (
        ASYNC,
        "creative-scorer-v2",
        "ml.c5.xlarge",
        True,
    )
    assert dev.async_inference == AsyncInference(
        max_concurrent_invocations_per_instance=4, include_response_in_notifications=False
    )
    assert (dev.scaling.min_instances, dev.scaling.max_instances, dev.scaling.backlog_per_instance) == (0, 2, 5)
    assert (dev.serverless, dev.models) == (None, ())
    prod = _parsed(context, "prod", PROD_ASYNC)
    assert (prod.instance_type, prod.gpus, prod.encrypt_volume, prod.scaling.min_instances) == (
        "ml.g5.xlarge",
        1,
        False,
        0,
    )
    assert prod.image == pytorch_image("us-east-1", gpu=True)


def test_async_defaults_need_only_a_model_and_an_instance_type(context: dict[str, Any]) -> None:
    endpoint = _endpoint(context, "dev", DEV_ASYNC)
    for key in ("async", "scaling", "alarms", "rollout", "instance_count"):
        del endpoint[key]
    parsed = _parsed(context, "dev", DEV_ASYNC)
    assert parsed.async_inference == AsyncInference(
        max_concurrent_invocations_per_instance=4, include_response_in_notifications=False
    )
    assert (parsed.instance_count, parsed.scaling.min_instances, parsed.scaling.backlog_per_instance) == (1, 1, 5)


def test_scaling_to_zero_is_accepted_for_async(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_ASYNC)["scaling"]["min_instances"] = 0
    _parse(context)


@pytest.mark.parametrize(("env", "name"), [("dev", "creative-scoring-dev"), ("prod", "creative-scoring-prod")])
def test_scaling_to_zero_is_refused_for_real_time_endpoints(context: dict[str, Any], env: str, name: str) -> None:
    _endpoint(context, env, name)["scaling"]["min_instances"] = 0
    _refused(context, "scaling.min_instances: 0 is allowed only for hosting 'async', which queues requests")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"max_concurrent_invocations_per_instance": 0},
            "async.max_concurrent_invocations_per_instance: 0 is not allowed; expected a value between 1 and 1000",
        ),
        (
            {"max_concurrent_invocations_per_instance": 1001},
            "async.max_concurrent_invocations_per_instance: 1001 is not allowed",
        ),
        (
            {"include_response_in_notifications": "yes"},
            "async.include_response_in_notifications: 'yes' is not allowed; expected a bool",
        ),
    ],
)
def test_async_settings_outside_what_sagemaker_accepts_are_refused(
    context: dict[str, Any], settings: dict[str, Any], message: str
) -> None:
    _endpoint(context, "dev", DEV_ASYNC)["async"].update(settings)
    _refused(context, message)


def test_async_settings_at_the_limits_are_accepted(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_ASYNC)["async"].update(
        max_concurrent_invocations_per_instance=1000, include_response_in_notifications=True
    )
    assert _parsed(context, "dev", DEV_ASYNC).async_inference == AsyncInference(
        max_concurrent_invocations_per_instance=1000, include_response_in_notifications=True
    )


@pytest.mark.parametrize(
    ("env", "name", "key", "value", "message"),
    [
        ("dev", DEV_ASYNC, "models", [], "models: async endpoints host one model; name it in 'model'"),
        ("dev", DEV_ASYNC, "model_cache", "Enabled", "model_cache: async endpoints keep their one model loaded"),
        ("dev", DEV_ASYNC, "serverless", {}, "serverless: only hosting 'serverless' takes it; remove it"),
        ("dev", "creative-scoring-dev", "model", "creative-scorer-v1", "model: only hosting 'serverless' and 'async'"),
        ("dev", "creative-scoring-dev", "async", {}, "async: only hosting 'serverless' and 'async' take it"),
        ("prod", "creative-scoring-prod", "serverless", {}, "serverless: only hosting 'serverless' and 'async'"),
    ],
)
def test_settings_of_another_hosting_mode_are_refused(
    context: dict[str, Any], env: str, name: str, key: str, value: Any, message: str
) -> None:
    _endpoint(context, env, name)[key] = value
    _refused(context, message)


@pytest.mark.parametrize(
    ("env", "name", "key", "message"),
    [
        ("dev", DEV_ASYNC, "invocations_per_instance", "async endpoints scale on backlog_per_instance; remove it"),
        ("prod", PROD_ASYNC, "gpu_utilization_percent", "async endpoints scale on backlog_per_instance; remove it"),
        ("dev", "creative-scoring-dev", "backlog_per_instance", "only hosting 'async' takes it; remove it"),
        ("dev", DEV_ASYNC, "provisioned_concurrency_utilization", "only hosting 'serverless' takes it"),
    ],
)
def test_scaling_keys_of_another_hosting_mode_are_refused(
    context: dict[str, Any], env: str, name: str, key: str, message: str
) -> None:
    _endpoint(context, env, name)["scaling"][key] = 1
    _refused(context, f"scaling.{key}: {message}")


def test_async_on_gpu_with_an_encrypted_volume_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "prod", PROD_ASYNC)["encrypt_volume"] = True
    _refused(context, "encrypt_volume: ml.g5.xlarge has local NVMe storage")


def test_async_backlog_target_outside_its_range_is_refused(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", DEV_ASYNC)["scaling"]["backlog_per_instance"] = 0
    _refused(context, "scaling.backlog_per_instance: 0 is not allowed; expected a value between 1 and 10000")


def test_selecting_a_declared_environment_builds_only_its_stack(context: dict[str, Any]) -> None:
    stacks = app.build_app(cdk.App(context={**context, "env": "dev"}), nag=False)
    assert [stack.stack_name for stack in stacks] == ["CreativeScoring-dev"]


@pytest.mark.parametrize("selected", ["staging", ["dev"], {"dev": True}])
def test_selecting_anything_but_a_declared_environment_is_a_configuration_error(
    context: dict[str, Any], selected: Any
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"-c env={selected!r}: no such environment; declared: ['dev'")):
        app.build_app(cdk.App(context={**context, "env": selected}), nag=False)
