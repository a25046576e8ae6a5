"""The role SageMaker assumes for one endpoint: its model prefix, its image repository, its logs, its metrics."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from creative_scoring.config import ECR_IMAGE, defaults
from stacks.components.model_store import ModelStore
from stacks.nag import acknowledge, finding_text, logical_ref


class ImageError(ValueError):
    """An image URI that is not in an ECR registry, so no repository ARN can be scoped.

    creative_scoring.config refuses such an image in cdk.json, naming the key; this guards constructs built without it.
    """


def repository_arn(image: str) -> str:
    match = ECR_IMAGE.match(image)
    if match is None:
        raise ImageError(
            f"image {image!r} is not an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)"
        )
    return f"arn:{Aws.PARTITION}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"


class ExecutionRole(Construct):
    """Least-privilege execution role; ``self.role`` is what the Model and EndpointConfig reference."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, image: str, store: ModelStore
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role of endpoint {endpoint_name}",
        )
        models = f"{store.bucket.bucket_arn}/{defaults.MODEL_PREFIX}/*"
        logs = f"arn:{Aws.PARTITION}:logs:{stack.region}:{stack.account}"
        log_group = f"{logs}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"
        statements = [
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[models]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[store.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{defaults.MODEL_PREFIX}/*"]}},
            ),
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:DescribeKey"], resources=[store.key.key_arn]),
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[repository_arn(image)],
            ),
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                resources=[log_group, f"{log_group}:log-stream:*"],
            ),
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "AWS/SageMaker"]}},
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)
        self._acknowledge(store, endpoint_name)

    def _acknowledge(self, store: ModelStore, endpoint_name: str) -> None:
        stack = Stack.of(self)
        region, account = finding_text(stack.region, "Region"), finding_text(stack.account, "AccountId")
        log_group_text = (
            f"arn:<AWS::Partition>:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"
        )
        findings = {
            f"AwsSolutions-IAM5[Resource::{logical_ref(store.bucket)}/models/*]": (
                "Read-only access to the model prefix: the archives' keys change with every code version."
            ),
            "AwsSolutions-IAM5[Resource::*]": (
                "ecr:GetAuthorizationToken has no resource; PutMetricData is limited to SageMaker namespaces."
            ),
            f"AwsSolutions-IAM5[Resource::{log_group_text}:log-stream:*]": (
                "SageMaker names one log stream per instance and container; the log group is this endpoint's."
            ),
        }
        for finding, reason in findings.items():
            acknowledge(self.role, finding, reason)
