"""A published version answers after a deploy with new inference code, and after that deploy is rolled back.

The deploy is played for real where it can be here: the stack is synthesized before and after a code change,
the reference archives go to the prefix each template names (what its BucketDeployment writes), and the carry-over
function runs with the properties of each template's custom resource, on a real S3 API (moto's server). That the
version answers is shown by loading the carried archive and scoring the sample creatives through its handler chain.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from creative_scoring.artifacts.archive import code_files, digest, read_manifest, read_members
from creative_scoring.artifacts.published import Record, repackage
from creative_scoring.artifacts.versions import check_scores
from creative_scoring.paths import INFERENCE_DIR, MODEL_ARTIFACTS
from ops.carry_over import carry_over, on_event
from ops.versions import S3Store, publish, versions
from stacks.components.published_versions import HANDLER_FILES
from tests.ops.conftest import BUCKET, deploy_reference_models
from tests.ops.test_versions import V1
from tests.stacks.cfn_changes import plan
from tests.stacks.conftest import synth_templates

VERSION = "creative-scorer-v1-1"


def _carry_over_resource(template: Template) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = template.find_resources("Custom::PublishedVersions").items()
    return logical_id, dict(resource)


def _prefix(template: Template) -> str:
    return str(_carry_over_resource(template)[1]["Properties"]["Prefix"])


@pytest.fixture(scope="module")
def new_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The handler code after a change, and reference archives rebuilt with it (as `train build` would)."""
    root = tmp_path_factory.mktemp("new-code")
    inference = root / "inference"
    shutil.copytree(INFERENCE_DIR, inference)
    with (inference / "inference.py").open("a") as handler:
        handler.write("\n# a new revision of the handler\n")
    artifacts = root / "model_artifacts"
    artifacts.mkdir()
    code = code_files(inference)
    manifest = read_manifest(MODEL_ARTIFACTS)
    for entry in manifest:
        (artifacts / entry["archive"]).write_bytes(repackage((MODEL_ARTIFACTS / entry["archive"]).read_bytes(), code))
        entry["code_sha256"] = digest(code)
    (artifacts / "manifest.json").write_text(json.dumps({"models": manifest}))
    return root


@pytest.fixture(scope="module")
def before_and_after(new_code: Path) -> tuple[Template, Template]:
    before = synth_templates()["dev"]
    after = synth_templates(artifacts_dir=new_code / "model_artifacts", inference_dir=new_code / "inference")["dev"]
    return before, after


def test_the_multi_model_model_is_created_after_the_carry_over_and_reads_its_prefix(
    before_and_after: tuple[Template, Template],
) -> None:
    before, _ = before_and_after
    logical_id, resource = _carry_over_resource(before)
    (deployment,) = before.find_resources("Custom::CDKBucketDeployment")
    assert deployment in resource["DependsOn"]
    assert (
        resource["Properties"]["Prefix"]
        == before.find_resources("Custom::CDKBucketDeployment")[deployment]["Properties"]["DestinationBucketKeyPrefix"]
    )
    multi_model = [
        m
        for m in before.find_resources("AWS::SageMaker::Model").values()
        if m["Properties"]["PrimaryContainer"].get("Mode") == "MultiModel"
    ]
    assert multi_model
    for model in multi_model:
        assert logical_id in model["DependsOn"]
        assert _prefix(before) in json.dumps(model["Properties"]["PrimaryContainer"]["ModelDataUrl"])


@pytest.mark.parametrize(
    ("block", "key", "value"),
    [("models", "memory_mb", 8192), ("rollout", "wait_s", 600), ("alarms", "model_latency_p99_ms", 400)],
)
def test_the_carry_over_runs_again_when_a_component_changes(
    context: dict[str, Any], block: str, key: str, value: int
) -> None:
    before = synth_templates(context)["prod"]
    endpoint = context["creative-scoring"]["environments"]["prod"]["endpoints"][0]
    (endpoint[block][0] if block == "models" else endpoint[block])[key] = value
    after = synth_templates(context)["prod"]
    changes = plan(before.to_json(), after.to_json())
    assert _carry_over_resource(before)[0] in changes["update"]  # so it answers each component's live version again


def test_a_published_version_answers_after_a_deploy_with_new_code_and_after_its_rollback(
    s3: Any,
    moto_url: str,
    new_code: Path,
    before_and_after: tuple[Template, Template],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before, after = before_and_after
    old, new = _prefix(before), _prefix(after)
    assert old != new
    deploy_reference_models(s3, BUCKET, old)
    publish(S3Store(s3, BUCKET, old), VERSION, V1, published_by="tester")

    # The deploy with new code: its BucketDeployment, then the carry-over the new Model waits for.
    deploy_reference_models(s3, BUCKET, new, new_code / "model_artifacts")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    properties = {**_carry_over_resource(after)[1]["Properties"], "Bucket": BUCKET}
    answer = on_event({"RequestType": "Update", "ResourceProperties": properties}, None)
    assert answer == {"PhysicalResourceId": f"carry-over:{BUCKET}", "Data": {"Carried": "1"}}

    carried = s3.get_object(Bucket=BUCKET, Key=f"{new}{VERSION}.tar.gz")["Body"].read()
    members = read_members(carried)
    new_code_files = code_files(new_code / "inference")
    assert {k: v for k, v in members.items() if k.startswith("code/")} == new_code_files
    assert {k: v for k, v in members.items() if not k.startswith("code/")} == {
        k: v for k, v in read_members(V1).items() if not k.startswith("code/")
    }
    archive = tmp_path / f"{VERSION}.tar.gz"
    archive.write_bytes(carried)
    assert check_scores(archive, INFERENCE_DIR / "samples", tmp_path / "check")  # loads and scores with the new code
    record = Record.from_json(s3.get_object(Bucket=BUCKET, Key=f"published/{VERSION}.json")["Body"].read())
    assert (record.archive, record.carried_from, record.code_sha256) == (
        f"{new}{VERSION}.tar.gz",
        f"{old}{VERSION}.tar.gz",
        digest(new_code_files),
    )
    listed = {v.name: v for v in versions(S3Store(s3, BUCKET, new))}
    assert listed[VERSION].origin == "published"
    # Still there at the old prefix: the old Model, until replaced, keeps answering it.
    assert f"{VERSION}.tar.gz" in S3Store(s3, BUCKET, old).archives()

    # A version published under the new code, then the deploy rolled back: CloudFormation updates the resource
    # back to the old properties (same physical id), which carries that version back to the old code and points
    # every record at the archive the old Model reads.
    publish(S3Store(s3, BUCKET, new), "late", V1, published_by="tester", inference_dir=new_code / "inference")
    old_properties = {**_carry_over_resource(before)[1]["Properties"], "Bucket": BUCKET}
    event = {
        "RequestType": "Update",
        "ResourceProperties": old_properties,
        "PhysicalResourceId": answer["PhysicalResourceId"],
    }
    assert on_event(event, None)["PhysicalResourceId"] == answer["PhysicalResourceId"]
    back = read_members(s3.get_object(Bucket=BUCKET, Key=f"{old}late.tar.gz")["Body"].read())
    assert {k: v for k, v in back.items() if k.startswith("code/")} == code_files(INFERENCE_DIR)
    records = S3Store(s3, BUCKET, old).records()
    assert {name: r.archive for name, r in records.items()} == {
        VERSION: f"{old}{VERSION}.tar.gz",
        "late": f"{old}late.tar.gz",
    }
    assert records[VERSION].code_sha256 == digest(code_files(INFERENCE_DIR))
    assert {v.origin for v in versions(S3Store(s3, BUCKET, old)) if v.name in records} == {"published"}


def test_a_record_whose_archive_is_gone_is_skipped_not_fatal(s3: Any) -> None:
    deploy_reference_models(s3, BUCKET, "models/a/")
    publish(S3Store(s3, BUCKET, "models/a/"), VERSION, V1, published_by="tester")
    publish(S3Store(s3, BUCKET, "models/a/"), "other", V1, published_by="tester")
    s3.delete_object(Bucket=BUCKET, Key="models/a/other.tar.gz")
    deploy_reference_models(s3, BUCKET, "models/b/")
    assert carry_over(s3, BUCKET, "models/b/") == [VERSION]


def test_carrying_twice_writes_nothing_the_second_time(s3: Any) -> None:
    deploy_reference_models(s3, BUCKET, "models/a/")
    publish(S3Store(s3, BUCKET, "models/a/"), VERSION, V1, published_by="tester")
    deploy_reference_models(s3, BUCKET, "models/b/")
    assert carry_over(s3, BUCKET, "models/b/") == [VERSION]
    assert carry_over(s3, BUCKET, "models/b/") == []


def test_deleting_the_custom_resource_deletes_nothing(s3: Any, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy_reference_models(s3, BUCKET, "models/a/")
    publish(S3Store(s3, BUCKET, "models/a/"), VERSION, V1, published_by="tester")
    before = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    event = {
        "RequestType": "Delete",
        "PhysicalResourceId": "carry-over:x",
        "ResourceProperties": {"Bucket": BUCKET, "Prefix": "models/a/"},
    }
    assert on_event(event, None) == {"PhysicalResourceId": "carry-over:x"}
    assert sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]) == before


def test_the_function_s_files_import_with_the_standard_library_alone(tmp_path: Path) -> None:
    for name in HANDLER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).resolve().parents[2] / name, tmp_path / name)
    check = "import sys; sys.path.insert(0, sys.argv[1]); import ops.carry_over as m; print(m.__file__)"
    result = subprocess.run(  # -S: no site-packages, so only the function's files and the standard library
        [sys.executable, "-S", "-c", check, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path))
