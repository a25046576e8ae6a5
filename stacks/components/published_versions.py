"""The deploy's side of published model versions: before a Model reads the model prefix, every version the model
pipeline published is carried there (``ops/carry_over.py``), repackaged with this deploy's inference code.

- Multi-model endpoints load published versions by ``TargetModel`` from the prefix.
- Inference components: the Model of each component reads the archive this resource answers for it (attribute
  ``archive_attribute(component)``): the version put live on that component (``models publish --component``),
  carried to this code, or else the reference archive. So a deploy keeps the version a component serves.

The custom resource's properties are the bucket, the prefix (which names the code digest) and the components with
their settings, so it runs on every deploy that changes the code or a component, and again when CloudFormation
rolls such a deploy back. Deleting it deletes nothing: published versions outlive stacks.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from creative_scoring.artifacts.published import RECORDS, SUFFIX, archive_attribute
from creative_scoring.config import ComponentModel, InferenceComponentsConfig, defaults
from creative_scoring.paths import ROOT
from stacks.components.model_store import ModelStore
from stacks.nag import (
    DEPLOY_TIME_FUNCTION,
    DEPLOY_TIME_LOGS,
    acknowledge,
    acknowledge_prefixes,
    checkov_skip_all,
    logical_ref,
)

# What the function runs: the carry-over and the archive format, standard library and boto3 only.
HANDLER_FILES = (
    "ops/__init__.py",
    "ops/carry_over.py",
    "creative_scoring/__init__.py",
    "creative_scoring/paths.py",
    "creative_scoring/artifacts/__init__.py",
    "creative_scoring/artifacts/archive.py",
    "creative_scoring/artifacts/published.py",
)
RUNTIME = lambda_.Runtime.PYTHON_3_13


class PublishedVersions(Construct):
    """Custom resource ``Custom::PublishedVersions``; a multi-model Model depends on ``resource``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        store: ModelStore,
        components: dict[str, tuple[InferenceComponentsConfig, ComponentModel]],
    ) -> None:
        super().__init__(scope, construct_id)
        self.store = store
        handler = lambda_.Function(
            self,
            "Handler",
            runtime=RUNTIME,
            handler="ops.carry_over.on_event",
            code=lambda_.Code.from_asset(str(_handler_source())),
            timeout=Duration.minutes(defaults.CARRY_OVER_TIMEOUT_MIN),
            memory_size=defaults.CARRY_OVER_MEMORY_MIB,
            description="Carries published model versions to the deployed inference code",
            log_group=(handler_logs := logs.LogGroup(self, "HandlerLogs", retention=logs.RetentionDays.ONE_YEAR)),
        )
        _grant(handler, store)
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=handler,
            log_group=(provider_logs := logs.LogGroup(self, "ProviderLogs", retention=logs.RetentionDays.ONE_YEAR)),
        )
        for log_group in (handler_logs, provider_logs):
            checkov_skip_all(log_group, DEPLOY_TIME_LOGS)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type="Custom::PublishedVersions",
            properties={
                "Bucket": store.bucket.bucket_name,
                "Prefix": store.prefix,
                "Components": {name: _component(name, *component) for name, component in sorted(components.items())},
            },
        )
        # The reference archives of the new prefix must be there: the new code is taken from one of them.
        self.resource.node.add_dependency(store.deployment)
        _acknowledge(handler, provider)

    def component_archive_url(self, component: str) -> str:
        """The S3 URL of the archive the Model of ``component`` is to read."""
        return self.store.bucket.s3_url_for_object(self.resource.get_att_string(archive_attribute(component)))


def _component(name: str, endpoint: InferenceComponentsConfig, model: ComponentModel) -> dict[str, str]:
    """What the function needs for one component, and a digest of every setting of the component and its endpoint
    (resources, copies, rollout, alarms): a deploy that changes any of them updates the component, so it must run
    the function again, or the update would put the template's archive back in place of the live version."""
    settings = hashlib.sha256(repr((endpoint, model)).encode()).hexdigest()
    return {"Attribute": archive_attribute(name), "Archive": f"{model.name}{SUFFIX}", "Settings": settings}


def _handler_source() -> Path:
    """A folder with only ``HANDLER_FILES``: the asset hash changes only when they do."""
    folder = Path(tempfile.mkdtemp(prefix="creative-scoring-carry-over-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name in HANDLER_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, folder / name)
    return folder


def _grant(handler: lambda_.Function, store: ModelStore) -> None:
    """Read the model archives and records, write archives under ``models/`` and records under ``published/``."""
    prefixes = [f"{defaults.MODEL_PREFIX}/*", f"{RECORDS}*"]
    handler.add_to_role_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject"], resources=[store.bucket.arn_for_objects(p) for p in prefixes]
        )
    )
    handler.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[store.bucket.bucket_arn]))
    handler.add_to_role_policy(
        iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[store.key.key_arn])
    )
    acknowledge_prefixes(
        handler,
        store.bucket,
        {
            f"{defaults.MODEL_PREFIX}/": "Reads reference archives and writes carried versions of any code digest",
            RECORDS: "Reads and updates the record of each published version",
        },
        owner="the model versions' own",
    )


def _acknowledge(handler: lambda_.Function, provider: cr.Provider) -> None:
    acknowledge(handler, "AwsSolutions-L1", f"Pinned to {RUNTIME.name}, which the carry-over is tested on.")
    acknowledge(
        provider,
        f"AwsSolutions-IAM5[Resource::{logical_ref(handler)}:*]",
        "The CDK provider framework invokes every version of the carry-over function, that function only.",
    )
    for function in (handler, provider):
        acknowledge(
            function,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "The function only writes its own logs with the AWS basic execution policy.",
        )
    checkov_skip_all(handler, DEPLOY_TIME_FUNCTION)
    checkov_skip_all(provider.node.find_child("framework-onEvent"), DEPLOY_TIME_FUNCTION)
