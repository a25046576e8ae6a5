"""cdk.json values become one typed configuration per endpoint; a wrong value stops synth naming its key."""

from __future__ import annotations

import copy
from dataclasses import fields
from typing import Any

import pytest

from creative_scoring.config import (
    AsyncConfig,
    AsyncInference,
    ConfigError,
    InferenceComponentsConfig,
    MultiModelConfig,
    Serverless,
    ServerlessConfig,
    parse_environments,
)
from creative_scoring.config.defaults import pytorch_image
from tests.config.conftest import (
    ASYNC,
    DEV_ASYNC,
    DEV_SERVERLESS,
    MODELS,
    PROD_ASYNC,
    SERVERLESS,
    endpoint_in,
    parse,
    parse_endpoint,
    refused,
)


def test_the_committed_configuration_parses(context: dict[str, Any]) -> None:
    environments = parse_environments(context["creative-scoring"], MODELS)
    assert set(environments) == {"dev", "prod"}
    prod = environments["prod"].endpoints[0]
    assert isinstance(prod, InferenceComponentsConfig)
    assert prod.instance_type == "ml.g5.xlarge"
    assert prod.gpus == 1


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
    endpoint_in(context, env)[key] = value
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(context)


def test_unknown_model_in_inference_components_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["models"][0]["name"] = "creative-scorer-v9"
    with pytest.raises(ConfigError, match=r"models\[0\]\.name: 'creative-scorer-v9' is not allowed"):
        parse(context)


def test_missing_region_is_named(context: dict[str, Any]) -> None:
    del context["creative-scoring"]["environments"]["dev"]["region"]
    with pytest.raises(ConfigError, match=r"environments\.dev\.region: required key is missing"):
        parse(context)


def test_scaling_bounds_must_be_ordered(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev")["scaling"].update(min_instances=3, max_instances=2)
    with pytest.raises(ConfigError, match=r"scaling\.max_instances: 2 is not allowed; expected at least min_instances"):
        parse(context)


def test_endpoint_names_are_unique_across_environments(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["name"] = "creative-scoring-dev"
    with pytest.raises(ConfigError, match="endpoint names \\['creative-scoring-dev'\\] are used twice"):
        parse(context)


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
    endpoint_in(context, "dev")["image"] = image
    assert parse_endpoint(context, "dev", "creative-scoring-dev", MultiModelConfig).image == image


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
    endpoint_in(context, "dev")["image"] = image
    refused(context, f"environments.dev.endpoints[0].image: {image!r} is not allowed; {allowed}")


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
                parse(_replaced(context, steps, wrong))
            except ConfigError as e:
                if not str(e).startswith(f"{path}: ") and not str(e).startswith(f"{path}."):
                    unnamed.append(f"{path} = {wrong!r}: {e}")
            else:
                unnamed.append(f"{path} = {wrong!r}: accepted")
    assert unnamed == []


# Serverless: one model on CPU, sized by memory and concurrency.


def test_committed_serverless_endpoint_has_one_model_and_no_instances(context: dict[str, Any]) -> None:
    endpoint = parse_endpoint(context, "dev", DEV_SERVERLESS, ServerlessConfig)
    assert (endpoint.hosting, endpoint.model) == (SERVERLESS, "creative-scorer-v1")
    assert endpoint.serverless == Serverless(memory_mb=2048, max_concurrency=5, provisioned_concurrency=0)
    assert {f.name for f in fields(endpoint)}.isdisjoint(
        {"instance_type", "instance", "instance_count", "async_inference", "models", "encrypt_volume"}
    )
    assert endpoint.image == pytorch_image("us-east-1", gpu=False)


def test_serverless_defaults_need_only_a_model(context: dict[str, Any]) -> None:
    endpoint = endpoint_in(context, "dev", DEV_SERVERLESS)
    for key in ("serverless", "alarms", "rollout"):
        del endpoint[key]
    assert parse_endpoint(context, "dev", DEV_SERVERLESS, ServerlessConfig).serverless == Serverless(
        memory_mb=2048, max_concurrency=5, provisioned_concurrency=0
    )


def test_serverless_endpoint_without_a_model_is_refused(context: dict[str, Any]) -> None:
    del endpoint_in(context, "dev", DEV_SERVERLESS)["model"]
    refused(context, "endpoints[1].model: required key is missing")


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
    endpoint_in(context, "dev", DEV_SERVERLESS)["serverless"].update(settings)
    refused(context, message)


@pytest.mark.parametrize(
    "settings",
    [{"memory_mb": 6144}, {"memory_mb": 1024}, {"max_concurrency": 200}, {"provisioned_concurrency": 5}],
)
def test_serverless_capacity_at_the_limits_is_accepted(context: dict[str, Any], settings: dict[str, int]) -> None:
    endpoint_in(context, "dev", DEV_SERVERLESS)["serverless"].update(settings)
    parse(context)


# Async: one model on instances (GPU allowed), scaling to zero on its backlog.


def test_committed_async_endpoints_scale_to_zero(context: dict[str, Any]) -> None:
    dev = parse_endpoint(context, "dev", DEV_ASYNC, AsyncConfig)
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
    assert {f.name for f in fields(dev)}.isdisjoint({"serverless", "models"})
    prod = parse_endpoint(context, "prod", PROD_ASYNC, AsyncConfig)
    assert (prod.instance_type, prod.gpus, prod.encrypt_volume, prod.scaling.min_instances) == (
        "ml.g5.xlarge",
        1,
        False,
        0,
    )
    assert prod.image == pytorch_image("us-east-1", gpu=True)


def test_async_defaults_need_only_a_model_and_an_instance_type(context: dict[str, Any]) -> None:
    endpoint = endpoint_in(context, "dev", DEV_ASYNC)
    for key in ("async", "scaling", "alarms", "rollout", "instance_count"):
        del endpoint[key]
    parsed = parse_endpoint(context, "dev", DEV_ASYNC, AsyncConfig)
    assert parsed.async_inference == AsyncInference(
        max_concurrent_invocations_per_instance=4, include_response_in_notifications=False
    )
    assert (parsed.instance_count, parsed.scaling.min_instances, parsed.scaling.backlog_per_instance) == (1, 1, 5)


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
    endpoint_in(context, "dev", DEV_ASYNC)["async"].update(settings)
    refused(context, message)


def test_async_settings_at_the_limits_are_accepted(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_ASYNC)["async"].update(
        max_concurrent_invocations_per_instance=1000, include_response_in_notifications=True
    )
    assert parse_endpoint(context, "dev", DEV_ASYNC, AsyncConfig).async_inference == AsyncInference(
        max_concurrent_invocations_per_instance=1000, include_response_in_notifications=True
    )


def test_async_backlog_target_outside_its_range_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_ASYNC)["scaling"]["backlog_per_instance"] = 0
    refused(context, "scaling.backlog_per_instance: 0 is not allowed; expected a value between 1 and 10000")
