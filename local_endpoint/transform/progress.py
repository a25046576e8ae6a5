"""Records done of the total, and records per second, on stderr: a live line drawn by ``rich.progress``."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as Display

LOG_INTERVAL_S = 10.0  # where the stream is not a terminal (a log file), the line is printed this often


class Progress:
    """The progress of a job: live on a terminal; elsewhere every `LOG_INTERVAL_S` and at the end.

    The total is exact once every input has been read; until then the unread inputs are estimated from
    their size at the bytes per record seen so far (shown with ``~``).
    """

    def __init__(self, enabled: bool, files: int, total_bytes: int, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.files, self.files_done, self.files_failed = files, 0, 0
        self.unread_bytes, self.read_bytes, self.known_records = total_bytes, 0, 0
        self.done = self.failed = 0
        self.started = self._logged_at = time.perf_counter()
        stream = stream or sys.stderr
        width = None if stream.isatty() else 200  # a log line is not cut at 80 characters
        self.console = Console(file=stream, highlight=False, width=width)
        self._display = Display(
            TextColumn("{task.description}"), BarColumn(bar_width=20), console=self.console, disable=not enabled
        )
        self._task = self._display.add_task(self.line(), total=None)
        self._display.start()

    def note(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    def input_read(self, size: int, records: int) -> None:
        self.unread_bytes -= size
        self.read_bytes += size
        self.known_records += records
        self._show()

    def advance(self, records: int, *, failed: bool = False) -> None:
        self.done += records
        self.failed += records if failed else 0
        self._show()

    def file_done(self, failed: bool) -> None:
        self.files_done += 1
        self.files_failed += failed
        self._show()

    def total(self) -> tuple[int, bool]:
        """The total records and whether it is exact."""
        if self.unread_bytes <= 0 or self.read_bytes == 0:
            return self.known_records, self.unread_bytes <= 0
        return self.known_records + round(self.unread_bytes * self.known_records / self.read_bytes), False

    def line(self) -> str:
        total, exact = self.total()
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        share = f" ({100 * self.done / total:.0f}%)" if total else ""
        failed = f", {self.files_failed} failed" if self.files_failed else ""
        return (
            f"transform: {self.done:,}/{'' if exact else '~'}{total:,} records{share}, {rate:,.0f} records/s, "
            f"files {self.files_done}/{self.files}{failed}, {elapsed:.0f}s"
        )

    def close(self) -> None:
        """Stop the live line; it stays on a terminal, and is printed once more elsewhere."""
        self._show()
        self._display.stop()

    def _show(self) -> None:
        if not self.enabled:
            return
        total, _ = self.total()
        self._display.update(self._task, description=self.line(), completed=self.done, total=total or None)
        now = time.perf_counter()
        if not self.console.is_terminal and now - self._logged_at >= LOG_INTERVAL_S:
            self._logged_at = now
            self.console.print(self.line())
