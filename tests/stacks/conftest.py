"""Synthesized templates of every environment, built the way ``npx cdk synth`` builds them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app
from tests.conftest import CONTEXT

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ENVIRONMENTS = list(CONTEXT["creative-scoring"]["environments"])
Synth = Callable[..., dict[str, Template]]


def synth_templates(
    context: dict[str, Any] | None = None,
    *,
    artifacts_dir: Path = app.ARTIFACTS,
    inference_dir: Path = app.INFERENCE,
    outdir: Path | None = None,
) -> dict[str, Template]:
    """Templates by environment name, synthesized without the nag plugin (test_nag runs it)."""
    cdk_app = cdk.App(context=context or CONTEXT, outdir=str(outdir) if outdir else None)
    stacks = app.build_app(cdk_app, artifacts_dir=artifacts_dir, inference_dir=inference_dir, nag=False)
    return {stack.node.id.removeprefix("CreativeScoring-"): Template.from_stack(stack) for stack in stacks}


@pytest.fixture(scope="session")
def templates() -> dict[str, Template]:
    return synth_templates()


def resources(template: Template, resource_type: str) -> dict[str, Any]:
    return dict(template.find_resources(resource_type))


def only(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = resources(template, resource_type).values()
    return resource  # type: ignore[no-any-return]


def endpoint_named(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the endpoint called ``name``."""
    (found,) = [
        (logical_id, endpoint)
        for logical_id, endpoint in resources(template, "AWS::SageMaker::Endpoint").items()
        if endpoint["Properties"]["EndpointName"] == name
    ]
    return found


def config_id(template: Template, name: str) -> str:
    """The logical id of the EndpointConfig that the endpoint called ``name`` points at."""
    (logical_id, _) = endpoint_named(template, name)[1]["Properties"]["EndpointConfigName"]["Fn::GetAtt"]
    return str(logical_id)


def config_of(template: Template, name: str) -> dict[str, Any]:
    """The EndpointConfig that the endpoint called ``name`` points at."""
    return resources(template, "AWS::SageMaker::EndpointConfig")[config_id(template, name)]  # type: ignore[no-any-return]


def model_of(template: Template, name: str) -> tuple[str, dict[str, Any]]:
    """The logical id and resource of the one Model on the variant of the endpoint called ``name``."""
    (variant,) = config_of(template, name)["Properties"]["ProductionVariants"]
    (model_id, _) = variant["ModelName"]["Fn::GetAtt"]
    return model_id, resources(template, "AWS::SageMaker::Model")[model_id]


def alarms_of(template: Template, name: str) -> dict[str, Any]:
    """The alarms of the endpoint called ``name``: it depends on each of them (they drive its rollbacks)."""
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    return {i: alarms[i] for i in endpoint_named(template, name)[1]["DependsOn"] if i in alarms}


def scaling_of(template: Template, resource_id_prefix: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Scalable targets whose resource id starts with ``resource_id_prefix``, and the policies on them."""
    targets = {
        i: t
        for i, t in resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").items()
        if t["Properties"]["ResourceId"].startswith(resource_id_prefix)
    }
    policies = [
        p
        for p in resources(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["ScalingTargetId"] in [{"Ref": i} for i in targets]
    ]
    return targets, policies
