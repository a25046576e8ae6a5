"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")  # the names write_atomically gives its temporary files


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path`` (creating its folder).

    A process killed between the two leaves the temporary file, ``.NAME.<32 hex digits>.tmp``:
    `remove_temporary_files` removes such leftovers.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_temporary_files(folder: Path) -> list[Path]:
    """Remove the temporary files of `write_atomically` under ``folder`` (and its subfolders); returns them.

    Only files named as it names them go, nothing else. Call it when no other process writes there: a write in
    progress would lose its temporary file and fail.
    """
    removed = []
    for path in folder.rglob("*.tmp"):
        if _TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
