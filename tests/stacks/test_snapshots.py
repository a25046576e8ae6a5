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

# dev: multi-model + serverless (on demand, no scaling) + async (scales to zero).
# prod: inference components + async on GPU (scales to zero).
EXPECTED_COUNTS = {
    "dev": {
        "AWS::SageMaker::Model": 3,
        "AWS::SageMaker::EndpointConfig": 3,
        "AWS::SageMaker::Endpoint": 3,
        "AWS::SageMaker::InferenceComponent": 0,
        "AWS::ApplicationAutoScaling::ScalableTarget": 2,
        "AWS::ApplicationAutoScaling::ScalingPolicy": 3,  # invocations; backlog + step from zero
        "AWS::CloudWatch::Alarm": 22,  # 8 + serverless 4 + async 9 + the scale-out-from-zero trigger
        "AWS::CloudWatch::Dashboard": 3,
        "AWS::SNS::Topic": 3,  # alarms; async success and error
        "AWS::KMS::Key": 3,  # model bucket, alarm topic, async topics
        "AWS::IAM::Role": 6,  # one execution role per endpoint; the handlers of the archives and of the carry-over
    },
    "prod": {
        "AWS::SageMaker::Model": 4,
        "AWS::SageMaker::EndpointConfig": 2,
        "AWS::SageMaker::Endpoint": 2,
        "AWS::SageMaker::InferenceComponent": 3,
        "AWS::ApplicationAutoScaling::ScalableTarget": 4,
        "AWS::ApplicationAutoScaling::ScalingPolicy": 8,
        "AWS::CloudWatch::Alarm": 31,  # 19 + async on GPU 11 + the scale-out-from-zero trigger
        "AWS::CloudWatch::Dashboard": 2,
        "AWS::SNS::Topic": 3,
        "AWS::KMS::Key": 3,
        "AWS::IAM::Role": 5,
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
