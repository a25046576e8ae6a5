"""A code change, a model addition and a settings change roll out as intended, proven by synthesizing before
and after."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from aws_cdk.assertions import Template

import app
from tests.stacks.cfn_changes import plan
from tests.stacks.conftest import config_id, endpoint_named, scaling_of, synth_templates

# Endpoints whose one variant carries a Model: a code change gives them a new EndpointConfig.
VARIANT_ENDPOINTS = {
    "dev": ["creative-scoring-dev", "creative-scoring-dev-serverless", "creative-scoring-dev-async"],
    "prod": ["creative-scoring-prod-async"],
}


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
    # Multi-model, serverless and async: a new EndpointConfig, rolled onto the same Endpoint.
    for name in VARIANT_ENDPOINTS[env]:
        assert config_id(before, name) in changes["replace"]
        assert endpoint_named(before, name)[0] in changes["update"]
    # Inference components (prod only): each component moves to its new Model in place.
    components = _logical_ids(before, "AWS::SageMaker::InferenceComponent")
    assert len(components) == (3 if env == "prod" else 0)
    assert components <= changes["update"]


def test_code_change_moves_archives_to_a_new_prefix(
    templates: dict[str, Template], changed_code: dict[str, Template]
) -> None:
    def prefix(template: Template) -> str:
        (deployment,) = template.find_resources("Custom::CDKBucketDeployment").values()
        return str(deployment["Properties"]["DestinationBucketKeyPrefix"])

    assert prefix(templates["dev"]) != prefix(changed_code["dev"])
    assert prefix(changed_code["dev"]).startswith("models/")


@pytest.fixture(scope="module")
def added_archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Template]:
    artifacts = tmp_path_factory.mktemp("archives") / "model_artifacts"
    shutil.copytree(app.ARTIFACTS, artifacts)
    shutil.copy(artifacts / "creative-scorer-v1.tar.gz", artifacts / "creative-scorer-v1-1.tar.gz")
    return synth_templates(artifacts_dir=artifacts)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_adding_an_archive_changes_only_s3_objects(
    env: str, templates: dict[str, Template], added_archive: dict[str, Template]
) -> None:
    # Multi-model endpoints can serve it at once; the others serve the archives cdk.json names, unchanged.
    changes = plan(templates[env].to_json(), added_archive[env].to_json())
    deployments = _logical_ids(added_archive[env], "Custom::CDKBucketDeployment")
    assert changes == {"replace": set(), "update": deployments, "add": set(), "remove": set()}


def test_disabling_scaling_deregisters_only_the_scaling_resources(
    context: dict[str, Any], templates: dict[str, Template]
) -> None:
    context["creative-scoring"]["environments"]["dev"]["endpoints"][0]["scaling"]["enabled"] = False
    after = synth_templates(context)["dev"]
    changes = plan(templates["dev"].to_json(), after.to_json())
    targets, _ = scaling_of(templates["dev"], "endpoint/creative-scoring-dev/")
    policies = {
        i
        for i, p in templates["dev"].find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if p["Properties"]["ScalingTargetId"] in [{"Ref": t} for t in targets]
    }
    assert changes == {"replace": set(), "update": set(), "add": set(), "remove": set(targets) | policies}


@pytest.mark.parametrize(
    ("env", "name", "block", "settings"),
    [
        ("dev", "creative-scoring-dev-serverless", "serverless", {"memory_mb": 4096}),
        ("dev", "creative-scoring-dev-async", "async", {"max_concurrent_invocations_per_instance": 8}),
        ("prod", "creative-scoring-prod-async", "async", {"include_response_in_notifications": True}),
    ],
)
def test_serverless_and_async_settings_roll_a_new_config_onto_the_same_endpoint(
    context: dict[str, Any], templates: dict[str, Template], env: str, name: str, block: str, settings: dict[str, Any]
) -> None:
    endpoints = context["creative-scoring"]["environments"][env]["endpoints"]
    next(e for e in endpoints if e["name"] == name)[block].update(settings)
    before, after = templates[env], synth_templates(context)[env]
    changes = plan(before.to_json(), after.to_json())
    assert changes == {
        "replace": {config_id(before, name)},
        "update": {endpoint_named(before, name)[0]},
        "add": set(),
        "remove": set(),
    }


def test_a_code_change_moves_each_component_to_its_new_model_without_touching_the_endpoint_or_its_config(
    templates: dict[str, Template], changed_code: dict[str, Template]
) -> None:
    # The path a version put live on a component takes through a deploy: the carry-over answers anew, each
    # component's Model is replaced and the component updated in place; the Endpoint and EndpointConfig stay.
    before = templates["prod"]
    changes = plan(before.to_json(), changed_code["prod"].to_json())
    (carry_over,) = _logical_ids(before, "Custom::PublishedVersions")
    assert carry_over in changes["update"]
    endpoint_id = endpoint_named(before, "creative-scoring-prod")[0]
    untouched = {endpoint_id, config_id(before, "creative-scoring-prod")}
    assert not untouched & (changes["replace"] | changes["update"])
    assert _logical_ids(before, "AWS::SageMaker::InferenceComponent") <= changes["update"]
