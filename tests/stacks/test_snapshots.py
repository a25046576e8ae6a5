"""One snapshot per environment, asset hashes masked, paired with resource counts. Update on purpose only:
``pytest tests/stacks/test_snapshots.py --snapshot-update``, then review the diff."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from aws_cdk.assertions import Template
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

HASH = re.compile(r"[0-9a-f]{64}")

EXPECTED_COUNTS = {
    "dev": {
        "AWS::SageMaker::Model": 1,
        "AWS::SageMaker::EndpointConfig": 1,
        "AWS::SageMaker::Endpoint": 1,
        "AWS::SageMaker::InferenceComponent": 0,
        "AWS::ApplicationAutoScaling::ScalableTarget": 1,
        "AWS::ApplicationAutoScaling::ScalingPolicy": 1,
        "AWS::CloudWatch::Alarm": 8,
        "AWS::CloudWatch::Dashboard": 1,
    },
    "prod": {
        "AWS::SageMaker::Model": 3,
        "AWS::SageMaker::EndpointConfig": 1,
        "AWS::SageMaker::Endpoint": 1,
        "AWS::SageMaker::InferenceComponent": 3,
        "AWS::ApplicationAutoScaling::ScalableTarget": 3,
        "AWS::ApplicationAutoScaling::ScalingPolicy": 6,
        "AWS::CloudWatch::Alarm": 19,
        "AWS::CloudWatch::Dashboard": 1,
    },
}


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def _masked(template: Template) -> Any:
    return json.loads(HASH.sub("<asset-hash>", json.dumps(template.to_json(), sort_keys=True)))


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_template_matches_the_reviewed_snapshot(
    env: str, templates: dict[str, Template], snapshot_json: SnapshotAssertion
) -> None:
    assert _masked(templates[env]) == snapshot_json


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_resource_counts(env: str, templates: dict[str, Template]) -> None:
    counts = Counter(r["Type"] for r in templates[env].to_json()["Resources"].values())
    assert {t: counts[t] for t in EXPECTED_COUNTS[env]} == EXPECTED_COUNTS[env]
