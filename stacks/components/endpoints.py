"""The hosting modes, each a construct exposing ``endpoint`` and ``endpoint_name``: two real-time modes
that host several models (multi-model, inference components) and two that host one model (serverless, async),
which also expose ``model``.

Model and EndpointConfig are left unnamed: every property of both is create-only, so CloudFormation must be
free to replace them. The Endpoint is named: its name is the client contract, and only a change of name
would recreate it; a new EndpointConfig updates it in place.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sm
from constructs import Construct

from creative_scoring.config import (
    BLUE_GREEN,
    AsyncConfig,
    EndpointConfig,
    InferenceComponentsConfig,
    InstanceEndpointConfig,
    MultiModelConfig,
    ServerlessConfig,
    defaults,
)
from creative_scoring.config.naming import component_name
from stacks.components.async_inference import AsyncInferenceIO
from stacks.components.model_store import ModelStore
from stacks.nag import checkov_skip

# Why no Model sets EnableNetworkIsolation (docs/deployment.md, "Network isolation").
_INSTALLS_AT_START = (
    "The serving container pip-installs the archive's code/requirements.txt (msgspec, safetensors) from PyPI at "
    "start, which isolation forbids; isolating needs those wheels vendored into the archives first."
)
NOT_ISOLATED = {
    MultiModelConfig.hosting: _INSTALLS_AT_START,
    InferenceComponentsConfig.hosting: _INSTALLS_AT_START,
    AsyncConfig.hosting: _INSTALLS_AT_START,
    ServerlessConfig.hosting: "Serverless endpoints do not support network isolation (SageMaker's limits).",
}


def container_environment(store: ModelStore, *, multi_model: bool) -> dict[str, str]:
    environment = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        # The toolkit reads the code from code/ inside each archive; the digest names the version it is.
        "CREATIVE_SCORING_CODE_DIGEST": store.code.asset_hash,
    }
    if not multi_model:
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = "/opt/ml/model/code"
    return environment


def deployment_config(endpoint: EndpointConfig, alarm_names: list[str]) -> sm.CfnEndpoint.DeploymentConfigProperty:
    rollout = endpoint.rollout
    rollback = sm.CfnEndpoint.AutoRollbackConfigProperty(
        alarms=[sm.CfnEndpoint.AlarmProperty(alarm_name=name) for name in alarm_names]
    )
    if rollout.strategy == BLUE_GREEN:
        return sm.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback if rollout.auto_rollback else None,
            blue_green_update_policy=sm.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sm.CfnEndpoint.TrafficRoutingConfigProperty(
                    type="CANARY",
                    canary_size=sm.CfnEndpoint.CapacitySizeProperty(
                        type="CAPACITY_PERCENT", value=rollout.canary_percent
                    ),
                    wait_interval_in_seconds=rollout.wait_s,
                ),
                termination_wait_in_seconds=rollout.wait_s,
                maximum_execution_timeout_in_seconds=4 * rollout.wait_s + 1800,
            ),
        )
    return sm.CfnEndpoint.DeploymentConfigProperty(
        auto_rollback_configuration=rollback if rollout.auto_rollback else None,
        rolling_update_policy=sm.CfnEndpoint.RollingUpdatePolicyProperty(
            maximum_batch_size=sm.CfnEndpoint.CapacitySizeProperty(
                type="CAPACITY_PERCENT", value=rollout.batch_percent
            ),
            wait_interval_in_seconds=rollout.wait_s,
            maximum_execution_timeout_in_seconds=4 * rollout.wait_s + 3600,
        ),
    )


def _endpoint(
    scope: Construct, endpoint: EndpointConfig, config: sm.CfnEndpointConfig, alarms: list[str]
) -> sm.CfnEndpoint:
    return sm.CfnEndpoint(
        scope,
        "Endpoint",
        endpoint_name=endpoint.name,
        endpoint_config_name=config.attr_endpoint_config_name,
        deployment_config=deployment_config(endpoint, alarms),
        # Keep the instance count autoscaling chose when a new EndpointConfig is rolled out.
        retain_all_variant_properties=True,
    )


class MultiModelEndpoint(Construct):
    """CPU multi-model endpoint: ``TargetModel`` picks an archive under the model prefix."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: MultiModelConfig,
        role: iam.IRole,
        store: ModelStore,
        rollback_alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.model = _model(
            self, "Model", endpoint, role, store, store.model_data_prefix, model_cache=endpoint.model_cache
        )
        self.config = sm.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=store.key.key_arn if endpoint.encrypt_volume else None,
            production_variants=[_variant(endpoint, model_name=self.model.attr_model_name)],
        )
        self.endpoint = _endpoint(self, endpoint, self.config, rollback_alarm_names)
        self.endpoint_name = endpoint.name


class InferenceComponentEndpoint(Construct):
    """GPU endpoint hosting each model as an inference component, invoked with ``InferenceComponentName``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: InferenceComponentsConfig,
        role: iam.IRole,
        store: ModelStore,
        archive_url: Callable[[str], str],
        rollback_alarm_names: list[str],
        data_capture: sm.CfnEndpointConfig.DataCaptureConfigProperty | None = None,
    ) -> None:
        """``archive_url(component)`` is the archive each component's Model reads: the version the model pipeline
        put live on it, or its reference archive (`PublishedVersions`)."""
        super().__init__(scope, construct_id)
        self.config = sm.CfnEndpointConfig(
            self,
            "Config",
            execution_role_arn=role.role_arn,
            kms_key_id=store.key.key_arn if endpoint.encrypt_volume else None,
            production_variants=[_variant(endpoint, model_name=None)],
            data_capture_config=data_capture,
        )
        self.config.node.add_dependency(role)
        self.endpoint = _endpoint(self, endpoint, self.config, rollback_alarm_names)
        self.endpoint_name = endpoint.name
        self.components: dict[str, sm.CfnInferenceComponent] = {}
        for model in endpoint.models:
            name = component_name(endpoint.name, model.name)
            cfn_model = _model(self, f"{model.name}Model", endpoint, role, store, archive_url(name))
            self.components[name] = sm.CfnInferenceComponent(
                self,
                f"{model.name}Component",
                inference_component_name=name,
                endpoint_name=self.endpoint.attr_endpoint_name,
                variant_name=defaults.VARIANT_NAME,
                specification=sm.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                    model_name=cfn_model.attr_model_name,
                    compute_resource_requirements=sm.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                        number_of_accelerator_devices_required=model.accelerators or None,
                        number_of_cpu_cores_required=model.cpu_cores,
                        min_memory_required_in_mb=model.memory_mb,
                    ),
                ),
                runtime_config=sm.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                    copy_count=model.copies
                ),
                deployment_config=_component_rollout(endpoint, rollback_alarm_names),
            )


def _single_model(
    scope: Construct, endpoint: ServerlessConfig | AsyncConfig, role: iam.IRole, store: ModelStore
) -> sm.CfnModel:
    """The endpoint's one archive as a SingleModel, under the code-digest prefix like every other Model."""
    return _model(scope, "Model", endpoint, role, store, store.archive_url(endpoint.model))


def _model(
    scope: Construct,
    construct_id: str,
    endpoint: EndpointConfig,
    role: iam.IRole,
    store: ModelStore,
    model_data_url: str,
    *,
    model_cache: bool | None = None,
) -> sm.CfnModel:
    """A Model of the endpoint's image: one archive, or with ``model_cache`` set, a multi-model prefix."""
    multi_model = model_cache is not None
    model = sm.CfnModel(
        scope,
        construct_id,
        execution_role_arn=role.role_arn,
        primary_container=sm.CfnModel.ContainerDefinitionProperty(
            image=endpoint.image,
            mode="MultiModel" if multi_model else "SingleModel",
            model_data_url=model_data_url,
            multi_model_config=sm.CfnModel.MultiModelConfigProperty(
                model_cache_setting="Enabled" if model_cache else "Disabled"
            )
            if multi_model
            else None,
            environment=container_environment(store, multi_model=multi_model),
        ),
    )
    # The archives and the role's policy must exist before SageMaker creates the model and loads from S3.
    model.node.add_dependency(store.deployment, role)
    checkov_skip(model, "CKV_AWS_370", NOT_ISOLATED[endpoint.hosting])
    return model


class ServerlessEndpoint(Construct):
    """One model on serverless compute (CPU only), sized by memory and concurrency, paid per request."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: ServerlessConfig,
        role: iam.IRole,
        store: ModelStore,
        rollback_alarm_names: list[str],
    ) -> None:
        super().__init__(scope, construct_id)
        serverless = endpoint.serverless
        self.model = _single_model(self, endpoint, role, store)
        self.config = sm.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sm.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=defaults.VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    initial_variant_weight=1.0,
                    serverless_config=sm.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=serverless.memory_mb,
                        max_concurrency=serverless.max_concurrency,
                        provisioned_concurrency=serverless.provisioned_concurrency or None,
                    ),
                )
            ],
        )
        self.endpoint = _endpoint(self, endpoint, self.config, rollback_alarm_names)
        self.endpoint_name = endpoint.name


class AsyncEndpoint(Construct):
    """One model on instances that work through a queue: ``InvokeEndpointAsync`` names a request in S3, the
    result lands under ``output_path`` (or ``failure_path``) and is announced on SNS. Scales to zero."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: AsyncConfig,
        async_io: AsyncInferenceIO,
        role: iam.IRole,
        store: ModelStore,
        rollback_alarm_names: list[str],
        data_capture: sm.CfnEndpointConfig.DataCaptureConfigProperty | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.async_io = async_io
        self.model = _single_model(self, endpoint, role, store)
        self.config = sm.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=store.key.key_arn if endpoint.encrypt_volume else None,
            production_variants=[_variant(endpoint, model_name=self.model.attr_model_name)],
            async_inference_config=_async_config(endpoint, async_io, store),
            data_capture_config=data_capture,
        )
        self.endpoint = _endpoint(self, endpoint, self.config, rollback_alarm_names)
        self.endpoint_name = endpoint.name


def _async_config(
    endpoint: AsyncConfig, async_io: AsyncInferenceIO, store: ModelStore
) -> sm.CfnEndpointConfig.AsyncInferenceConfigProperty:
    ec, settings = sm.CfnEndpointConfig, endpoint.async_inference
    return ec.AsyncInferenceConfigProperty(
        output_config=ec.AsyncInferenceOutputConfigProperty(
            s3_output_path=async_io.output_path,
            s3_failure_path=async_io.failure_path,
            kms_key_id=store.key.key_arn,
            notification_config=ec.AsyncInferenceNotificationConfigProperty(
                success_topic=async_io.success_topic.topic_arn,
                error_topic=async_io.error_topic.topic_arn,
                include_inference_response_in=["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"]
                if settings.include_response_in_notifications
                else None,
            ),
        ),
        client_config=ec.AsyncInferenceClientConfigProperty(
            max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
        ),
    )


Hosting = MultiModelEndpoint | InferenceComponentEndpoint | ServerlessEndpoint | AsyncEndpoint


def _component_rollout(
    endpoint: InferenceComponentsConfig, alarm_names: list[str]
) -> sm.CfnInferenceComponent.InferenceComponentDeploymentConfigProperty:
    ic = sm.CfnInferenceComponent
    return ic.InferenceComponentDeploymentConfigProperty(
        rolling_update_policy=ic.InferenceComponentRollingUpdatePolicyProperty(
            maximum_batch_size=ic.InferenceComponentCapacitySizeProperty(type="COPY_COUNT", value=1),
            wait_interval_in_seconds=endpoint.rollout.wait_s,
            maximum_execution_timeout_in_seconds=4 * endpoint.rollout.wait_s + 3600,
        ),
        auto_rollback_configuration=ic.AutoRollbackConfigurationProperty(
            alarms=[ic.AlarmProperty(alarm_name=name) for name in alarm_names]
        )
        if endpoint.rollout.auto_rollback
        else None,
    )


def _variant(
    endpoint: InstanceEndpointConfig, *, model_name: str | None
) -> sm.CfnEndpointConfig.ProductionVariantProperty:
    scaling = endpoint.scaling
    return sm.CfnEndpointConfig.ProductionVariantProperty(
        variant_name=defaults.VARIANT_NAME,
        model_name=model_name,
        instance_type=endpoint.instance_type,
        initial_instance_count=endpoint.instance_count,
        initial_variant_weight=1.0 if model_name else None,
        volume_size_in_gb=endpoint.volume_size_gb,
        model_data_download_timeout_in_seconds=defaults.MODEL_DOWNLOAD_TIMEOUT_S if model_name else None,
        container_startup_health_check_timeout_in_seconds=defaults.STARTUP_HEALTH_CHECK_TIMEOUT_S
        if model_name
        else None,
        managed_instance_scaling=None
        if model_name
        else sm.CfnEndpointConfig.ManagedInstanceScalingProperty(
            status="ENABLED", min_instance_count=scaling.min_instances, max_instance_count=scaling.max_instances
        ),
        # Async variants work through their queue; whether RoutingConfig applies to them is unconfirmed.
        routing_config=sm.CfnEndpointConfig.RoutingConfigProperty(routing_strategy=endpoint.routing)
        if isinstance(endpoint, MultiModelConfig | InferenceComponentsConfig)
        else None,
    )
