"""Synthesized templates of every environment, built the way ``npx cdk synth`` builds them."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app
from tests.conftest import ROOT

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
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


@pytest.fixture
def context() -> dict[str, Any]:
    """A deep copy of cdk.json's context for a test to modify."""
    return copy.deepcopy(CONTEXT)


def resources(template: Template, resource_type: str) -> dict[str, Any]:
    return dict(template.find_resources(resource_type))


def only(template: Template, resource_type: str) -> dict[str, Any]:
    (resource,) = resources(template, resource_type).values()
    return resource  # type: ignore[no-any-return]
