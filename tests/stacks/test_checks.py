"""cdk-nag (AwsSolutions, cdk-nag 3) and cfn-lint on every environment, each with a case that must fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

import app
from creative_scoring.paths import ROOT
from tests.conftest import CONTEXT


def _violations(outdir: Path) -> dict[str, list[str]]:
    """Construct paths by rule; the report lists only plugins that found something."""
    report = json.loads((outdir / "validation-report.json").read_text())
    return {
        v["ruleName"]: [c["constructPath"] for c in v["violatingConstructs"]]
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
    }


def test_every_environment_synthesizes_with_no_open_nag_findings(tmp_path: Path) -> None:
    cdk_app = cdk.App(context=CONTEXT, outdir=str(tmp_path))
    app.build_app(cdk_app, nag=True)
    cdk_app.synth()  # raises ValidationFailed on any unacknowledged finding, as the next test shows
    assert sorted(p.name for p in tmp_path.glob("*.template.json")) == [
        "CreativeScoring-dev.template.json",
        "CreativeScoring-prod.template.json",
    ]


def test_nag_fails_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    cdk_app = cdk.App(context=CONTEXT, outdir=str(tmp_path))
    dev = app.build_app(cdk_app, nag=True)[0]
    s3.Bucket(dev, "PlainBucket")  # no access logs, no SSL-only policy
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        cdk_app.synth()
    violations = _violations(tmp_path)
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= set(violations)
    assert {path for paths in violations.values() for path in paths} == {"CreativeScoring-dev/PlainBucket/Resource"}


def _cfn_lint(*templates: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--", *map(str, templates)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_cfn_lint_is_clean_on_every_template(tmp_path: Path) -> None:
    cdk_app = cdk.App(context=CONTEXT, outdir=str(tmp_path))
    app.build_app(cdk_app, nag=False)
    cdk_app.synth()
    result = _cfn_lint(*sorted(tmp_path.glob("*.template.json")))
    assert result.returncode == 0, result.stdout


def test_cfn_lint_catches_an_invalid_instance_type(tmp_path: Path) -> None:
    template: dict[str, Any] = {
        "Resources": {
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarg", "InitialInstanceCount": 1}
                    ]
                },
            }
        }
    }
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(template))
    result = _cfn_lint(path)
    assert result.returncode != 0
    assert "ml.g5.xlarg" in result.stdout


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("volume_size_gb", 100, "endpoints[0].volume_size_gb: ml.g5.xlarge has local NVMe storage"),
        (
            "image",
            "pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime",
            "endpoints[0].image: 'pytorch/pytorch:2.6.0-cuda12.4-cudnn9-runtime' is not allowed; "
            "expected an ECR image URI",
        ),
    ],
)
def test_app_reports_a_configuration_error_without_a_traceback(
    tmp_path: Path, key: str, value: Any, message: str
) -> None:
    context = json.loads(json.dumps(CONTEXT))
    context["creative-scoring"]["environments"]["prod"]["endpoints"][0][key] = value
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)},
    )
    assert result.returncode == 1
    assert f"invalid configuration in cdk.json: creative-scoring.environments.prod.{message}" in result.stderr
    assert "Traceback" not in result.stderr
