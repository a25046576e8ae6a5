"""Serverless and async endpoints: one archive each, their capacity, queue, notifications, scaling and alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from creative_scoring.config.naming import output_id
from tests.stacks.conftest import (
    alarms_of,
    config_of,
    endpoint_named,
    model_of,
    resources,
    scaling_of,
    synth_templates,
)

SERVERLESS = "creative-scoring-dev-serverless"
ASYNC = "creative-scoring-dev-async"
PROD_ASYNC = "creative-scoring-prod-async"
CPU_IMAGE = "/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
GPU_IMAGE = "/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"


def _endpoint(context: dict[str, Any], env: str, name: str) -> dict[str, Any]:
    endpoints: list[dict[str, Any]] = context["creative-scoring"]["environments"][env]["endpoints"]
    return next(e for e in endpoints if e["name"] == name)


def _joined(value: Any) -> str:
    """The literal text of an ``Fn::Join`` (tokens as their JSON), to compare S3 paths and ARNs."""
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in value["Fn::Join"][1])


def _text(value: Any) -> str:
    """A resource ARN as text: a join spelled out, any other token as its JSON."""
    return _joined(value) if isinstance(value, dict) and "Fn::Join" in value else json.dumps(value)


def _dimensions(alarm: dict[str, Any]) -> set[str]:
    return {d["Name"] for d in alarm["Properties"]["Dimensions"]}


def _role_statements(template: Template, endpoint: str) -> list[dict[str, Any]]:
    """The policy statements of the execution role of ``endpoint``, found through its Model."""
    role_id = model_of(template, endpoint)[1]["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resources_allowed(statements: list[dict[str, Any]], action: str) -> list[str]:
    """Every resource (as text) that ``statements`` allow ``action`` on."""
    return sorted(
        _text(resource)
        for statement in statements
        if action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
    )


# Serverless


def test_serverless_endpoint_hosts_one_archive_on_cpu_serverless_compute(templates: dict[str, Template]) -> None:
    container = model_of(templates["dev"], SERVERLESS)[1]["Properties"]["PrimaryContainer"]
    assert container["Mode"] == "SingleModel"
    assert container["Image"].endswith(CPU_IMAGE)
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    url = _joined(container["ModelDataUrl"])
    assert url.startswith('s3://{"Ref": "ModelStoreBucket')
    assert "/models/" in url
    assert url.endswith("/creative-scorer-v1.tar.gz")
    config = config_of(templates["dev"], SERVERLESS)["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MaxConcurrency": 5, "MemorySizeInMB": 2048}
    assert not {"InstanceType", "InitialInstanceCount", "VolumeSizeInGB"} & set(variant)
    assert "KmsKeyId" not in config
    assert "AsyncInferenceConfig" not in config


def test_serverless_on_demand_only_has_no_autoscaling(templates: dict[str, Template]) -> None:
    assert scaling_of(templates["dev"], f"endpoint/{SERVERLESS}/") == ({}, [])


def test_provisioned_concurrency_scales_on_its_utilisation(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", SERVERLESS)["serverless"]["provisioned_concurrency"] = 2
    template = synth_templates(context)["dev"]
    (variant,) = config_of(template, SERVERLESS)["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"]["ProvisionedConcurrency"] == 2
    targets, (policy,) = scaling_of(template, f"endpoint/{SERVERLESS}/")
    (target,) = targets.values()
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 5)
    assert endpoint_named(template, SERVERLESS)[0] in target["DependsOn"]
    tracking = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
    }
    assert tracking["TargetValue"] == 0.5


def test_serverless_alarms_watch_latency_errors_and_cold_starts_but_no_instances(
    templates: dict[str, Template],
) -> None:
    alarms = alarms_of(templates["dev"], SERVERLESS).values()
    metrics = sorted(a["Properties"]["MetricName"] for a in alarms)
    assert metrics == ["Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency", "ModelSetupTime"]
    for alarm in alarms:
        assert alarm["Properties"]["Namespace"] == "AWS/SageMaker"
        assert _dimensions(alarm) == {"EndpointName", "VariantName"}
    (setup,) = [a for a in alarms if a["Properties"]["MetricName"] == "ModelSetupTime"]
    assert setup["Properties"]["Threshold"] == 30_000_000  # 30 s in microseconds
    assert setup["Properties"]["ExtendedStatistic"] == "p99"


# Async


def test_async_endpoint_hosts_one_archive_on_instances(templates: dict[str, Template]) -> None:
    container = model_of(templates["dev"], ASYNC)[1]["Properties"]["PrimaryContainer"]
    assert container["Mode"] == "SingleModel"
    assert container["Image"].endswith(CPU_IMAGE)
    assert _joined(container["ModelDataUrl"]).endswith("/creative-scorer-v2.tar.gz")
    (variant,) = config_of(templates["dev"], ASYNC)["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 1)
    assert "ServerlessConfig" not in variant


def test_async_results_and_failures_go_to_the_endpoint_prefix_under_the_bucket_key(
    templates: dict[str, Template],
) -> None:
    config = config_of(templates["dev"], ASYNC)["Properties"]["AsyncInferenceConfig"]
    output = config["OutputConfig"]
    bucket = '{"Ref": "ModelStoreBucket9405F36E"}'
    assert _joined(output["S3OutputPath"]) == f"s3://{bucket}/async/{ASYNC}/output/"
    assert _joined(output["S3FailurePath"]) == f"s3://{bucket}/async/{ASYNC}/failures/"
    assert output["KmsKeyId"] == {"Fn::GetAtt": ["ModelStoreKey64EFBA0A", "Arn"]}
    assert config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 4}


def test_async_notifications_go_to_two_encrypted_ssl_only_topics(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    notify = config_of(template, ASYNC)["Properties"]["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
    assert "IncludeInferenceResponseIn" not in notify
    topics = resources(template, "AWS::SNS::Topic")
    keys = resources(template, "AWS::KMS::Key")
    policies = json.dumps(resources(template, "AWS::SNS::TopicPolicy"))
    success, error = notify["SuccessTopic"]["Ref"], notify["ErrorTopic"]["Ref"]
    assert success != error
    for topic_id in (success, error):
        (key_id, _) = topics[topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"]
        assert keys[key_id]["Properties"]["EnableKeyRotation"] is True
        assert topic_id in policies
    assert '"aws:SecureTransport": "false"' in policies


def test_including_the_response_in_notifications_names_both_topics(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", ASYNC)["async"]["include_response_in_notifications"] = True
    config = config_of(synth_templates(context)["dev"], ASYNC)["Properties"]["AsyncInferenceConfig"]
    assert config["OutputConfig"]["NotificationConfig"]["IncludeInferenceResponseIn"] == [
        "SUCCESS_NOTIFICATION_TOPIC",
        "ERROR_NOTIFICATION_TOPIC",
    ]


def test_async_role_writes_only_its_prefixes_and_publishes_only_its_topics(templates: dict[str, Template]) -> None:
    template = templates["dev"]
    statements = _role_statements(template, ASYNC)
    bucket = '{"Fn::GetAtt": ["ModelStoreBucket9405F36E", "Arn"]}'
    assert _resources_allowed(statements, "s3:PutObject") == [
        f"{bucket}/async/{ASYNC}/failures/*",
        f"{bucket}/async/{ASYNC}/output/*",
        f"{bucket}/batch/{ASYNC}/output/*",
        f"{bucket}/data-capture/{ASYNC}/*",
    ]
    assert f"{bucket}/async/{ASYNC}/input/*" in _resources_allowed(statements, "s3:GetObject")
    notify = config_of(template, ASYNC)["Properties"]["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
    topics = sorted(json.dumps(notify[t]) for t in ("SuccessTopic", "ErrorTopic"))
    assert _resources_allowed(statements, "sns:Publish") == topics
    store_key = json.dumps({"Fn::GetAtt": ["ModelStoreKey64EFBA0A", "Arn"]})
    assert store_key in _resources_allowed(statements, "kms:Encrypt")
    success_topic = resources(template, "AWS::SNS::Topic")[notify["SuccessTopic"]["Ref"]]
    topic_key = json.dumps({"Fn::GetAtt": [success_topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0], "Arn"]})
    assert _resources_allowed(statements, "kms:Decrypt") == sorted([store_key, topic_key])


@pytest.mark.parametrize(
    ("env", "endpoint", "writable"),
    [("dev", "creative-scoring-dev", []), ("dev", SERVERLESS, ["batch"])],
)
def test_other_roles_write_at_most_their_batch_output_and_never_notify(
    templates: dict[str, Template], env: str, endpoint: str, writable: list[str]
) -> None:
    statements = _role_statements(templates[env], endpoint)
    bucket = '{"Fn::GetAtt": ["ModelStoreBucket9405F36E", "Arn"]}'
    assert f"{bucket}/models/*" in _resources_allowed(statements, "s3:GetObject")  # the role's policy was found
    expected = [f"{bucket}/{prefix}/{endpoint}/output/*" for prefix in writable]
    assert _resources_allowed(statements, "s3:PutObject") == expected
    assert _resources_allowed(statements, "sns:Publish") == []


def test_async_scales_on_backlog_down_to_zero_and_out_from_zero_on_a_step_policy(
    templates: dict[str, Template],
) -> None:
    template = templates["dev"]
    targets, policies = scaling_of(template, f"endpoint/{ASYNC}/")
    ((target_id, target),) = targets.items()
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, 2)
    assert endpoint_named(template, ASYNC)[0] in target["DependsOn"]
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(target["Properties"]["RoleARN"])
    (tracking,) = [p for p in policies if p["Properties"]["PolicyType"] == "TargetTrackingScaling"]
    assert tracking["Properties"]["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": ASYNC}],
        "Statistic": "Average",
    }
    assert tracking["Properties"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 5
    (step,) = [p for p in policies if p["Properties"]["PolicyType"] == "StepScaling"]
    assert step["Properties"]["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "Cooldown": 300,
        "MetricAggregationType": "Maximum",
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    step_id = next(i for i, p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items() if p == step)
    (alarm,) = [
        a
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmActions"] == [{"Ref": step_id}]
    ]
    assert {k: alarm["Properties"][k] for k in ("MetricName", "Namespace", "Statistic", "Period", "Threshold")} == {
        "MetricName": "HasBacklogWithoutCapacity",
        "Namespace": "AWS/SageMaker",
        "Statistic": "Maximum",
        "Period": 60,
        "Threshold": 1,
    }
    assert alarm["Properties"]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Properties"]["Dimensions"] == [{"Name": "EndpointName", "Value": ASYNC}]
    assert step["Properties"]["ScalingTargetId"] == {"Ref": target_id}


def test_async_with_a_minimum_of_one_needs_no_scale_out_from_zero(context: dict[str, Any]) -> None:
    _endpoint(context, "dev", ASYNC)["scaling"]["min_instances"] = 1
    template = synth_templates(context)["dev"]
    targets, policies = scaling_of(template, f"endpoint/{ASYNC}/")
    assert [t["Properties"]["MinCapacity"] for t in targets.values()] == [1]
    assert [p["Properties"]["PolicyType"] for p in policies] == ["TargetTrackingScaling"]
    metrics = [a["Properties"]["MetricName"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    assert "HasBacklogWithoutCapacity" not in metrics


@pytest.mark.parametrize(
    ("metric", "statistic", "threshold", "dimensions", "severity"),
    [
        ("ApproximateBacklogSize", "Maximum", 50, {"EndpointName"}, "warning"),
        ("ApproximateAgeOfOldestRequest", "Maximum", 1800, {"EndpointName"}, "warning"),
        ("InvocationFailures", "Sum", 5, {"EndpointName", "VariantName"}, "critical"),
        ("NotificationFailures", "Sum", 0, {"EndpointName", "VariantName"}, "warning"),
        ("Invocation5XXErrors", "Sum", 5, {"EndpointName", "VariantName"}, "critical"),
        ("CPUUtilization", "Average", 85 * 4, {"EndpointName", "VariantName"}, "warning"),
    ],
)
def test_async_alarms_watch_the_queue_and_failures_with_the_published_dimensions(
    templates: dict[str, Template], metric: str, statistic: str, threshold: float, dimensions: set[str], severity: str
) -> None:
    (alarm,) = [a for a in alarms_of(templates["dev"], ASYNC).values() if a["Properties"]["MetricName"] == metric]
    assert alarm["Properties"]["Statistic"] == statistic
    assert alarm["Properties"]["Threshold"] == threshold
    assert _dimensions(alarm) == dimensions
    assert alarm["Properties"]["AlarmName"].endswith(f"-{severity}")


def test_async_and_serverless_have_no_overhead_latency_alarm(templates: dict[str, Template]) -> None:
    for env, name in (("dev", ASYNC), ("dev", SERVERLESS), ("prod", PROD_ASYNC)):
        metrics = [a["Properties"]["MetricName"] for a in alarms_of(templates[env], name).values()]
        assert "OverheadLatency" not in metrics
        assert "ModelLatency" in metrics


def test_prod_async_runs_on_gpu_rolls_and_keeps_results_encrypted(templates: dict[str, Template]) -> None:
    template = templates["prod"]
    config = config_of(template, PROD_ASYNC)["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert "KmsKeyId" not in config  # local NVMe volume
    assert config["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] == {
        "Fn::GetAtt": ["ModelStoreKey64EFBA0A", "Arn"]
    }
    assert model_of(template, PROD_ASYNC)[1]["Properties"]["PrimaryContainer"]["Image"].endswith(GPU_IMAGE)
    targets, _ = scaling_of(template, f"endpoint/{PROD_ASYNC}/")
    assert [(t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) for t in targets.values()] == [(0, 2)]
    metrics = {a["Properties"]["MetricName"] for a in alarms_of(template, PROD_ASYNC).values()}
    assert {"GPUUtilization", "GPUMemoryUtilization", "ApproximateBacklogSize", "InvocationFailures"} <= metrics
    assert "RollingUpdatePolicy" in endpoint_named(template, PROD_ASYNC)[1]["Properties"]["DeploymentConfig"]


# Outputs


@pytest.mark.parametrize(("env", "name"), [("dev", SERVERLESS), ("dev", ASYNC), ("prod", PROD_ASYNC)])
def test_single_model_endpoints_publish_their_model_name(templates: dict[str, Template], env: str, name: str) -> None:
    outputs = templates[env].to_json()["Outputs"]
    model_id = model_of(templates[env], name)[0]
    assert outputs[output_id(name, "ModelName")]["Value"] == {"Fn::GetAtt": [model_id, "ModelName"]}


@pytest.mark.parametrize(("env", "name"), [("dev", ASYNC), ("prod", PROD_ASYNC)])
def test_async_endpoints_publish_where_requests_results_and_notifications_go(
    templates: dict[str, Template], env: str, name: str
) -> None:
    outputs = templates[env].to_json()["Outputs"]
    config = config_of(templates[env], name)["Properties"]["AsyncInferenceConfig"]["OutputConfig"]
    assert outputs[output_id(name, "AsyncOutputPath")]["Value"] == config["S3OutputPath"]
    assert outputs[output_id(name, "AsyncFailurePath")]["Value"] == config["S3FailurePath"]
    assert _joined(outputs[output_id(name, "AsyncInputPath")]["Value"]).endswith(f"/async/{name}/input/")
    topics = config["NotificationConfig"]
    assert outputs[output_id(name, "AsyncSuccessTopicArn")]["Value"] == topics["SuccessTopic"]
    assert outputs[output_id(name, "AsyncErrorTopicArn")]["Value"] == topics["ErrorTopic"]


@pytest.mark.parametrize(("env", "name"), [("dev", SERVERLESS), ("dev", ASYNC), ("prod", PROD_ASYNC)])
def test_single_model_endpoints_publish_batch_prefixes_their_role_may_read_and_write(
    templates: dict[str, Template], env: str, name: str
) -> None:
    outputs = templates[env].to_json()["Outputs"]
    assert _joined(outputs[output_id(name, "BatchInputPath")]["Value"]).endswith(f"/batch/{name}/input/")
    assert _joined(outputs[output_id(name, "BatchOutputPath")]["Value"]).endswith(f"/batch/{name}/output/")
    statements = _role_statements(templates[env], name)
    bucket = '{"Fn::GetAtt": ["ModelStoreBucket9405F36E", "Arn"]}'
    assert f"{bucket}/batch/{name}/input/*" in _resources_allowed(statements, "s3:GetObject")
    assert f"{bucket}/batch/{name}/output/*" in _resources_allowed(statements, "s3:PutObject")
    listed = [st["Condition"] for st in statements if "s3:ListBucket" in _as_list(st["Action"])]
    assert {"StringLike": {"s3:prefix": [f"batch/{name}/input/*"]}} in listed
    log_streams = [r for r in _resources_allowed(statements, "logs:PutLogEvents") if "TransformJobs" in r]
    assert [r.rsplit(":log-group:", 1)[1] for r in log_streams] == [
        "/aws/sagemaker/TransformJobs",
        "/aws/sagemaker/TransformJobs:log-stream:*",
    ]


def test_multi_model_and_component_endpoints_publish_no_model_name(templates: dict[str, Template]) -> None:
    for env in ("dev", "prod"):
        assert output_id(f"creative-scoring-{env}", "ModelName") not in templates[env].to_json()["Outputs"]


def test_async_endpoints_capture_a_sample_of_json_requests_and_responses_encrypted_under_their_prefix(
    templates: dict[str, Template],
) -> None:
    capture = config_of(templates["dev"], ASYNC)["Properties"]["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 10
    assert json.dumps(capture["DestinationS3Uri"]).endswith('/data-capture/"]]}')  # SageMaker adds <endpoint>/
    assert capture["KmsKeyId"] == {"Fn::GetAtt": ["ModelStoreKey64EFBA0A", "Arn"]}
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json", "application/jsonlines"]}


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [("dev", "creative-scoring-dev"), ("dev", SERVERLESS), ("prod", "creative-scoring-prod")],
)
def test_no_capture_where_sagemaker_has_none_or_it_is_unconfirmed_and_not_asked_for(
    templates: dict[str, Template], env: str, endpoint: str
) -> None:
    assert "DataCaptureConfig" not in config_of(templates[env], endpoint)["Properties"]
