"""Fine-grained assertions on the synthesized templates of every environment."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.stacks.conftest import only, resources

GIB = 1024


def test_model_and_endpoint_config_are_unnamed_and_the_endpoint_is_named(templates: dict[str, Template]) -> None:
    for env, template in templates.items():
        template.has_resource_properties("AWS::SageMaker::Model", {"ModelName": Match.absent()})
        template.has_resource_properties("AWS::SageMaker::EndpointConfig", {"EndpointConfigName": Match.absent()})
        template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": f"creative-scoring-{env}"})


def test_dev_is_a_cpu_multi_model_endpoint_loading_archives_from_a_prefix(templates: dict[str, Template]) -> None:
    container = only(templates["dev"], "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
    assert container["Image"].endswith("/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker")
    url = json.dumps(container["ModelDataUrl"])
    assert "/models/" in url
    assert url.endswith('/"]]}')  # a prefix, not one archive
    variant = only(templates["dev"], "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.c5.xlarge"
    assert (
        variant["ModelName"] == {"Fn::GetAtt": [Match.any_value(), "ModelName"]} or "Fn::GetAtt" in variant["ModelName"]
    )


def test_prod_hosts_each_model_as_a_gpu_inference_component(templates: dict[str, Template]) -> None:
    template = templates["prod"]
    config = only(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    variant = config["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.g5.xlarge"
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {"Status": "ENABLED", "MinInstanceCount": 3, "MaxInstanceCount": 6}
    assert "ExecutionRoleArn" in config
    components = resources(template, "AWS::SageMaker::InferenceComponent")
    names = sorted(c["Properties"]["InferenceComponentName"] for c in components.values())
    assert names == [
        "creative-scoring-prod-creative-scorer-social-v1",
        "creative-scoring-prod-creative-scorer-v1",
        "creative-scoring-prod-creative-scorer-v2",
    ]
    for component in components.values():
        requirements = component["Properties"]["Specification"]["ComputeResourceRequirements"]
        assert requirements == {
            "NumberOfAcceleratorDevicesRequired": 1,
            "NumberOfCpuCoresRequired": 1,
            "MinMemoryRequiredInMb": 4 * GIB,
        }
    for model in resources(template, "AWS::SageMaker::Model").values():
        container = model["Properties"]["PrimaryContainer"]
        assert container["Image"].endswith("-gpu-py312-cu124-ubuntu22.04-sagemaker")
        assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
        assert json.dumps(container["ModelDataUrl"]).endswith('.tar.gz"]]}')


def test_volume_key_only_where_the_instance_has_ebs_storage(templates: dict[str, Template]) -> None:
    dev = only(templates["dev"], "AWS::SageMaker::EndpointConfig")["Properties"]
    prod = only(templates["prod"], "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" in dev
    assert "KmsKeyId" not in prod
    assert "VolumeSizeInGB" not in prod["ProductionVariants"][0]


def test_model_bucket_is_encrypted_versioned_private_logged_and_ssl_only(templates: dict[str, Template]) -> None:
    for template in templates.values():
        template.has_resource_properties(
            "AWS::S3::Bucket",
            {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        Match.object_like(
                            {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})}
                        )
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": Match.object_like(
                    {"BlockPublicAcls": True, "RestrictPublicBuckets": True}
                ),
                "LoggingConfiguration": Match.object_like({"LogFilePrefix": "model-bucket/"}),
            },
        )
        policies = json.dumps(resources(template, "AWS::S3::BucketPolicy"))
        assert '"aws:SecureTransport": "false"' in policies


def test_archives_are_deployed_with_prune_under_a_versioned_prefix_and_retained(templates: dict[str, Template]) -> None:
    for template in templates.values():
        deployment = only(template, "Custom::CDKBucketDeployment")["Properties"]
        assert deployment["Prune"] is True
        assert deployment["RetainOnDelete"] is True
        assert deployment["DestinationBucketKeyPrefix"].startswith("models/")
        template.has_resource_properties(
            "AWS::Lambda::Function", {"MemorySize": 512, "EphemeralStorage": {"Size": 1024}}
        )


def test_execution_role_is_scoped_to_its_prefix_repository_log_group_and_metrics(
    templates: dict[str, Template],
) -> None:
    for env, template in templates.items():
        role = next(
            r
            for r in resources(template, "AWS::IAM::Role").values()
            if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        )
        assert "ManagedPolicyArns" not in role["Properties"]
        policy = json.dumps(resources(template, "AWS::IAM::Policy"))
        assert "repository/pytorch-inference" in policy
        assert f"log-group:/aws/sagemaker/Endpoints/creative-scoring-{env}" in policy
        assert "/models/*" in policy
        assert "FullAccess" not in json.dumps(template.to_json())


def test_scalable_targets_use_the_service_linked_role_and_follow_their_endpoint(templates: dict[str, Template]) -> None:
    dev_target = only(templates["dev"], "AWS::ApplicationAutoScaling::ScalableTarget")
    assert dev_target["Properties"]["ResourceId"] == "endpoint/creative-scoring-dev/variant/AllTraffic"
    assert dev_target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in json.dumps(
        dev_target["Properties"]["RoleARN"]
    )
    (endpoint_id,) = resources(templates["dev"], "AWS::SageMaker::Endpoint")
    assert endpoint_id in dev_target["DependsOn"]
    components = resources(templates["prod"], "AWS::SageMaker::InferenceComponent")
    for target in resources(templates["prod"], "AWS::ApplicationAutoScaling::ScalableTarget").values():
        assert target["Properties"]["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
        assert set(target["DependsOn"]) & set(components)


def test_scaling_policies_track_invocations_and_gpu_only_on_gpu(templates: dict[str, Template]) -> None:
    def tracked(template: Template) -> list[str]:
        specs = [
            p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
            for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        ]
        return sorted(
            s.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            or s["CustomizedMetricSpecification"]["MetricName"]
            for s in specs
        )

    assert tracked(templates["dev"]) == ["SageMakerVariantInvocationsPerInstance"]
    assert (
        tracked(templates["prod"])
        == ["GPUUtilizationNormalized"] * 3 + ["SageMakerInferenceComponentInvocationsPerCopy"] * 3
    )


def test_every_alarm_notifies_the_topic_and_has_a_description(templates: dict[str, Template]) -> None:
    for template in templates.values():
        (topic_id,) = resources(template, "AWS::SNS::Topic")
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
            assert alarm["Properties"]["AlarmDescription"]


@pytest.mark.parametrize(
    ("env", "metric", "namespace", "threshold"),
    [
        ("dev", "ModelLatency", "AWS/SageMaker", 250_000),  # 250 ms in microseconds
        ("dev", "ModelLoadingWaitTime", "AWS/SageMaker", 15_000_000),
        ("dev", "ModelCacheHit", "AWS/SageMaker", 0.5),
        ("dev", "CPUUtilization", "/aws/sagemaker/Endpoints", 85 * 4),  # 0-100 x 4 vCPUs
        ("prod", "GPUUtilization", "/aws/sagemaker/Endpoints", 85),
        ("prod", "GPUMemoryUtilization", "/aws/sagemaker/Endpoints", 85),
        ("prod", "GPUUtilizationNormalized", "/aws/sagemaker/InferenceComponents", 85),
        ("prod", "OverheadLatency", "AWS/SageMaker", 30_000),
        ("prod", "Invocation4XXErrors", "AWS/SageMaker", 0.05),
        ("prod", "DiskUtilization", "/aws/sagemaker/Endpoints", 80),
    ],
)
def test_alarm_metric_namespace_and_threshold_units(
    templates: dict[str, Template], env: str, metric: str, namespace: str, threshold: float
) -> None:
    templates[env].has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": metric, "Namespace": namespace, "Threshold": threshold}
    )


def test_invocation_alarms_carry_the_dimensions_metrics_are_published_with(templates: dict[str, Template]) -> None:
    for alarm in resources(templates["dev"], "AWS::CloudWatch::Alarm").values():
        names = {d["Name"] for d in alarm["Properties"]["Dimensions"]}
        assert names == {"EndpointName", "VariantName"}
    prod_latency = [
        a
        for a in resources(templates["prod"], "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ModelLatency"
    ]
    assert len(prod_latency) == 3
    assert all(a["Properties"]["Dimensions"][0]["Name"] == "InferenceComponentName" for a in prod_latency)


def test_rollouts_roll_back_on_alarms_that_exist_and_exist_first(templates: dict[str, Template]) -> None:
    for env, template in templates.items():
        endpoint = only(template, "AWS::SageMaker::Endpoint")
        deployment = endpoint["Properties"]["DeploymentConfig"]
        names = {a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]}
        alarms = resources(template, "AWS::CloudWatch::Alarm")
        assert names <= {a["Properties"]["AlarmName"] for a in alarms.values()}
        assert set(alarms) <= set(endpoint["DependsOn"])
        strategy = "BlueGreenUpdatePolicy" if env == "dev" else "RollingUpdatePolicy"
        assert strategy in deployment
        assert endpoint["Properties"]["RetainAllVariantProperties"] is True


def test_a_dashboard_shows_every_alarm(templates: dict[str, Template]) -> None:
    for template in templates.values():
        body = json.dumps(only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
        for alarm_id in resources(template, "AWS::CloudWatch::Alarm"):
            assert alarm_id in body


def test_outputs_name_the_endpoint_bucket_and_code(templates: dict[str, Template]) -> None:
    for template in templates.values():
        outputs = template.to_json()["Outputs"]
        assert {"ModelBucket", "ModelDataPrefix", "InferenceCodeUrl"} <= set(outputs)
        assert any(key.startswith("CreativeScoring") and key.endswith("EndpointName") for key in outputs)
