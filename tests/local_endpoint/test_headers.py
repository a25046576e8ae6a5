"""Headers that boto3 sends and SageMaker accepts are accepted; the ones that fail their checks are in
front/test_realtime.py, with InvokeEndpoint's other validation errors."""

from __future__ import annotations

from typing import Any

from creative_scoring.paths import SAMPLES
from tests.local_endpoint.conftest import DEV_ENDPOINT, invoke_json

CREATIVES = (SAMPLES / "creatives.json").read_bytes()


def test_custom_attributes_and_inference_id_are_accepted(dev: Any) -> None:
    response = invoke_json(
        dev,
        DEV_ENDPOINT,
        "creative-scorer-v1.tar.gz",
        CustomAttributes="trace=abc",
        InferenceId="inf-1",
        TargetVariant="AllTraffic",
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "CustomAttributes" not in response  # our handler sets none, so none comes back
