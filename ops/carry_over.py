"""Carry every published model version to the inference code of a deploy, before its Model takes traffic.

A change of inference code gives the multi-model Model a new prefix, ``models/<new code digest>/``, which the deploy
fills with the reference archives only. This function, run by a CloudFormation custom resource that the Model
depends on, writes there every version recorded under ``published/``: the version's model files with the new
code (taken from a reference archive of the new prefix, so exactly the deployed code), packaged as a publish
would. So a ``TargetModel`` that answered before the deploy answers after it. The same happens in reverse
when CloudFormation rolls the deploy back: the custom resource is updated back to the old prefix.

For each inference component it also answers the archive the component's Model is to read: the version put live
on the component (its record under ``published/components/``), or else the component's reference archive.

It needs only the standard library, boto3 and ``creative_scoring.artifacts`` (no handler code is run: the new
code is checked by ``creative-scoring smoke`` after the deploy).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from creative_scoring.artifacts.archive import MANIFEST, digest
from creative_scoring.artifacts.published import (
    RECORDS,
    SUFFIX,
    Record,
    code_of,
    pin_key,
    repackage,
)

log = logging.getLogger(__name__)


def carry_over(s3: Any, bucket: str, prefix: str) -> list[str]:
    """Write each published version missing under ``prefix`` there, with ``prefix``'s code; return their names.

    A version already under ``prefix`` (carried there before, or published there) is kept, and its record is
    pointed back at it: after a rollback to ``prefix``, the records describe the archives the Model reads. A
    version whose record or archive cannot be read is logged and skipped, so one broken record does not block
    every deploy.
    """
    code = _deployed_code(s3, bucket, prefix)
    code_sha256 = digest(code)
    present = set(_keys(s3, bucket, prefix))
    carried = []
    for key in _keys(s3, bucket, RECORDS):
        if not key.endswith(".json"):
            continue
        try:
            record = Record.from_json(_read(s3, bucket, key))
            target = f"{prefix}{record.name}{SUFFIX}"
            if target in present:
                if record.archive != target:  # back on a prefix it was carried from, or to
                    data = _read(s3, bucket, target)
                    _write_record(s3, bucket, key, record.carried(target, data, digest(code_of(data))))
                continue
            data = repackage(_read(s3, bucket, record.archive), code)
        except (s3.exceptions.ClientError, ValueError, KeyError, TypeError) as e:
            log.error("skipped %s: %s", key, e)
            continue
        metadata = {"origin": "published", "carried-from": record.archive, "code-sha256": code_sha256}
        s3.put_object(Bucket=bucket, Key=target, Body=data, Metadata=metadata)
        _write_record(s3, bucket, key, record.carried(target, data, code_sha256))
        log.info("carried %s from %s to %s", record.name, record.archive, target)
        carried.append(record.name)
    return carried


def _write_record(s3: Any, bucket: str, key: str, record: Record) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=record.to_json())


def component_archives(s3: Any, bucket: str, prefix: str, components: dict[str, dict[str, str]]) -> dict[str, str]:
    """The archive key each component's Model reads, by the component's ``Attribute``."""
    answers = {}
    for component, settings in components.items():
        pinned = _pinned_version(s3, bucket, component)
        archive = f"{pinned}{SUFFIX}" if pinned else settings["Archive"]
        answers[settings["Attribute"]] = f"{prefix}{archive}"
    return answers


def _pinned_version(s3: Any, bucket: str, component: str) -> str | None:
    try:
        pin = json.loads(_read(s3, bucket, pin_key(component)))
    except s3.exceptions.NoSuchKey:
        return None
    return str(pin["version"])


def _deployed_code(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    models = json.loads(_read(s3, bucket, f"{prefix}{MANIFEST}"))["models"]
    if not models:
        raise ValueError(f"s3://{bucket}/{prefix}{MANIFEST} lists no reference model to take the code from")
    return code_of(_read(s3, bucket, f"{prefix}{models[0]['archive']}"))


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The custom resource's handler (CDK Provider framework): Create and Update carry, Delete keeps everything."""
    import boto3

    properties = event["ResourceProperties"]
    # One id for the resource's whole life: a new id would make CloudFormation treat a code change as a
    # replacement, and roll it back by deleting the new resource instead of updating back to the old prefix.
    physical_id = f"carry-over:{properties['Bucket']}"
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    s3 = boto3.client("s3")
    bucket, prefix = properties["Bucket"], properties["Prefix"]
    carried = carry_over(s3, bucket, prefix)
    archives = component_archives(s3, bucket, prefix, properties.get("Components", {}))
    # The response is limited to 4 KB: a count, not the names (they are in the function's log).
    return {"PhysicalResourceId": physical_id, "Data": {"Carried": str(len(carried)), **archives}}
