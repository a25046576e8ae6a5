"""Application Auto Scaling of an endpoint's variant, of each of its inference components, of an async
endpoint's instances (down to zero), or of a serverless endpoint's provisioned concurrency."""

from __future__ import annotations

from typing import TypedDict

from aws_cdk import Aws, Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from creative_scoring.config import AsyncConfig, InstanceEndpointConfig, Scaling, ServerlessConfig, defaults
from creative_scoring.config.naming import alarm_name
from stacks.components.metrics import component_metric, queue_metric

INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"


def scaling_role(scope: Construct) -> iam.IRole:
    """The service-linked role; Application Auto Scaling creates it on first registration if it is missing."""
    arn = (
        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/"
        f"{defaults.SCALING_ROLE_SERVICE}/{defaults.SCALING_ROLE_NAME}"
    )
    return iam.Role.from_role_arn(scope, "ScalingRole", arn, mutable=False)


def variant_target(
    scope: Construct, endpoint_name: str, *, dimension: str, low: int, high: int, depends_on: IConstruct
) -> appscaling.ScalableTarget:
    """The endpoint's one variant as a scalable target, registered with the service-linked role."""
    target = appscaling.ScalableTarget(
        scope,
        "Target",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        resource_id=f"endpoint/{endpoint_name}/variant/{defaults.VARIANT_NAME}",
        scalable_dimension=dimension,
        min_capacity=low,
        max_capacity=high,
        role=scaling_role(scope),
    )
    # The resource id is a literal name: nothing orders registration after the endpoint exists but this.
    target.node.add_dependency(depends_on)
    return target


class _Cooldowns(TypedDict):
    scale_in_cooldown: Duration
    scale_out_cooldown: Duration


def _cooldowns(scaling: Scaling) -> _Cooldowns:
    return _Cooldowns(
        scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
        scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
    )


def _instance_target(
    scope: Construct, endpoint: InstanceEndpointConfig, depends_on: IConstruct
) -> appscaling.ScalableTarget:
    """The variant's instance count, between the configured bounds."""
    scaling = endpoint.scaling
    return variant_target(
        scope,
        endpoint.name,
        dimension=INSTANCE_COUNT,
        low=scaling.min_instances,
        high=scaling.max_instances,
        depends_on=depends_on,
    )


class VariantAutoscaling(Construct):
    """Target tracking on invocations per instance (multi-model endpoints, which run on CPU instances only)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint: InstanceEndpointConfig, depends_on: IConstruct
    ) -> None:
        super().__init__(scope, construct_id)
        scaling = endpoint.scaling
        self.target = _instance_target(self, endpoint, depends_on)
        self.target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=scaling.invocations_per_instance,
            **_cooldowns(scaling),
        )


class ComponentAutoscaling(Construct):
    """Copies of one inference component track invocations per copy and, on GPU, normalised GPU use;
    the variant's managed instance scaling adds and removes instances to fit the copies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: InstanceEndpointConfig,
        component_name: str,
        copies: int,
        max_copies: int,
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
            max_capacity=max_copies,
            role=scaling_role(self),
        )
        # The inference component's name is a literal: order registration after the component exists.
        self.target.node.add_dependency(depends_on)
        self.target.scale_to_track_metric(
            "InvocationsPerCopy",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
            target_value=scaling.invocations_per_instance,
            **_cooldowns(scaling),
        )
        if endpoint.gpus:
            self.target.scale_to_track_metric(
                "GPUUtilizationNormalized",
                custom_metric=component_metric(component_name, "GPUUtilizationNormalized"),
                target_value=scaling.gpu_utilization_percent,
                **_cooldowns(scaling),
            )


class AsyncAutoscaling(Construct):
    """Instances track the queued requests per instance, down to ``min_instances`` (0 allowed).

    With no instance left, ``ApproximateBacklogSizePerInstance`` is not published, so target tracking cannot
    scale out from zero: a step policy on ``HasBacklogWithoutCapacity`` adds the first instance.
    """

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: AsyncConfig, depends_on: IConstruct) -> None:
        super().__init__(scope, construct_id)
        scaling = endpoint.scaling
        self.target = _instance_target(self, endpoint, depends_on)
        self.target.scale_to_track_metric(
            "BacklogPerInstance",
            custom_metric=queue_metric(endpoint.name, "ApproximateBacklogSizePerInstance", "Average"),
            target_value=scaling.backlog_per_instance,
            **_cooldowns(scaling),
        )
        self.scale_out_from_zero: cw.Alarm | None = None
        if scaling.min_instances == 0:
            self.scale_out_from_zero = self._scale_out_from_zero(endpoint.name)

    def _scale_out_from_zero(self, endpoint_name: str) -> cw.Alarm:
        action = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=self.target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
            cooldown=Duration.seconds(defaults.SCALE_OUT_FROM_ZERO_COOLDOWN_S),
        )
        action.add_adjustment(adjustment=1, lower_bound=0)
        # A scaling trigger, not an incident: it acts instead of notifying. A queue that stays unserved raises
        # the ApproximateAgeOfOldestRequest alarm, which notifies.
        alarm = cw.Alarm(
            self,
            "HasBacklogWithoutCapacity",
            alarm_name=alarm_name(endpoint_name, "HasBacklogWithoutCapacity", "scaling"),
            alarm_description=f"{endpoint_name}: requests are queued and no instance runs; adds one instance.",
            metric=queue_metric(endpoint_name, "HasBacklogWithoutCapacity", "Maximum"),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.ApplicationScalingAction(action))
        return alarm


class ServerlessAutoscaling(Construct):
    """Provisioned concurrency tracks its utilisation, between the configured amount and ``max_concurrency``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint: ServerlessConfig, depends_on: IConstruct
    ) -> None:
        super().__init__(scope, construct_id)
        scaling, serverless = endpoint.scaling, endpoint.serverless
        self.target = variant_target(
            self,
            endpoint.name,
            dimension=PROVISIONED_CONCURRENCY,
            low=serverless.provisioned_concurrency,
            high=serverless.max_concurrency,
            depends_on=depends_on,
        )
        self.target.scale_to_track_metric(
            "ProvisionedConcurrencyUtilization",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
            target_value=scaling.provisioned_concurrency_utilization,
            **_cooldowns(scaling),
        )
