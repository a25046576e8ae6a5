"""A code change and a model addition roll out as intended, proven by synthesizing before and after."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

import app
from tests.stacks.cfn_changes import plan
from tests.stacks.conftest import synth_templates


def _logical_ids(template: Template, resource_type: str) -> set[str]:
    return set(template.find_resources(resource_type))


@pytest.fixture(scope="module")
def changed_code(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    inference = tmp_path_factory.mktemp("code") / "inference"
    shutil.copytree(app.INFERENCE, inference)
    with (inference / "inference.py").open("a") as handler:
        handler.write("\n# a new revision of the handler\n")
    return synth_templates(inference_dir=inference)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_code_change_replaces_models_and_updates_the_same_endpoint(
    env: str, templates: dict[str, Template], changed_code: dict[str, Template]
) -> None:
    changes = plan(templates[env].to_json(), changed_code[env].to_json())
    before = templates[env]
    models = _logical_ids(before, "AWS::SageMaker::Model")
    endpoint = _logical_ids(before, "AWS::SageMaker::Endpoint")
    assert models <= changes["replace"]
    assert not endpoint & changes["replace"]
    assert not changes["add"] | changes["remove"]
    if env == "dev":  # multi-model: a new EndpointConfig, rolled onto the same Endpoint
        assert _logical_ids(before, "AWS::SageMaker::EndpointConfig") <= changes["replace"]
        assert endpoint <= changes["update"]
    else:  # inference components: each component moves to its new Model in place
        assert _logical_ids(before, "AWS::SageMaker::InferenceComponent") <= changes["update"]


def test_code_change_moves_archives_to_a_new_prefix(
    templates: dict[str, Template], changed_code: dict[str, Template]
) -> None:
    def prefix(template: Template) -> str:
        (deployment,) = template.find_resources("Custom::CDKBucketDeployment").values()
        return str(deployment["Properties"]["DestinationBucketKeyPrefix"])

    assert prefix(templates["dev"]) != prefix(changed_code["dev"])
    assert prefix(changed_code["dev"]).startswith("models/")


def test_adding_an_archive_changes_only_s3_objects_on_a_multi_model_endpoint(
    tmp_path: Path, templates: dict[str, Template]
) -> None:
    artifacts = tmp_path / "model_artifacts"
    shutil.copytree(app.ARTIFACTS, artifacts)
    shutil.copy(artifacts / "creative-scorer-v1.tar.gz", artifacts / "creative-scorer-v1-1.tar.gz")
    after = synth_templates(artifacts_dir=artifacts)["dev"]
    changes = plan(templates["dev"].to_json(), after.to_json())
    deployments = _logical_ids(after, "Custom::CDKBucketDeployment")
    assert changes == {"replace": set(), "update": deployments, "add": set(), "remove": set()}


def test_disabling_scaling_deregisters_only_the_scaling_resources(
    context: dict[str, Any], templates: dict[str, Template]
) -> None:
    context["creative-scoring"]["environments"]["dev"]["endpoints"][0]["scaling"]["enabled"] = False
    after = synth_templates(context)["dev"]
    changes = plan(templates["dev"].to_json(), after.to_json())
    removed = _logical_ids(templates["dev"], "AWS::ApplicationAutoScaling::ScalableTarget") | _logical_ids(
        templates["dev"], "AWS::ApplicationAutoScaling::ScalingPolicy"
    )
    assert changes == {"replace": set(), "update": set(), "add": set(), "remove": removed}
