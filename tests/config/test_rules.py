"""Combinations SageMaker would reject at deploy time, and keys a hosting mode would ignore, are refused at synth
time with the fix: compliant / non-compliant pairs."""

from __future__ import annotations

from typing import Any

import pytest

from creative_scoring.config import ConfigError, InferenceComponentsConfig, ServerlessConfig, parse_environments
from creative_scoring.config.defaults import pytorch_image
from tests.config.conftest import (
    DEV_ASYNC,
    DEV_SERVERLESS,
    GPU_IMAGE,
    MODELS,
    PROD_ASYNC,
    endpoint_in,
    parse,
    parse_endpoint,
    refused,
)


def test_multi_model_on_cpu_is_accepted(context: dict[str, Any]) -> None:
    parse(context)  # dev: multi-model on ml.c5.xlarge with the PyTorch CPU image


def test_multi_model_on_gpu_is_refused_because_only_triton_runs_it(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev").update(instance_type="ml.g5.xlarge", encrypt_volume=False)
    with pytest.raises(ConfigError, match=r"run only NVIDIA Triton.*use hosting 'inference-components' for GPU"):
        parse(context)


@pytest.mark.parametrize(("env", "instance_type"), [("dev", "ml.g5.xlarge"), ("dev", "ml.c5.xlarge"), ("prod", None)])
def test_a_triton_image_is_refused_because_the_archives_are_inference_py_handlers(
    context: dict[str, Any], env: str, instance_type: str | None
) -> None:
    triton = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
    endpoint = endpoint_in(context, env)
    endpoint.update(
        image=triton, **({"instance_type": instance_type, "encrypt_volume": False} if instance_type else {})
    )
    with pytest.raises(ConfigError, match=r"(run only NVIDIA Triton|is an NVIDIA Triton image)"):
        parse(context)


def test_volume_size_on_ebs_instance_is_accepted(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev")["volume_size_gb"] = 30
    parse(context)


def test_volume_size_on_nvme_instance_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["volume_size_gb"] = 30
    with pytest.raises(ConfigError, match=r"ml\.g5\.xlarge has local NVMe storage and takes no VolumeSizeInGB"):
        parse(context)


def test_volume_encryption_on_nvme_instance_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["encrypt_volume"] = True
    with pytest.raises(ConfigError, match="SageMaker rejects a KmsKeyId for it; set encrypt_volume to false"):
        parse(context)


def test_components_that_fit_the_gpus_are_accepted(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["instance_count"] = 3
    parse(context)


def test_components_that_need_more_gpus_than_the_instances_have_are_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["models"][0]["copies"] = 2
    with pytest.raises(ConfigError, match=r"reserve 4 accelerators in all, but 3 x ml\.g5\.xlarge offer 3"):
        parse(context)


def test_each_component_scales_by_default_to_its_share_of_the_largest_fleet(context: dict[str, Any]) -> None:
    endpoint = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig)
    assert endpoint.scaling.max_instances == 6  # x ml.g5.xlarge: 6 GPUs for 3 models of 1 GPU a copy
    assert [m.max_copies for m in endpoint.models] == [2, 2, 2]


def test_max_copies_that_fit_the_largest_fleet_are_accepted(context: dict[str, Any]) -> None:
    models = endpoint_in(context, "prod")["models"]
    models[0]["max_copies"], models[1]["max_copies"], models[2]["max_copies"] = 4, 1, 1
    endpoint = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig)
    assert [m.max_copies for m in endpoint.models] == [4, 1, 1]


def test_max_copies_beyond_the_largest_fleet_are_refused(context: dict[str, Any]) -> None:
    for model, largest in zip(endpoint_in(context, "prod")["models"], (4, 2, 2), strict=True):
        model["max_copies"] = largest  # 4 + 2 + 2 GPUs, 6 instances of 1
    with pytest.raises(ConfigError, match=r"ask for 8 accelerators \(creative-scorer-v1 4 x 1, .*offers 6"):
        parse(context)


def test_the_default_share_leaves_room_for_larger_least_counts_and_for_max_copies_given(
    context: dict[str, Any],
) -> None:
    endpoint = endpoint_in(context, "prod")
    for copies, expected in (([1, 1, 1], [2, 2, 2]), ([4, 1, 1], [4, 1, 1])):  # 6 GPUs at most
        for model, n in zip(endpoint["models"], copies, strict=True):
            model["copies"] = n
        endpoint["instance_count"] = sum(copies)
        parsed = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig)
        assert [m.max_copies for m in parsed.models] == expected
    for model in endpoint["models"]:
        model["copies"] = 1
    endpoint["models"][0]["max_copies"] = 3
    endpoint["instance_count"] = 3
    parsed = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig)
    assert [m.max_copies for m in parsed.models] == [3, 1, 1]  # the others share the 1 GPU left: too little


def test_a_copy_never_spans_instances(context: dict[str, Any]) -> None:
    endpoint = endpoint_in(context, "prod")
    endpoint["models"] = [{"name": "creative-scorer-v1", "accelerators": 0, "cpu_cores": 3, "memory_mb": 2048}]
    parsed = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig)
    assert parsed.models[0].max_copies == 6  # 24 vCPUs hold 8 copies of 3, but one ml.g5.xlarge (4 vCPUs) holds 1
    endpoint["models"][0]["max_copies"] = 8
    with pytest.raises(ConfigError, match=r"max_copies: 8 is not allowed; expected at most 6: 1 copies fit on one"):
        parse(context)


def test_max_copies_below_copies_are_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["models"][0].update(copies=2, max_copies=1)
    with pytest.raises(ConfigError, match=r"models\[0\]\.max_copies: 1 is not allowed; expected at least its copies"):
        parse(context)


def test_burstable_instances_are_refused_because_they_cannot_autoscale(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev")["instance_type"] = "ml.t2.medium"
    with pytest.raises(ConfigError, match=r"burstable ml\.t2\.medium cannot be autoscaled"):
        parse(context)


def test_instance_count_outside_scaling_bounds_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["instance_count"] = 7
    with pytest.raises(ConfigError, match=r"instance_count: 7 is outside scaling bounds \[3, 6\]"):
        parse(context)


# Serverless: no instance, volume or multi-model settings, and no GPU.


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
    endpoint_in(context, "dev", DEV_SERVERLESS)[key] = value
    refused(context, f"creative-scoring.environments.dev.endpoints[1].{message}")


def test_serverless_endpoint_with_a_cpu_image_is_accepted(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_SERVERLESS)["image"] = pytorch_image("us-east-1", gpu=False)
    parse(context)


def test_serverless_rolling_rollout_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_SERVERLESS)["rollout"]["strategy"] = "rolling"
    refused(context, "rollout.strategy: 'rolling' is not allowed; expected 'blue-green'")


def test_serverless_scaling_of_instances_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_SERVERLESS)["scaling"] = {"max_instances": 4}
    refused(context, "scaling.max_instances: serverless endpoints scale provisioned concurrency")


def test_serverless_scaling_of_provisioned_concurrency_is_accepted(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_SERVERLESS)["scaling"] = {"provisioned_concurrency_utilization": 0.7}
    assert (
        parse_endpoint(context, "dev", DEV_SERVERLESS, ServerlessConfig).scaling.provisioned_concurrency_utilization
        == 0.7
    )


# Settings of another hosting mode: only async endpoints scale to zero.


def test_scaling_to_zero_is_accepted_for_async(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev", DEV_ASYNC)["scaling"]["min_instances"] = 0
    parse(context)


@pytest.mark.parametrize(("env", "name"), [("dev", "creative-scoring-dev"), ("prod", "creative-scoring-prod")])
def test_scaling_to_zero_is_refused_for_real_time_endpoints(context: dict[str, Any], env: str, name: str) -> None:
    endpoint_in(context, env, name)["scaling"]["min_instances"] = 0
    refused(context, "scaling.min_instances: 0 is allowed only for hosting 'async', which queues requests")


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
    endpoint_in(context, env, name)[key] = value
    refused(context, message)


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
    endpoint_in(context, env, name)["scaling"][key] = 1
    refused(context, f"scaling.{key}: {message}")


def test_async_on_gpu_with_an_encrypted_volume_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod", PROD_ASYNC)["encrypt_volume"] = True
    refused(context, "encrypt_volume: ml.g5.xlarge has local NVMe storage")


def test_a_bake_shorter_than_the_rollback_alarms_need_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "dev")["rollout"]["wait_s"] = 240  # 3 datapoints after the shift's minute + 60 s: 300 s
    with pytest.raises(
        ConfigError, match=r"rollout\.wait_s: 240 s is shorter than the rollback alarms need to fire, 300 s"
    ):
        parse(context)


@pytest.mark.parametrize(
    ("rollout", "alarms"),
    [
        ({"wait_s": 300}, {"evaluation_minutes": 3}),  # exactly the shift's minute, the window and the delay
        ({"wait_s": 180}, {"evaluation_minutes": 1}),
        ({"wait_s": 260, "alarm_delay_s": 20}, {"evaluation_minutes": 3}),  # a delay measured shorter
        ({"wait_s": 120, "auto_rollback": False}, {"evaluation_minutes": 3}),  # nothing to wait for
    ],
)
def test_a_bake_that_lets_the_rollback_alarms_fire_is_accepted(
    context: dict[str, Any], rollout: dict[str, Any], alarms: dict[str, Any]
) -> None:
    for env, name in (("dev", None), ("prod", None)):  # blue/green (dev) and rolling (prod)
        endpoint = endpoint_in(context, env, name)
        endpoint["rollout"].update(rollout)
        endpoint["alarms"].update(alarms)
    parse(context)


def test_the_alarm_delay_is_part_of_the_bake_needed(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["rollout"]["alarm_delay_s"] = 180  # (3 + 1) x 60 + 180 = 420 > 300
    with pytest.raises(ConfigError, match=r"rollout\.alarm_delay_s 180 s\); wait at least 420 s"):
        parse(context)


def test_routing_defaults_to_least_outstanding_requests_on_both_real_time_instance_modes(
    context: dict[str, Any],
) -> None:
    environments = parse_environments(context["creative-scoring"], MODELS)
    routed = {e.name: getattr(e, "routing", None) for env in environments.values() for e in env.endpoints}
    assert routed == {
        "creative-scoring-dev": "LEAST_OUTSTANDING_REQUESTS",
        DEV_SERVERLESS: None,
        DEV_ASYNC: None,
        "creative-scoring-prod": "LEAST_OUTSTANDING_REQUESTS",
        PROD_ASYNC: None,
    }


def test_routing_random_is_taken_and_an_unknown_strategy_is_refused(context: dict[str, Any]) -> None:
    endpoint_in(context, "prod")["routing"] = "random"
    assert parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig).routing == "RANDOM"
    endpoint_in(context, "prod")["routing"] = "round-robin"
    with pytest.raises(ConfigError, match=r"routing: 'round-robin' is not allowed; expected one of"):
        parse(context)


@pytest.mark.parametrize(("env", "name"), [("dev", DEV_ASYNC), ("dev", DEV_SERVERLESS), ("prod", PROD_ASYNC)])
def test_routing_on_a_mode_without_a_routing_strategy_is_refused(context: dict[str, Any], env: str, name: str) -> None:
    endpoint_in(context, env, name)["routing"] = "random"
    with pytest.raises(ConfigError, match=r"routing: only the real-time instance modes"):
        parse(context)


def test_data_capture_is_on_for_async_off_for_components_unless_asked_and_refused_where_sagemaker_has_none(
    context: dict[str, Any],
) -> None:
    environments = parse_environments(context["creative-scoring"], MODELS)
    captured = {
        e.name: (e.data_capture.enabled, e.data_capture.sampling_percent)
        for env in environments.values()
        for e in env.endpoints
        if hasattr(e, "data_capture")
    }
    assert captured == {DEV_ASYNC: (True, 10), "creative-scoring-prod": (False, 10), PROD_ASYNC: (True, 10)}
    endpoint_in(context, "prod")["data_capture"] = {"enabled": True, "sampling_percent": 100}
    capture = parse_endpoint(context, "prod", "creative-scoring-prod", InferenceComponentsConfig).data_capture
    assert (capture.enabled, capture.sampling_percent) == (True, 100)
    endpoint_in(context, "prod")["data_capture"] = {"sampling_percent": 0}
    with pytest.raises(ConfigError, match=r"data_capture\.sampling_percent: 0 is not allowed"):
        parse(context)


@pytest.mark.parametrize(("name", "mode"), [("creative-scoring-dev", "multi-model"), (DEV_SERVERLESS, "serverless")])
def test_data_capture_where_sagemaker_captures_nothing_is_refused(
    context: dict[str, Any], name: str, mode: str
) -> None:
    endpoint_in(context, "dev", name)["data_capture"] = {"enabled": True}
    with pytest.raises(ConfigError, match=rf"data_capture: SageMaker captures no data on {mode} endpoints"):
        parse(context)
