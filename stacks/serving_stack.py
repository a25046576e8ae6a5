"""One environment's serving stack: it only wires the components and publishes outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sm
from constructs import Construct

from creative_scoring.config import (
    AsyncConfig,
    ComponentModel,
    EndpointConfig,
    EnvironmentConfig,
    InferenceComponentsConfig,
    MultiModelConfig,
    ServerlessConfig,
    defaults,
)
from creative_scoring.config.naming import component_name, output_id
from stacks.components.alarm_topic import AlarmTopic
from stacks.components.alarms import EndpointAlarms
from stacks.components.async_inference import AsyncInferenceIO
from stacks.components.autoscaling import (
    AsyncAutoscaling,
    ComponentAutoscaling,
    ServerlessAutoscaling,
    VariantAutoscaling,
)
from stacks.components.batch_transform import BatchTransformIO
from stacks.components.dashboard import EndpointDashboard
from stacks.components.data_capture import EndpointDataCapture
from stacks.components.endpoints import (
    AsyncEndpoint,
    Hosting,
    InferenceComponentEndpoint,
    MultiModelEndpoint,
    ServerlessEndpoint,
)
from stacks.components.execution_role import ExecutionRole
from stacks.components.model_store import ModelStore
from stacks.components.published_versions import PublishedVersions
from stacks.nag import acknowledge_deployment_handler


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
        self.published = (
            PublishedVersions(self, "PublishedVersions", store=self.store, components=_components(environment))
            if any(isinstance(e, MultiModelConfig | InferenceComponentsConfig) for e in environment.endpoints)
            else None
        )
        self.endpoints = [self._endpoint(endpoint) for endpoint in environment.endpoints]
        acknowledge_deployment_handler(self, self.store.bucket)
        CfnOutput(self, "ModelBucket", value=self.store.bucket.bucket_name)
        CfnOutput(self, "ModelDataPrefix", value=self.store.model_data_prefix)
        CfnOutput(self, "InferenceCodeUrl", value=self.store.code.s3_object_url)

    def _endpoint(self, endpoint: EndpointConfig) -> Hosting:
        scope = Construct(self, endpoint.name)
        role = ExecutionRole(
            scope, "ExecutionRole", endpoint_name=endpoint.name, image=endpoint.image, store=self.store
        )
        alarms = EndpointAlarms(scope, "Alarms", endpoint=endpoint, topic=self.alarm_topic.topic)
        served = self._hosting(scope, endpoint, role.role, alarms.rollback_alarm_names)
        # Rollbacks name the alarms, so they must exist before the first deployment that could roll back.
        served.endpoint.node.add_dependency(alarms)
        if endpoint.scaling.enabled:  # disabled on purpose for an instance-type change (docs/deployment.md)
            _autoscale(scope, endpoint, served)
        EndpointDashboard(scope, "Dashboard", endpoint_name=endpoint.name, alarms=alarms.alarms)
        CfnOutput(self, output_id(endpoint.name, "EndpointName"), value=served.endpoint.attr_endpoint_name)
        if isinstance(served, ServerlessEndpoint | AsyncEndpoint):  # batch transform finds the model here
            CfnOutput(self, output_id(endpoint.name, "ModelName"), value=served.model.attr_model_name)
            batch_io = BatchTransformIO(scope, "BatchIO", endpoint_name=endpoint.name, store=self.store)
            batch_io.grant(role.role)
            CfnOutput(self, output_id(endpoint.name, "BatchInputPath"), value=batch_io.input_path)
            CfnOutput(self, output_id(endpoint.name, "BatchOutputPath"), value=batch_io.output_path)
        if isinstance(served, AsyncEndpoint):
            self._async_outputs(endpoint.name, served.async_io)
        return served

    def _data_capture(
        self, scope: Construct, endpoint: InferenceComponentsConfig | AsyncConfig, role: iam.IRole
    ) -> sm.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if not endpoint.data_capture.enabled:
            return None
        capture = EndpointDataCapture(
            scope,
            "DataCapture",
            endpoint_name=endpoint.name,
            capture=endpoint.data_capture,
            store=self.store,
            role=role,
        )
        return capture.config

    def _hosting(self, scope: Construct, endpoint: EndpointConfig, role: iam.IRole, alarm_names: list[str]) -> Hosting:
        """The construct of the endpoint's hosting mode: the one place a config type picks its construct."""
        store = self.store
        match endpoint:
            case MultiModelConfig():
                served = MultiModelEndpoint(
                    scope, "Hosting", endpoint=endpoint, role=role, store=store, rollback_alarm_names=alarm_names
                )
                if self.published is not None:  # published versions are carried before the Model reads the prefix
                    served.model.node.add_dependency(self.published.resource)
                return served
            case InferenceComponentsConfig():
                assert self.published is not None  # an environment with components has one
                return InferenceComponentEndpoint(
                    scope,
                    "Hosting",
                    endpoint=endpoint,
                    role=role,
                    store=store,
                    archive_url=self.published.component_archive_url,
                    rollback_alarm_names=alarm_names,
                    data_capture=self._data_capture(scope, endpoint, role),
                )
            case ServerlessConfig():
                return ServerlessEndpoint(
                    scope, "Hosting", endpoint=endpoint, role=role, store=store, rollback_alarm_names=alarm_names
                )
            case AsyncConfig():
                async_io = AsyncInferenceIO(scope, "AsyncIO", endpoint_name=endpoint.name, store=store)
                async_io.grant(role)
                return AsyncEndpoint(
                    scope,
                    "Hosting",
                    endpoint=endpoint,
                    async_io=async_io,
                    role=role,
                    store=store,
                    rollback_alarm_names=alarm_names,
                    data_capture=self._data_capture(scope, endpoint, role),
                )

    def _async_outputs(self, endpoint_name: str, async_io: AsyncInferenceIO) -> None:
        for what, value in (
            ("AsyncInputPath", async_io.input_path),
            ("AsyncOutputPath", async_io.output_path),
            ("AsyncFailurePath", async_io.failure_path),
            ("AsyncSuccessTopicArn", async_io.success_topic.topic_arn),
            ("AsyncErrorTopicArn", async_io.error_topic.topic_arn),
        ):
            CfnOutput(self, output_id(endpoint_name, what), value=value)


def _components(environment: EnvironmentConfig) -> dict[str, tuple[InferenceComponentsConfig, ComponentModel]]:
    """Every inference component of ``environment`` with its endpoint, by name."""
    return {
        component_name(e.name, m.name): (e, m)
        for e in environment.endpoints
        if isinstance(e, InferenceComponentsConfig)
        for m in e.models
    }


def _autoscale(scope: Construct, endpoint: EndpointConfig, served: Hosting) -> None:
    match endpoint, served:
        case InferenceComponentsConfig(), InferenceComponentEndpoint():
            for model, (name, component) in zip(endpoint.models, served.components.items(), strict=True):
                ComponentAutoscaling(
                    scope,
                    f"{model.name}Autoscaling",
                    endpoint=endpoint,
                    component_name=name,
                    copies=model.copies,
                    max_copies=model.max_copies,
                    depends_on=component,
                )
        case AsyncConfig(), _:
            AsyncAutoscaling(scope, "Autoscaling", endpoint=endpoint, depends_on=served.endpoint)
        case ServerlessConfig(), _:
            if endpoint.serverless.provisioned_concurrency:  # on-demand capacity scales by itself
                ServerlessAutoscaling(scope, "Autoscaling", endpoint=endpoint, depends_on=served.endpoint)
        case MultiModelConfig(), _:
            VariantAutoscaling(scope, "Autoscaling", endpoint=endpoint, depends_on=served.endpoint)
