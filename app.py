#!/usr/bin/env python3
"""CDK entry point: reads the ``creative-scoring`` context once and synthesizes one stack per environment.

npx cdk synth                      # every environment
npx cdk synth -c env=prod          # one environment
npx cdk deploy CreativeScoring-dev
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from creative_scoring.artifacts.archive import read_manifest
from creative_scoring.config import CONTEXT_KEY, ConfigError, EnvironmentConfig, parse_environments
from creative_scoring.paths import INFERENCE_DIR, MODEL_ARTIFACTS
from stacks.serving_stack import ServingStack

ARTIFACTS, INFERENCE = MODEL_ARTIFACTS, INFERENCE_DIR


def build_app(
    app: cdk.App, *, artifacts_dir: Path = ARTIFACTS, inference_dir: Path = INFERENCE, nag: bool = True
) -> list[ServingStack]:
    """Add the stacks of the selected environments (``-c env=NAME``, default all) to ``app``."""
    environments = parse_environments(
        app.node.try_get_context(CONTEXT_KEY), known_models=[m["name"] for m in read_manifest(artifacts_dir)]
    )
    selected = app.node.try_get_context("env")
    if selected is not None and (not isinstance(selected, str) or selected not in environments):
        raise ConfigError(f"-c env={selected!r}: no such environment; declared: {sorted(environments)}")
    stacks = [
        _stack(app, env, artifacts_dir, inference_dir) for name, env in environments.items() if selected in (None, name)
    ]
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks


def _stack(app: cdk.App, environment: EnvironmentConfig, artifacts_dir: Path, inference_dir: Path) -> ServingStack:
    account = environment.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
    return ServingStack(
        app,
        environment.stack_name,
        environment=environment,
        artifacts_dir=artifacts_dir,
        inference_dir=inference_dir,
        env=cdk.Environment(account=account, region=environment.region),
        description=f"Creative-scoring SageMaker serving, {environment.name}",
    )


def main() -> int:
    app = cdk.App()
    try:
        build_app(app)
    except ConfigError as e:
        print(f"invalid configuration in cdk.json: {e}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
