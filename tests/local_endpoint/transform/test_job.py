"""The job's own checks, beyond the shared CreateTransformJob rules (tests/artifacts/test_transform_request.py)."""

from __future__ import annotations

from typing import Any

import pytest

from local_endpoint.transform import TransformError, TransformJob
from tests.local_endpoint.transform.conftest import MODEL

VALID: dict[str, Any] = {"model": MODEL, "input": "in", "output": "out"}


@pytest.mark.parametrize(
    ("wrong", "right", "message"),
    [
        ({"max_payload_mb": 0}, {"max_payload_mb": 1}, "chunked streaming"),  # SageMaker's, not served here
        ({"output": "in/scored"}, {"output": "scored"}, "inside the input location"),
        (
            {"input": "s3://data/x", "output": "s3://data/x-out"},
            {"input": "s3://data/x/", "output": "s3://data/y"},
            "inside",
        ),
        ({"input": "s3://Data/x"}, {"input": "s3://data/x"}, "not an S3 bucket name"),
        ({"input": "gs://data/x"}, {"input": "s3://data/x"}, "only local paths and s3://"),
        ({"s3_endpoint_url": "localhost:5000"}, {"s3_endpoint_url": "http://localhost:5000"}, "--s3-endpoint-url"),
    ],
)
def test_settings_sagemaker_refuses_are_refused_naming_the_parameter_and_fix(
    wrong: dict[str, Any], right: dict[str, Any], message: str
) -> None:
    with pytest.raises(TransformError) as raised:
        TransformJob(**{**VALID, **wrong})
    assert message in str(raised.value)
    assert TransformJob(**{**VALID, **right})


def test_workers_0_is_the_default_1_and_too_many_workers_are_told_to_lower_workers() -> None:
    assert (
        TransformJob(**VALID, max_concurrent_transforms=0).workers == 1
    )  # as SageMaker: 0 is unset, 1 without execution-parameters
    with pytest.raises(TransformError) as raised:
        TransformJob(**VALID, max_concurrent_transforms=101, max_payload_mb=1)
    assert str(raised.value).endswith("it must be at most 100: lower --workers to 100")
