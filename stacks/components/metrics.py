"""CloudWatch metrics of an endpoint: namespaces, dimensions and units in one place.

- ``AWS/SageMaker`` invocation metrics: dimensions EndpointName + VariantName, or InferenceComponentName for
  an inference component. ModelLatency, OverheadLatency and ModelLoadingWaitTime are in microseconds.
- ``/aws/sagemaker/Endpoints`` instance metrics: EndpointName + VariantName; CPU and GPU run 0-100 x count.
- ``/aws/sagemaker/InferenceComponents``: *UtilizationNormalized per InferenceComponentName, 0-100.
- Serverless endpoints publish the invocation metrics (not the instance ones) plus ``ModelSetupTime`` (µs).
- Async endpoints publish no ``Invocations``, ``InvocationsPerInstance`` or ``OverheadLatency``. Their queue
  metrics (``ApproximateBacklogSize``, ``ApproximateBacklogSizePerInstance``, ``ApproximateAgeOfOldestRequest``
  in seconds, ``HasBacklogWithoutCapacity``) carry ``EndpointName`` only; ``InvocationFailures`` and
  ``NotificationFailures`` carry EndpointName + VariantName.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw

from creative_scoring.config import defaults

INVOCATIONS = "AWS/SageMaker"
INSTANCES = "/aws/sagemaker/Endpoints"
COMPONENTS = "/aws/sagemaker/InferenceComponents"
PERIOD = Duration.minutes(1)


@dataclass(frozen=True)
class Target:
    """What a metric describes: a variant of an endpoint, or one inference component."""

    endpoint_name: str
    component_name: str | None = None

    @property
    def label(self) -> str:
        return self.component_name or self.endpoint_name

    def invocation_dimensions(self) -> dict[str, str]:
        if self.component_name:
            return {"InferenceComponentName": self.component_name}
        return {"EndpointName": self.endpoint_name, "VariantName": defaults.VARIANT_NAME}


def invocation_metric(target: Target, name: str, statistic: str) -> cw.Metric:
    return cw.Metric(
        namespace=INVOCATIONS,
        metric_name=name,
        dimensions_map=target.invocation_dimensions(),
        statistic=statistic,
        period=PERIOD,
    )


def queue_metric(endpoint_name: str, name: str, statistic: str) -> cw.Metric:
    """An async endpoint's queue metric, published per endpoint rather than per variant."""
    return cw.Metric(
        namespace=INVOCATIONS,
        metric_name=name,
        dimensions_map={"EndpointName": endpoint_name},
        statistic=statistic,
        period=PERIOD,
    )


def instance_metric(endpoint_name: str, name: str) -> cw.Metric:
    return cw.Metric(
        namespace=INSTANCES,
        metric_name=name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": defaults.VARIANT_NAME},
        statistic="Average",
        period=PERIOD,
    )


def component_metric(component_name: str, name: str) -> cw.Metric:
    return cw.Metric(
        namespace=COMPONENTS,
        metric_name=name,
        dimensions_map={"InferenceComponentName": component_name},
        statistic="Average",
        period=PERIOD,
    )


def microseconds(milliseconds: float) -> float:
    return milliseconds * 1000
