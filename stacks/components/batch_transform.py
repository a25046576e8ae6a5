"""Where batch transform jobs of an endpoint's Model read records and write results.

Batch transform has no CloudFormation resource (``python -m ops transform`` starts the jobs), but a job runs
as the Model's execution role, so the stack grants that role ``batch/<endpoint>/input/`` to read and
``batch/<endpoint>/output/`` to write in the model bucket, encrypted with the bucket key.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import defaults
from stacks.components.model_store import ModelStore
from stacks.nag import acknowledge_prefixes


class BatchTransformIO(Construct):
    """``input_path`` and ``output_path`` (``s3://`` URLs) of one endpoint's batch transform jobs."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, store: ModelStore) -> None:
        super().__init__(scope, construct_id)
        self.store = store
        prefix = f"{defaults.BATCH_PREFIX}/{endpoint_name}"
        self.input_prefix = f"{prefix}/input/"
        self.output_prefix = f"{prefix}/output/"
        self.input_path = store.bucket.s3_url_for_object(self.input_prefix)
        self.output_path = store.bucket.s3_url_for_object(self.output_prefix)

    def grant(self, role: iam.IRole) -> None:
        """What a transform job does as ``role``: list and read the input, write the ``.out`` objects."""
        bucket = self.store.bucket.bucket_arn
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket}/{self.input_prefix}*"]),
            # An S3Prefix data source is listed before it is read.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket],
                conditions={"StringLike": {"s3:prefix": [f"{self.input_prefix}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[f"{bucket}/{self.output_prefix}*"]
            ),
            iam.PolicyStatement(actions=["kms:Encrypt", "kms:GenerateDataKey"], resources=[self.store.key.key_arn]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_prefixes(
            role,
            self.store.bucket,
            {
                self.input_prefix: "A job reads every object under the input prefix it is given",
                self.output_prefix: "A job names each result after its input object (<input>.out)",
            },
        )
