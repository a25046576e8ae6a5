"""Application Auto Scaling of an endpoint's variant, or of each of its inference components."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from stacks import defaults
from stacks.components.metrics import component_metric, instance_metric
from stacks.config import EndpointConfig


def scaling_role(scope: Construct) -> iam.IRole:
    """The service-linked role; Application Auto Scaling creates it on first registration if it is missing."""
    arn = (
        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/"
        f"{defaults.SCALING_ROLE_SERVICE}/{defaults.SCALING_ROLE_NAME}"
    )
    return iam.Role.from_role_arn(scope, "ScalingRole", arn, mutable=False)


class VariantAutoscaling(Construct):
    """Target tracking on invocations per instance, plus GPU utilisation on GPU instances."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint: EndpointConfig, depends_on: IConstruct
    ) -> None:
        super().__init__(scope, construct_id)
        scaling = endpoint.scaling
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{endpoint.name}/variant/{defaults.VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=scaling.min_instances,
            max_capacity=scaling.max_instances,
            role=scaling_role(self),
        )
        # The resource id is a literal name: nothing orders registration after the endpoint exists but this.
        self.target.node.add_dependency(depends_on)
        self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=scaling.invocations_per_instance,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
        )
        if endpoint.instance.is_gpu:
            self.target.scale_to_track_metric(
                "GPUUtilization",
                custom_metric=instance_metric(endpoint.name, "GPUUtilization"),
                # GPUUtilization runs 0-100 per GPU, summed over the instance's GPUs.
                target_value=scaling.gpu_utilization_percent * endpoint.instance.gpus,
                scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
                scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
            )


class ComponentAutoscaling(Construct):
    """Copies of one inference component track invocations per copy and, on GPU, normalised GPU use;
    the variant's managed instance scaling adds and removes instances to fit the copies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: EndpointConfig,
        component_name: str,
        copies: int,
        depends_on: IConstruct,
    ) -> None:
        super().__init__(scope, construct_id)
        scaling = endpoint.scaling
        self.target = appscaling.ScalableTarget(
            self,
            "Target",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"inference-component/{component_name}",
            scalable_dimension="sagemaker:inference-component:DesiredCopyCount",
            min_capacity=copies,
            max_capacity=copies * scaling.max_instances,
            role=scaling_role(self),
        )
        # The inference component's name is a literal: order registration after the component exists.
        self.target.node.add_dependency(depends_on)
        self.target.scale_to_track_metric(
            "InvocationsPerCopy",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            target_value=scaling.invocations_per_instance,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
        )
        if endpoint.instance.is_gpu:
            self.target.scale_to_track_metric(
                "GPUUtilizationNormalized",
                custom_metric=component_metric(component_name, "GPUUtilizationNormalized"),
                target_value=scaling.gpu_utilization_percent,
                scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
                scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
            )
