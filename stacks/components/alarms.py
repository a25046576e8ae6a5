"""Alarms of one endpoint, each with a description and an SNS action; the critical ones drive rollbacks.

Critical means what a release can break: server errors, model latency, failed async invocations. Client errors
and capacity alarms are warnings: they notify people and never roll a deploy back.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from creative_scoring.config import (
    AsyncConfig,
    EndpointConfig,
    InferenceComponentsConfig,
    InstanceEndpointConfig,
    MultiModelConfig,
    ServerlessConfig,
)
from creative_scoring.config.naming import alarm_name, component_name
from stacks.components.metrics import (
    Target,
    component_metric,
    instance_metric,
    invocation_metric,
    microseconds,
    queue_metric,
)

CRITICAL, WARNING = "critical", "warning"
ABOVE = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
BELOW = cw.ComparisonOperator.LESS_THAN_THRESHOLD


@dataclass(frozen=True)
class AlarmSpec:
    subject: str
    label: str
    metric: cw.IMetric
    threshold: float
    severity: str
    description: str
    comparison: cw.ComparisonOperator = ABOVE


def targets(endpoint: EndpointConfig) -> list[Target]:
    if isinstance(endpoint, InferenceComponentsConfig):
        return [Target(endpoint.name, component_name(endpoint.name, m.name)) for m in endpoint.models]
    return [Target(endpoint.name)]


def alarm_specs(endpoint: EndpointConfig) -> list[AlarmSpec]:
    """Every alarm of the endpoint: invocation alarms per target, then those of its instances and hosting mode."""
    specs = [spec for target in targets(endpoint) for spec in _invocation_specs(endpoint, target)]
    if isinstance(endpoint, InstanceEndpointConfig):
        specs += _instance_specs(endpoint)
    match endpoint:
        case MultiModelConfig():
            specs += _multi_model_specs(endpoint)
        case InferenceComponentsConfig():
            specs += _component_specs(endpoint)
        case ServerlessConfig():
            specs += _serverless_specs(endpoint)
        case AsyncConfig():
            specs += _async_specs(endpoint)
    return specs


def _invocation_specs(endpoint: EndpointConfig, target: Target) -> list[AlarmSpec]:
    limits = endpoint.alarms
    specs = [
        AlarmSpec(
            target.label,
            "ModelLatencyP99",
            invocation_metric(target, "ModelLatency", "p99"),
            microseconds(limits.model_latency_p99_ms),
            CRITICAL,
            f"p99 model latency over {limits.model_latency_p99_ms:g} ms",
        ),
        AlarmSpec(
            target.label,
            "OverheadLatencyP99",
            invocation_metric(target, "OverheadLatency", "p99"),
            microseconds(limits.overhead_latency_p99_ms),
            WARNING,
            f"p99 SageMaker overhead latency over {limits.overhead_latency_p99_ms:g} ms",
        ),
        AlarmSpec(
            target.label,
            "Invocation5XXErrors",
            invocation_metric(target, "Invocation5XXErrors", "Sum"),
            limits.errors_5xx_per_minute,
            CRITICAL,
            f"more than {limits.errors_5xx_per_minute} server errors per minute",
        ),
        AlarmSpec(
            target.label,
            "Invocation4XXErrorRate",
            invocation_metric(target, "Invocation4XXErrors", "Average"),
            limits.errors_4xx_rate,
            WARNING,  # clients' mistakes: for people to look at; a release that they trip would roll back for nothing
            f"more than {limits.errors_4xx_rate:.1%} of requests rejected as client errors",
        ),
    ]
    # Async endpoints publish no OverheadLatency; on serverless ones it includes every cold start, which
    # ModelSetupTime measures on its own.
    if isinstance(endpoint, AsyncConfig | ServerlessConfig):
        return [s for s in specs if s.label != "OverheadLatencyP99"]
    return specs


def _instance_specs(endpoint: InstanceEndpointConfig) -> list[AlarmSpec]:
    name, limits, instance = endpoint.name, endpoint.alarms, endpoint.instance
    specs = [
        AlarmSpec(
            name,
            "CPUUtilization",
            instance_metric(name, "CPUUtilization"),
            limits.cpu_percent * instance.vcpus,
            WARNING,
            f"CPU over {limits.cpu_percent}% of {instance.vcpus} vCPUs (the metric is 0-100 x vCPUs)",
        ),
        AlarmSpec(
            name,
            "DiskUtilization",
            instance_metric(name, "DiskUtilization"),
            limits.disk_percent,
            WARNING,
            f"disk over {limits.disk_percent}%",
        ),
    ]
    if instance.is_gpu:
        specs += [
            AlarmSpec(
                name,
                "GPUUtilization",
                instance_metric(name, "GPUUtilization"),
                limits.gpu_percent * instance.gpus,
                WARNING,
                f"GPU over {limits.gpu_percent}% of {instance.gpus} GPU(s) (the metric is 0-100 x GPUs)",
            ),
            AlarmSpec(
                name,
                "GPUMemoryUtilization",
                instance_metric(name, "GPUMemoryUtilization"),
                limits.gpu_memory_percent * instance.gpus,
                WARNING,
                f"GPU memory over {limits.gpu_memory_percent}% of {instance.gpus} GPU(s)",
            ),
        ]
    return specs


def _component_specs(endpoint: InferenceComponentsConfig) -> list[AlarmSpec]:
    if not endpoint.instance.is_gpu:
        return []
    limits = endpoint.alarms
    return [
        AlarmSpec(
            t.label,
            "GPUUtilizationNormalized",
            component_metric(str(t.component_name), "GPUUtilizationNormalized"),
            limits.gpu_percent,
            WARNING,
            f"GPU over {limits.gpu_percent}% of what this inference component reserves",
        )
        for t in targets(endpoint)
    ]


def _multi_model_specs(endpoint: MultiModelConfig) -> list[AlarmSpec]:
    target, limits = Target(endpoint.name), endpoint.alarms
    return [
        AlarmSpec(
            endpoint.name,
            "ModelLoadingWaitTimeP99",
            invocation_metric(target, "ModelLoadingWaitTime", "p99"),
            microseconds(limits.model_loading_wait_p99_ms),
            WARNING,
            f"p99 wait for a model to download and load over {limits.model_loading_wait_p99_ms:g} ms",
        ),
        AlarmSpec(
            endpoint.name,
            "ModelCacheHitRate",
            invocation_metric(target, "ModelCacheHit", "Average"),
            limits.cache_hit_rate_min,
            WARNING,
            f"model cache hit rate under {limits.cache_hit_rate_min:.0%}: models are evicted and reloaded",
            BELOW,
        ),
    ]


def _serverless_specs(endpoint: ServerlessConfig) -> list[AlarmSpec]:
    limits = endpoint.alarms
    return [
        AlarmSpec(
            endpoint.name,
            "ModelSetupTimeP99",
            invocation_metric(Target(endpoint.name), "ModelSetupTime", "p99"),
            microseconds(limits.model_setup_p99_ms),
            WARNING,
            f"p99 cold start (compute launch, model download, container start) over {limits.model_setup_p99_ms:g} ms",
        )
    ]


def _async_specs(endpoint: AsyncConfig) -> list[AlarmSpec]:
    name, limits, variant = endpoint.name, endpoint.alarms, Target(endpoint.name)
    return [
        AlarmSpec(
            name,
            "InvocationFailures",
            invocation_metric(variant, "InvocationFailures", "Sum"),
            limits.invocation_failures_per_minute,
            CRITICAL,
            f"more than {limits.invocation_failures_per_minute} requests per minute failed (model error, timeout, "
            "or S3 download/upload)",
        ),
        AlarmSpec(
            name,
            "ApproximateBacklogSize",
            queue_metric(name, "ApproximateBacklogSize", "Maximum"),
            limits.backlog_size,
            WARNING,
            f"more than {limits.backlog_size} requests queued or in progress: scaling does not keep up",
        ),
        AlarmSpec(
            name,
            "ApproximateAgeOfOldestRequest",
            queue_metric(name, "ApproximateAgeOfOldestRequest", "Maximum"),
            limits.oldest_request_age_s,
            WARNING,
            f"the oldest queued request waits over {limits.oldest_request_age_s} s (no capacity, or quota)",
        ),
        AlarmSpec(
            name,
            "NotificationFailures",
            invocation_metric(variant, "NotificationFailures", "Sum"),
            0,
            WARNING,
            "result notifications fail to publish (SNS topic or its KMS key)",
        ),
    ]


class EndpointAlarms(Construct):
    """Creates the alarms of ``alarm_specs``; ``rollback_alarm_names`` lists those a deployment rolls back on."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: EndpointConfig, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []
        self.rollback_alarm_names: list[str] = []
        action = cw_actions.SnsAction(topic)
        for spec in alarm_specs(endpoint):
            name = alarm_name(spec.subject, spec.label, spec.severity)
            alarm = cw.Alarm(
                self,
                f"{spec.subject}{spec.label}",
                alarm_name=name,
                alarm_description=f"{endpoint.name}: {spec.description}.",
                metric=spec.metric,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                evaluation_periods=endpoint.alarms.evaluation_minutes,
                datapoints_to_alarm=endpoint.alarms.evaluation_minutes,
                # An idle endpoint publishes no invocation metrics; silence is not an incident.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms.append(alarm)
            if spec.severity == CRITICAL:
                self.rollback_alarm_names.append(name)
