"""AWS calls of the operations commands: clients of the default credential chain, failures as typed errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

ClientFactory = Callable[[str, "str | None"], Any]
HINTS = {  # by error code
    "NoCredentialsError": "configure AWS credentials (AWS_PROFILE, `aws configure` or `aws sso login`)",
    "NoRegionError": "pass --region or set AWS_REGION",
}


class AwsCallError(Exception):
    """An AWS API call failed: ``api`` is the operation (``CreateTransformJob``), ``code`` the error code,
    ``job_name`` the ``TransformJobName`` it was called with, if any."""

    def __init__(self, api: str, code: str, message: str, job_name: str | None = None) -> None:
        super().__init__(f"{api} failed: {code}: {message}")
        self.api, self.code, self.message, self.job_name = api, code, message, job_name

    def hint(self) -> str:
        """The message, with how to fix the common causes."""
        return "; ".join([str(self), *([HINTS[self.code]] if self.code in HINTS else [])])


class InvalidParameters(ValueError):
    """botocore refused the parameters before sending them."""


def boto3_client(service: str, region: str | None) -> Any:
    """A client of the default credential chain, resolved afresh (not boto3's process-wide default session);
    ``region`` None uses the configured one."""
    return boto3.session.Session(region_name=region).client(service)


def client(factory: ClientFactory, service: str, region: str | None) -> Any:
    """``factory``'s client for ``service``; a missing region or configuration is an `AwsCallError`."""
    try:
        return factory(service, region)
    except BotoCoreError as e:
        raise AwsCallError(f"creating the {service} client", type(e).__name__, str(e)) from e


def call(client: Any, api: str, *, job_name: str | None = None, **params: Any) -> dict[str, Any]:
    """``client``'s operation ``api`` (e.g. ``DescribeStacks``), its failures raised as typed errors."""
    try:
        response: dict[str, Any] = getattr(client, xform_name(api))(**params)
    except ClientError as e:
        error = e.response.get("Error", {})
        raise AwsCallError(api, error.get("Code", "Unknown"), error.get("Message", str(e)), job_name) from e
    except ParamValidationError as e:
        raise InvalidParameters(f"botocore rejected the {api} parameters: {e}") from e
    except BotoCoreError as e:
        raise AwsCallError(api, type(e).__name__, str(e), job_name) from e
    return response


def stack_outputs(cloudformation_client: Any, stack_name: str) -> dict[str, str]:
    """``stack_name``'s outputs, by key (one DescribeStacks)."""
    return describe_stack(cloudformation_client, stack_name)[1]


def describe_stack(cloudformation_client: Any, stack_name: str) -> tuple[str, dict[str, str]]:
    """``stack_name``'s status (``UPDATE_IN_PROGRESS``, ...) and outputs by key (one DescribeStacks)."""
    (stack,) = call(cloudformation_client, "DescribeStacks", StackName=stack_name)["Stacks"]
    return str(stack["StackStatus"]), {o["OutputKey"]: str(o["OutputValue"]) for o in stack.get("Outputs", [])}
