"""Accepted findings, each placed next to the resource it concerns with its reason: cdk-nag 3 acknowledgments
(exact finding ids, checked at synth) and checkov skips (template metadata, checked by ``make checkov``)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def checkov_skip(construct: IConstruct, check: str, reason: str) -> None:
    """Record in the template that checkov's ``check`` does not apply to ``construct``'s resource, and why.

    checkov reads ``Metadata.checkov.skip`` (a list of ``{id, comment}``); CDK keeps one value per metadata key,
    so the list is extended, not replaced.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} is not a CloudFormation resource")
    current = resource.get_metadata("checkov") or {}
    skips = [s for s in current.get("skip", []) if s["id"] != check] + [{"id": check, "comment": reason}]
    resource.add_metadata("checkov", {**current, "skip": skips})


# The functions that only CloudFormation calls, at deploy time: no traffic, no secrets, no VPC in this stack.
DEPLOY_TIME_FUNCTION = {
    "CKV_AWS_115": "Called only by CloudFormation during a deploy, one event at a time: no concurrency to reserve.",
    "CKV_AWS_116": "Called synchronously by CloudFormation, which reports a failure and rolls back: no DLQ to read.",
    "CKV_AWS_117": "Reaches only S3 and SageMaker's APIs; this stack has no VPC to place it in.",
    "CKV_AWS_173": "Its environment holds names and ARNs, no secret.",
}
DEPLOY_TIME_LOGS = {"CKV_AWS_158": "Logs of a deploy-time function: names and statuses, no data; kept a year."}


def checkov_skip_all(construct: IConstruct, reasons: dict[str, str]) -> None:
    for check, reason in reasons.items():
        checkov_skip(construct, check, reason)


def acknowledge_prefixes(
    role: IConstruct, bucket: IConstruct, reasons: dict[str, str], *, owner: str = "this endpoint's alone"
) -> None:
    """Acknowledge the wildcard under each of ``bucket``'s prefixes that ``role`` is granted, with its reason."""
    for prefix, why in reasons.items():
        acknowledge(
            role, f"AwsSolutions-IAM5[Resource::{logical_ref(bucket)}/{prefix}*]", f"{why}; the prefix is {owner}."
        )


def logical_ref(construct: IConstruct) -> str:
    """How a finding id spells a resource ARN of ``construct``, e.g. ``<ModelStoreBucket1234.Arn>``."""
    stack = Stack.of(construct)
    default_child = construct.node.default_child or construct
    return f"<{stack.resolve(stack.get_logical_id(default_child))}.Arn>"  # type: ignore[arg-type]


DEPLOYMENT_HANDLER_PREFIX = "Custom::CDKBucketDeployment"


def finding_text(value: str, pseudo_parameter: str) -> str:
    """How cdk-nag spells a value in a finding id: literal, or ``<AWS::Region>`` for an unresolved one."""
    return f"<AWS::{pseudo_parameter}>" if Token.is_unresolved(value) else value


def acknowledge_deployment_handler(stack: Stack, bucket: IConstruct) -> None:
    """The BucketDeployment handler is a stack-level singleton that aws-cdk-lib defines and versions.

    Its role is what ``BucketDeployment`` grants: read the CDK asset bucket, write and prune the model bucket.
    """
    assets = (
        f"arn:{finding_text(stack.partition, 'Partition')}:s3:::cdk-hnb659fds-assets-"
        f"{finding_text(stack.account, 'AccountId')}-{finding_text(stack.region, 'Region')}/*"
    )
    copy = "The CDK-managed handler copies the archives from the asset bucket into the model bucket"
    findings = {
        "AwsSolutions-L1": "aws-cdk-lib pins the runtime of its BucketDeployment handler.",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
            "The CDK-managed handler only writes its own logs with the AWS basic execution policy."
        ),
        f"AwsSolutions-IAM5[Resource::{assets}]": f"{copy}; asset keys are content hashes.",
        f"AwsSolutions-IAM5[Resource::{logical_ref(bucket)}/*]": f"{copy} and prunes stale archives.",
        **{
            f"AwsSolutions-IAM5[Action::{action}]": f"{copy}: read, list, write and delete on those two buckets only."
            for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
        },
        **{
            f"AwsSolutions-IAM5[Action::{action}]": "Encrypting archives with the model bucket's key, that key only."
            for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*")
        },
    }
    for handler in (c for c in stack.node.children if c.node.id.startswith(DEPLOYMENT_HANDLER_PREFIX)):
        for finding, reason in findings.items():
            acknowledge(handler, finding, reason)
        checkov_skip_all(handler, DEPLOY_TIME_FUNCTION)
        if (log_group := handler.node.try_find_child("LogGroup")) is not None:
            checkov_skip_all(log_group, DEPLOY_TIME_LOGS)
