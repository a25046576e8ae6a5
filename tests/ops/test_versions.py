"""Model versions: publish, list and retire on a real S3 API (moto's server) and on the local endpoint's folders.

Every refused publish is checked to leave nothing behind in the store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import signal
import tarfile
from pathlib import Path
from typing import Any

import pytest

from creative_scoring.artifacts.archive import read_manifest, read_members, safe_extract
from creative_scoring.artifacts.versions import VersionError
from creative_scoring.paths import INFERENCE_DIR, MODEL_ARTIFACTS
from ops import deployment
from ops.aws import AwsCallError
from ops.versions import FolderStore, S3Store, VersionStore, publish, retire, versions
from tests.ops.conftest import BUCKET, PREFIX, moto_client

V1 = MODEL_ARTIFACTS / "creative-scorer-v1.tar.gz"
REFERENCE = {m["name"]: m for m in read_manifest(MODEL_ARTIFACTS)}


@pytest.fixture(params=["s3", "folder"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VersionStore:
    if request.param == "s3":
        return S3Store(request.getfixturevalue("s3"), BUCKET, PREFIX)
    return FolderStore(MODEL_ARTIFACTS, tmp_path / "state")


def stored(store: VersionStore) -> tuple[set[str], set[str]]:
    """The archives and the records in ``store``."""
    return set(store.archives()), set(store.records())


def test_publishing_the_reference_weights_gives_the_reference_archive_byte_for_byte(store: VersionStore) -> None:
    published = publish(store, "creative-scorer-v1-1", V1, published_by="tester")
    assert published.record.sha256 == REFERENCE["creative-scorer-v1"]["sha256"]
    assert published.record.code_sha256 == REFERENCE["creative-scorer-v1"]["code_sha256"]
    assert {s.sample for s in published.samples} == {"creatives.json", "social.jsonl"}
    assert all(0 <= score <= 1 for s in published.samples for score in s.scores)
    assert "creative-scorer-v1-1.tar.gz" in store.archives()
    assert store.records()["creative-scorer-v1-1"].published_by == "tester"


def test_the_stored_object_is_the_record_s_archive(s3: Any) -> None:
    store = S3Store(s3, BUCKET, PREFIX)
    record = publish(store, "creative-scorer-v1-1", V1, published_by="tester").record
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}creative-scorer-v1-1.tar.gz")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == record.sha256
    assert record.archive == f"{PREFIX}creative-scorer-v1-1.tar.gz"
    saved = json.loads(s3.get_object(Bucket=BUCKET, Key="published/creative-scorer-v1-1.json")["Body"].read())
    assert saved["sha256"] == record.sha256


def test_a_model_folder_publishes_as_its_archive_does(tmp_path: Path) -> None:
    folder = safe_extract(V1, tmp_path / "trained")
    shutil.rmtree(folder / "code")  # a trained model folder has no handler code: publish adds the deployed code
    store = FolderStore(MODEL_ARTIFACTS, tmp_path / "state")
    record = publish(store, "from-folder", folder, published_by="tester").record
    assert record.sha256 == REFERENCE["creative-scorer-v1"]["sha256"]


def test_publishing_the_same_version_again_stores_nothing_new(store: VersionStore) -> None:
    first = publish(store, "creative-scorer-v1-1", V1, published_by="tester")
    again = publish(store, "creative-scorer-v1-1", V1, published_by="someone else")
    assert again.already
    assert again.record == first.record


def test_list_names_the_origin_of_every_version(store: VersionStore) -> None:
    publish(store, "creative-scorer-v1-1", V1, published_by="tester")
    found = {v.name: v for v in versions(store)}
    assert {name: v.origin for name, v in found.items()} == {
        "creative-scorer-v1": "reference",
        "creative-scorer-v2": "reference",
        "creative-scorer-social-v1": "reference",
        "creative-scorer-v1-1": "published",
    }
    assert found["creative-scorer-v1-1"].published_by == "tester"
    assert found["creative-scorer-v1-1"].size_bytes == V1.stat().st_size


def test_an_archive_put_there_by_hand_is_listed_as_unrecorded(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}by-hand.tar.gz", Body=V1.read_bytes())
    found = {v.name: v.origin for v in versions(S3Store(s3, BUCKET, PREFIX))}
    assert found["by-hand"] == "unrecorded"


def test_retire_removes_the_archive_and_its_record(store: VersionStore) -> None:
    publish(store, "creative-scorer-v1-1", V1, published_by="tester")
    retired = retire(store, "creative-scorer-v1-1")
    assert retired.origin == "published"
    assert "creative-scorer-v1-1.tar.gz" not in store.archives()
    assert "creative-scorer-v1-1" not in store.records()


def test_retire_refuses_a_reference_model_unless_asked(s3: Any) -> None:
    store = S3Store(s3, BUCKET, PREFIX)
    with pytest.raises(VersionError, match=r"is a reference model of the deploy.*--reference"):
        retire(store, "creative-scorer-v2")
    assert "creative-scorer-v2.tar.gz" in store.archives()
    retire(store, "creative-scorer-v2", reference_too=True)
    assert "creative-scorer-v2.tar.gz" not in store.archives()


def test_retiring_an_unknown_version_names_the_list_command(store: VersionStore) -> None:
    with pytest.raises(VersionError, match=r"no version 'nope'.*models list"):
        retire(store, "nope")


def _tar(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


def _broken_weights() -> bytes:
    members = read_members(V1)
    return _tar({**members, "model.safetensors": b"not safetensors"})


BAD_SOURCES = {
    "not-an-archive": (b"plain text, not gzip", "is not a gzipped tar model archive"),
    "escapes-the-folder": (_tar({"../evil.json": b"{}", "model.json": b"{}"}), "would be written outside"),
    "holds-a-link": (_tar({"model.json": b"{}"}, link="model.safetensors"), "is a link or special file"),
    "only-code": (_tar({"code/inference.py": b"pass\n"}), "holds no model files"),
    "does-not-load": (_broken_weights(), "does not load through model_fn"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_bad_model_is_refused_naming_the_problem_and_nothing_is_stored(
    store: VersionStore, tmp_path: Path, case: str
) -> None:
    data, message = BAD_SOURCES[case]
    source = tmp_path / f"{case}.tar.gz"
    source.write_bytes(data)
    before = stored(store)
    with pytest.raises(VersionError, match=message):
        publish(store, "candidate", source, published_by="tester")
    assert stored(store) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Creative_Scorer", "is not allowed"),
        ("-leading-dash", "is not allowed"),
        ("a" * 101, "is not allowed"),
        ("creative-scorer-v2", "is a reference model of the deploy"),
    ],
)
def test_a_bad_name_is_refused_and_nothing_is_stored(store: VersionStore, name: str, message: str) -> None:
    before = stored(store)
    with pytest.raises(VersionError, match=message):
        publish(store, name, V1, published_by="tester")
    assert stored(store) == before


def test_a_taken_name_with_other_contents_is_never_overwritten(store: VersionStore) -> None:
    publish(store, "candidate", V1, published_by="tester")
    with pytest.raises(VersionError, match=r"already exists .* with other contents.*candidate-2"):
        publish(store, "candidate", MODEL_ARTIFACTS / "creative-scorer-v2.tar.gz", published_by="tester")
    assert store.records()["candidate"].sha256 == REFERENCE["creative-scorer-v1"]["sha256"]


def test_code_other_than_the_deployed_code_is_refused(store: VersionStore, tmp_path: Path) -> None:
    changed = tmp_path / "inference"
    shutil.copytree(INFERENCE_DIR, changed)
    with (changed / "inference.py").open("a") as handler:
        handler.write("\n# not deployed yet\n")
    before = stored(store)
    with pytest.raises(VersionError, match=r"is not the deployed code.*cdk deploy"):
        publish(store, "candidate", V1, published_by="tester", inference_dir=changed)
    assert stored(store) == before


def test_an_upload_interrupted_by_ctrl_c_leaves_nothing_behind(s3: Any) -> None:
    store = S3Store(s3, BUCKET, PREFIX)
    before = stored(store)

    def interrupt(sent: int) -> None:  # a real SIGINT, while the bytes are being sent
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises((KeyboardInterrupt, AwsCallError)):
        publish(store, "candidate", V1, published_by="tester", progress=interrupt)
    assert stored(store) == before


def test_a_missing_bucket_is_an_aws_error_naming_its_code(s3: Any) -> None:
    store = S3Store(s3, "no-such-bucket-here", PREFIX)
    with pytest.raises(AwsCallError, match="NoSuchBucket"):
        publish(store, "candidate", V1, published_by="tester")


def _stack(moto_url: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = moto_client(moto_url, "cloudformation")
    cloudformation.create_stack(StackName="CreativeScoring-dev", TemplateBody=json.dumps(template))


def test_the_deployed_store_is_found_from_the_stack_outputs(s3: Any, moto_url: str) -> None:
    _stack(moto_url, {"ModelBucket": BUCKET, "ModelDataPrefix": f"s3://{BUCKET}/{PREFIX}"})
    try:
        found = deployment.in_aws(
            "dev", region=None, client_factory=lambda service, region: moto_client(moto_url, service, region)
        )
        assert found.store.where == f"s3://{BUCKET}/{PREFIX}"
        assert found.published_by.startswith("arn:aws:")
        assert found.multi_model_endpoint(None).name == "creative-scoring-dev"
        assert {v.origin for v in versions(found.store)} == {"reference"}
        found.check_not_deploying()  # CREATE_COMPLETE
        deploying = dataclasses.replace(found, stack_status="UPDATE_IN_PROGRESS")
        with pytest.raises(deployment.DeploymentError, match="is UPDATE_IN_PROGRESS: publish once the deploy"):
            deploying.check_not_deploying()
    finally:
        moto_client(moto_url, "cloudformation").delete_stack(StackName="CreativeScoring-dev")


def test_a_missing_stack_is_an_aws_error_naming_it(moto_url: str) -> None:
    with pytest.raises(AwsCallError, match="CreativeScoring-prod"):
        deployment.in_aws(
            "prod", region=None, client_factory=lambda service, region: moto_client(moto_url, service, region)
        )
