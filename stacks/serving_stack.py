"""One environment's serving stack: it only wires the components and publishes outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from stacks import defaults
from stacks.components.alarm_topic import AlarmTopic
from stacks.components.alarms import EndpointAlarms
from stacks.components.autoscaling import ComponentAutoscaling, VariantAutoscaling
from stacks.components.dashboard import EndpointDashboard
from stacks.components.endpoints import InferenceComponentEndpoint, MultiModelEndpoint
from stacks.components.execution_role import ExecutionRole
from stacks.components.model_store import ModelStore
from stacks.config import MULTI_MODEL, EndpointConfig, EnvironmentConfig
from stacks.nag import acknowledge_deployment_handler
from stacks.naming import output_id


class ServingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: EnvironmentConfig,
        artifacts_dir: Path,
        inference_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", defaults.PROJECT_TAG)
        Tags.of(self).add("environment", environment.name)
        self.store = ModelStore(self, "ModelStore", artifacts_dir=artifacts_dir, inference_dir=inference_dir)
        self.alarm_topic = AlarmTopic(self, "AlarmTopic", email=environment.alarm_email)
        self.endpoints = [self._endpoint(endpoint) for endpoint in environment.endpoints]
        acknowledge_deployment_handler(self, self.store.bucket)
        CfnOutput(self, "ModelBucket", value=self.store.bucket.bucket_name)
        CfnOutput(self, "ModelDataPrefix", value=self.store.model_data_prefix)
        CfnOutput(self, "InferenceCodeUrl", value=self.store.code.s3_object_url)

    def _endpoint(self, endpoint: EndpointConfig) -> MultiModelEndpoint | InferenceComponentEndpoint:
        scope = Construct(self, endpoint.name)
        role = ExecutionRole(
            scope, "ExecutionRole", endpoint_name=endpoint.name, image=endpoint.image, store=self.store
        )
        alarms = EndpointAlarms(scope, "Alarms", endpoint=endpoint, topic=self.alarm_topic.topic)
        hosting = MultiModelEndpoint if endpoint.hosting == MULTI_MODEL else InferenceComponentEndpoint
        served = hosting(
            scope,
            "Hosting",
            endpoint=endpoint,
            role=role.role,
            store=self.store,
            rollback_alarm_names=alarms.rollback_alarm_names,
        )
        # Rollbacks name the alarms, so they must exist before the first deployment that could roll back.
        served.endpoint.node.add_dependency(alarms)
        if endpoint.scaling.enabled:  # disabled on purpose for an instance-type change (docs/deployment.md)
            _autoscale(scope, endpoint, served)
        EndpointDashboard(scope, "Dashboard", endpoint_name=endpoint.name, alarms=alarms.alarms)
        CfnOutput(self, output_id(endpoint.name, "EndpointName"), value=served.endpoint.attr_endpoint_name)
        return served


def _autoscale(
    scope: Construct, endpoint: EndpointConfig, served: MultiModelEndpoint | InferenceComponentEndpoint
) -> None:
    if isinstance(served, MultiModelEndpoint):
        VariantAutoscaling(scope, "Autoscaling", endpoint=endpoint, depends_on=served.endpoint)
        return
    for model, (name, component) in zip(endpoint.models, served.components.items(), strict=True):
        ComponentAutoscaling(
            scope,
            f"{model.name}Autoscaling",
            endpoint=endpoint,
            component_name=name,
            copies=model.copies,
            depends_on=component,
        )
