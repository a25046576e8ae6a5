"""Runtime API errors, shaped so each AWS SDK raises the same exception class and fields as against SageMaker.

Each error carries its HTTP status, its shape's name and the shape's members; the front turns it into the wire
form at the boundary (`local_endpoint.front.request_log.error_response`).
"""

from __future__ import annotations

from typing import Any, ClassVar

CONTAINER = "primary"


class RuntimeApiError(Exception):
    """An error of the SageMaker runtime API: an HTTP status, a shape name and the shape's members."""

    status: ClassVar[int] = 500
    shape: ClassVar[str] = "InternalFailure"

    def __init__(self, message: str, **members: Any) -> None:
        super().__init__(message)
        self.message = message
        self.members = members


class ValidationError(RuntimeApiError):
    status, shape = 400, "ValidationError"


class Throttling(RuntimeApiError):
    """What SageMaker answers over an endpoint's concurrency limit (400, as reported by SDK users)."""

    status, shape = 400, "ThrottlingException"


class ModelNotReady(RuntimeApiError):
    status, shape = 429, "ModelNotReadyException"


class InternalFailure(RuntimeApiError):
    status, shape = 500, "InternalFailure"


class ServiceUnavailable(RuntimeApiError):
    status, shape = 503, "ServiceUnavailable"


class ModelError(RuntimeApiError):
    """The container answered 4xx or 5xx (or nothing in time): SageMaker always reports 424 to the client."""

    status, shape = 424, "ModelError"

    def __init__(self, *, original_status: int, original_message: str, log_stream_arn: str, log_url: str) -> None:
        side = "client" if 400 <= original_status < 500 else "server"
        super().__init__(
            f'Received {side} error ({original_status}) from {CONTAINER} with message "{original_message}". '
            f"See {log_url} for more information.",
            ErrorCode="CLIENT_ERROR_FROM_MODEL" if side == "client" else "INTERNAL_FAILURE_FROM_MODEL",
            OriginalStatusCode=original_status,
            OriginalMessage=original_message,
            LogStreamArn=log_stream_arn,
        )


TIMEOUT_MESSAGE = (
    f"Your invocation timed out while waiting for a response from container {CONTAINER}. Review the latency "
    "metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)
