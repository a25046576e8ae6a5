"""Where an async endpoint reads requests and writes results, and the topics that announce each result.

Requests, results and failures live in the model bucket under ``async/<endpoint>/{input,output,failures}/``,
encrypted with the bucket key; success and error notifications go to two SNS topics of the endpoint,
encrypted with their own key and SSL-only like the alarm topic.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from creative_scoring.config import defaults
from stacks.components.model_store import ModelStore
from stacks.nag import acknowledge_prefixes


class AsyncInferenceIO(Construct):
    """``input_path``, ``output_path``, ``failure_path`` (``s3://`` URLs) and the two topics of one endpoint."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, store: ModelStore) -> None:
        super().__init__(scope, construct_id)
        self.store = store
        prefix = f"{defaults.ASYNC_PREFIX}/{endpoint_name}"
        self.input_prefix = f"{prefix}/input/"
        self.output_prefix = f"{prefix}/output/"
        self.failure_prefix = f"{prefix}/failures/"
        self.input_path = store.bucket.s3_url_for_object(self.input_prefix)
        self.output_path = store.bucket.s3_url_for_object(self.output_prefix)
        self.failure_path = store.bucket.s3_url_for_object(self.failure_prefix)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the result notifications of {endpoint_name}",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.success_topic = sns.Topic(self, "SuccessTopic", master_key=self.key, enforce_ssl=True)
        self.error_topic = sns.Topic(self, "ErrorTopic", master_key=self.key, enforce_ssl=True)

    def grant(self, role: iam.IRole) -> None:
        """What SageMaker does as ``role``: read requests, write results and failures, notify both topics."""
        bucket = self.store.bucket.bucket_arn
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket}/{self.input_prefix}*"]),
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[f"{bucket}/{self.output_prefix}*", f"{bucket}/{self.failure_prefix}*"],
            ),
            # OutputConfig.KmsKeyId names the bucket key: SageMaker encrypts the results with it as the role.
            iam.PolicyStatement(actions=["kms:Encrypt", "kms:GenerateDataKey"], resources=[self.store.key.key_arn]),
            iam.PolicyStatement(
                actions=["sns:Publish"], resources=[self.success_topic.topic_arn, self.error_topic.topic_arn]
            ),
            # Publishing to an encrypted topic needs its key.
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        acknowledge_prefixes(
            role,
            self.store.bucket,
            {
                self.input_prefix: "Clients upload each request under its own key before InvokeEndpointAsync",
                self.output_prefix: "SageMaker names each result object after the request's inference id",
                self.failure_prefix: "SageMaker names each failure object after the request's inference id",
            },
        )
