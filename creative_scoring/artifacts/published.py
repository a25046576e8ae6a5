"""The record of a published model version, and carrying a version's model files to other inference code.

Standard library and the archive format only: the deploy's carry-over function (``ops/carry_over.py``, run by
AWS Lambda) imports this module as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

from creative_scoring.artifacts.archive import archive_bytes, read_members

RECORDS = "published/"  # S3: published/NAME.json beside the models/ prefixes; locally the folder ENV/published/
SUFFIX = ".tar.gz"
CODE = "code/"
COMPONENTS = "components/"  # published/components/COMPONENT.json: the version live on an inference component


@dataclass(frozen=True, kw_only=True)
class Record:
    """What the model pipeline knows of a version it published.

    ``archive`` is where the archive is in its store: an S3 key (``models/<code digest>/NAME.tar.gz``) or a file
    name; ``carried_from`` the archive it was repackaged from when the deploy moved it to new inference code.
    """

    name: str
    sha256: str
    size_bytes: int
    code_sha256: str
    archive: str
    source: str
    published_at: str
    published_by: str
    carried_from: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> Record:
        return cls(**json.loads(data))

    def carried(self, archive: str, data: bytes, code_sha256: str) -> Record:
        """This record after its archive was repackaged as ``data`` at ``archive`` with other code."""
        return replace(
            self,
            archive=archive,
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            code_sha256=code_sha256,
            carried_from=self.archive,
        )


def pin_key(component: str) -> str:
    """The S3 key (under the bucket) of the record of the version live on inference component ``component``."""
    return f"{RECORDS}{COMPONENTS}{component}.json"


def archive_attribute(component: str) -> str:
    """The carry-over resource's attribute with the archive key of ``component``, e.g.
    ``CreativeScoringProdCreativeScorerV1Archive1a2b3c4d``: letters and digits only, and a digest of the exact name,
    so that names differing only in punctuation (``scorer-2``, ``scorer2``) never share one."""
    camel = "".join(part.capitalize() for part in component.replace(".", "-").split("-"))
    return f"{camel}Archive{hashlib.sha256(component.encode()).hexdigest()[:8]}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def code_of(archive: bytes) -> dict[str, bytes]:
    """The handler code members (``code/...``) of an archive."""
    return {name: data for name, data in read_members(archive).items() if name.startswith(CODE)}


def repackage(archive: bytes, code: Mapping[str, bytes]) -> bytes:
    """``archive``'s model files with ``code`` in place of its own ``code/``: the archive a publish of the same
    model files with that code gives, byte for byte."""
    model = {name: data for name, data in read_members(archive).items() if not name.startswith(CODE)}
    return archive_bytes({**model, **code})
