"""Where batch transform jobs of an endpoint's Model read records and write results.

Batch transform has no CloudFormation resource (``creative-scoring sagemaker transform`` starts the jobs), but a
job runs as the Model's execution role, so the stack grants that role ``batch/<endpoint>/input/`` to read and
``batch/<endpoint>/output/`` to write in the model bucket, encrypted with the bucket key, and SageMaker's
transform log group ``/aws/sagemaker/TransformJobs`` for the container's logs.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from creative_scoring.config import defaults
from stacks.components.model_store import ModelStore
from stacks.nag import acknowledge, acknowledge_prefixes, finding_text


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
        stack = Stack.of(self)
        log_group = f"arn:{Aws.PARTITION}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/TransformJobs"
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
            # Decrypt: reading SSE-KMS input objects, and completing the multipart uploads of the results.
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.store.key.key_arn]),
            # The container's logs: one stream per job and instance in SageMaker's transform log group.
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group, f"{log_group}:log-stream:*"],
            ),
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
        region, account = finding_text(stack.region, "Region"), finding_text(stack.account, "AccountId")
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{region}:{account}:log-group:"
            "/aws/sagemaker/TransformJobs:log-stream:*]",
            "SageMaker names one log stream per transform job and instance; jobs are named when they start.",
        )
