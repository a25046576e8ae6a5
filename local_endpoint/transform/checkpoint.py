"""The finished inputs of a job, kept in its output location, so that a rerun skips them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from local_endpoint.transform.storage import Storage, StoredObject

CHECKPOINT = ".transform-checkpoint.json"
CHECKPOINT_FORMAT = "local-batch-transform-checkpoint/1"
CHECKPOINT_INTERVAL_S = 2.0


class Checkpoint:
    """Finished inputs (size and ETag) of a job with these settings, kept in the output location.

    Written atomically at most every `CHECKPOINT_INTERVAL_S` seconds while the job runs, and at its end,
    interruption included. An input whose ``.out`` was written just before a hard kill is redone: its
    output is the same.
    """

    def __init__(self, store: Storage, settings: Mapping[str, Any]) -> None:
        self.store = store
        self.settings = dict(settings)
        self.finished: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._dirty = False
        self._flushed_at = time.monotonic()

    def load(self) -> str | None:
        """Read the previous run's checkpoint; returns a note when it was set aside."""
        if not self.store.exists(CHECKPOINT):
            return None
        try:
            data = json.loads(self.store.read(CHECKPOINT))
            finished = data["finished"]
            same = data.get("format") == CHECKPOINT_FORMAT and data.get("settings") == self.settings
        except (ValueError, KeyError, TypeError):
            return f"the checkpoint {self.store.describe(CHECKPOINT)} is unreadable: every input is redone"
        if not same:
            return "the job's settings or model differ from the checkpoint's: every input is redone"
        self.finished = {str(k): dict(v) for k, v in finished.items()}
        return None

    def is_done(self, obj: StoredObject) -> bool:
        entry = self.finished.get(obj.key)
        return entry is not None and entry.get("size") == obj.size and entry.get("etag") == obj.etag

    def mark(self, obj: StoredObject, records: int) -> None:
        with self._lock:
            self.finished[obj.key] = {"size": obj.size, "etag": obj.etag, "records": records}
            self._dirty = True

    def forget(self, key: str) -> None:
        with self._lock:
            if self.finished.pop(key, None) is not None:
                self._dirty = True

    def due(self) -> bool:
        return self._dirty and time.monotonic() - self._flushed_at >= CHECKPOINT_INTERVAL_S

    def flush(self) -> None:
        """Write the checkpoint if it changed; concurrent flushes write in turn, the last one the newest."""
        with self._lock:
            if not self._dirty:
                return
            body = {"format": CHECKPOINT_FORMAT, "settings": self.settings, "finished": self.finished}
            self.store.write(CHECKPOINT, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
            self._dirty = False
            self._flushed_at = time.monotonic()
