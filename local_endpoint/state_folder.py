"""One local endpoint at a time owns a state folder: its async queue, notifications and local S3 data."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = "lock"


class StateFolderInUse(RuntimeError):
    """Another process owns the state folder; the message names it."""


@contextmanager
def owned(folder: Path) -> Iterator[Path]:
    """Own ``folder`` (created if missing) until the block ends; raises `StateFolderInUse` when another process does.

    An exclusive ``flock``: the kernel releases it when the owner exits, SIGKILL included, so a killed endpoint
    never blocks the next start. Two endpoints on one folder would run the same queue twice.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise StateFolderInUse(
                f"the state folder {folder} is in use by {holder}: stop that local endpoint, or give this one its "
                "own --state-dir"
            ) from None
        lock.truncate(0)
        lock.write(f"process {os.getpid()}\n")
        lock.flush()
        yield folder
