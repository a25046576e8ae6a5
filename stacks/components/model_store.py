"""The model bucket, the archives in it, and the inference code asset whose digest versions them."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from creative_scoring.artifacts.archive import CODE_FILES
from creative_scoring.config import defaults
from stacks.nag import acknowledge, checkov_skip


class ModelStore(Construct):
    """KMS-encrypted, versioned, access-logged bucket; archives live under ``models/<code digest>/``.

    The prefix is named after the content digest of the inference code asset, so a code change writes the
    archives to a new prefix: SageMaker gets a new Model (and EndpointConfig), and no model cache ever mixes
    archives of the old and the new code. Adding an archive under the same code changes only S3 objects.
    """

    def __init__(self, scope: Construct, construct_id: str, *, artifacts_dir: Path, inference_dir: Path) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the creative-scoring model archives",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(self.access_logs, "AwsSolutions-S1", "This is the access-log bucket; logging it to itself loops.")
        checkov_skip(self.access_logs, "CKV_AWS_18", "This is the access-log bucket; logging it to itself loops.")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="model-bucket/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.code = s3_assets.Asset(
            self, "InferenceCode", path=str(inference_dir), exclude=["*", *(f"!{name}" for name in CODE_FILES)]
        )
        self.prefix = f"{defaults.MODEL_PREFIX}/{self.code.asset_hash}/"
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Archives",
            sources=[s3deploy.Source.asset(str(artifacts_dir))],
            destination_bucket=self.bucket,
            destination_key_prefix=self.prefix,
            # No pruning: the prefix also holds the versions the model pipeline published (ops/versions.py), which
            # a deploy must not delete. Older prefixes are other code versions' and stay (retain_on_delete), so a
            # rollback to the previous Model still finds its archives.
            prune=False,
            retain_on_delete=True,
            memory_limit=defaults.DEPLOYMENT_MEMORY_MIB,
            ephemeral_storage_size=Size.mebibytes(defaults.DEPLOYMENT_STORAGE_MIB),
        )

    @property
    def model_data_prefix(self) -> str:
        """The S3 prefix a multi-model endpoint loads ``TargetModel`` archives from."""
        return self.bucket.s3_url_for_object(self.prefix)

    def archive_url(self, model_name: str) -> str:
        return self.bucket.s3_url_for_object(f"{self.prefix}{model_name}.tar.gz")
