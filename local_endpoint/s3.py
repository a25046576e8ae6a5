"""S3 through boto3, for async inference (inputs, answers, failures) and batch transform (locations, models).

Any S3 API works: AWS's, or a local server such as the endpoint's own (``endpoint_url``). Objects are named ``s3://bucket/key``.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

OWNER = "local-endpoint-request"  # user metadata: the token of the (async) request that wrote the object
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def s3_client(endpoint_url: str | None, region: str | None = None, *, max_connections: int = 10) -> Any:
    """A boto3 S3 client of a fresh session; the region defaults to ``AWS_REGION``, ``AWS_DEFAULT_REGION`` or
    us-east-1, credentials come from the usual AWS settings. An S3 other than AWS's (``endpoint_url``) gets
    placeholder credentials when none are configured: a local server takes any."""
    session = boto3.session.Session()
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    placeholder = endpoint_url is not None and session.get_credentials() is None
    credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"} if placeholder else {}
    config = Config(max_pool_connections=max_connections, retries={"mode": "standard", "max_attempts": 3})
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config, **credentials)


def split_location(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix); the prefix may be empty."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def is_not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in NOT_FOUND


class ObjectStore:
    """Objects of one S3 endpoint by ``s3://bucket/key`` URI; an object may carry the token of its owner.

    ``create_buckets``: a write to a missing bucket creates it (async inference owns its bucket, which may have
    been deleted while the server ran, or S3 was down when it started); otherwise the write fails.
    """

    def __init__(
        self,
        endpoint_url: str | None,
        region: str | None = None,
        *,
        max_connections: int = 10,
        create_buckets: bool = False,
    ) -> None:
        self.client = s3_client(endpoint_url, region, max_connections=max_connections)
        self.create_buckets = create_buckets

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        bucket, key = split_location(uri)
        if not uri.startswith("s3://") or not bucket or not key:
            raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
        return bucket, key

    def size(self, uri: str) -> int | None:
        """The object's size in bytes; None when there is no object."""
        head = self._head(uri)
        return None if head is None else int(head["ContentLength"])

    def owner(self, uri: str) -> str | None:
        """The token of the request that wrote ``uri`` ("" if written otherwise); None when there is no object."""
        head = self._head(uri)
        return None if head is None else str(head["Metadata"].get(OWNER, ""))

    def read(self, uri: str) -> bytes:
        bucket, key = self.split(uri)
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def fetch(self, uri: str) -> tuple[bytes, str | None]:
        """The object's bytes and its Content-Type."""
        bucket, key = self.split(uri)
        answer = self.client.get_object(Bucket=bucket, Key=key)
        return answer["Body"].read(), answer.get("ContentType")

    def write(self, uri: str, body: bytes, content_type: str | None = None, owner: str = "") -> None:
        """One PutObject: readers see the previous object or all of ``body``, never part of it."""
        bucket, key = self.split(uri)
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if owner:
            extra["Metadata"] = {OWNER: owner}
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        except ClientError:
            # S3 says NoSuchBucket, SeaweedFS AccessDenied: ask whether the bucket is there
            if not self.create_buckets or self.ensure_bucket(bucket):
                raise
            self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)

    def delete(self, uri: str) -> None:
        """Remove the object if it is there."""
        bucket, key = self.split(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def list(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        """ListObjectsV2's entries (``Key``, ``Size``, ``ETag``...) of every object whose key starts with ``prefix``."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item for page in pages for item in page.get("Contents", [])]

    def ensure_bucket(self, bucket: str) -> bool:
        """Create ``bucket`` unless it exists; returns whether it existed."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as e:
            if not is_not_found(e):
                raise
            self.client.create_bucket(Bucket=bucket)
            return False
        return True

    def require_bucket(self, bucket: str) -> None:
        """Raises `FileNotFoundError` when ``bucket`` does not exist."""
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as e:
            if is_not_found(e):
                raise FileNotFoundError(f"the bucket {bucket!r} does not exist") from e
            raise

    def _head(self, uri: str) -> dict[str, Any] | None:
        bucket, key = self.split(uri)
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if is_not_found(e):
                return None
            raise
        return head
