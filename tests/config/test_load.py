"""cdk.json is read in one place: its context, and the environments under ``creative-scoring``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from creative_scoring.config import ConfigError, load_environments, read_context
from creative_scoring.paths import CDK_JSON
from tests.config.conftest import MODELS


def test_the_committed_cdk_json_declares_dev_and_prod() -> None:
    environments = load_environments(CDK_JSON, MODELS)
    assert [env.stack_name for env in environments.values()] == ["CreativeScoring-dev", "CreativeScoring-prod"]
    assert read_context(CDK_JSON)["@aws-cdk/core:checkSecretUsage"] is True  # the CDK's settings come along


def test_a_cdk_json_without_the_creative_scoring_block_is_a_configuration_error(tmp_path: Path) -> None:
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"app": "python3 app.py", "context": {}}))
    with pytest.raises(ConfigError, match="creative-scoring: expected an object, got None"):
        load_environments(cdk_json, MODELS)
