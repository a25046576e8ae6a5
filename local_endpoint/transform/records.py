"""Records: an input object cut into mini-batches (SplitType, BatchStrategy, MaxPayloadInMB), the answers put
back together (AssembleWith), and the input line a failed mini-batch's message points at."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from local_endpoint.transform.job import TransformJob

_INSTANCE_INDEX = re.compile(r"\binstances\[(\d+)\]")
_PAYLOAD_LINE = re.compile(r"\bline (\d+)\b")


@dataclass(frozen=True)
class Batch:
    """A request body's records: input lines (SplitType Line) or the whole object (SplitType None)."""

    parts: tuple[bytes, ...]
    lines: tuple[int, ...] = ()  # 1-based input line of each part; empty for SplitType None

    @property
    def records(self) -> int:
        return len(self.parts)

    def body(self) -> bytes:
        return b"".join(p + b"\n" for p in self.parts) if self.lines else self.parts[0]


def split_records(data: bytes, job: TransformJob) -> list[Batch]:
    """The mini-batches of one input object, in input order (SplitType Line skips blank lines)."""
    if job.split_type == "None":
        return [Batch((data,))]
    records = [(number, line) for number, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    if job.strategy == "SingleRecord":
        return [Batch((line,), (number,)) for number, line in records]
    batches: list[Batch] = []
    parts: list[bytes] = []
    lines: list[int] = []
    size = 0
    for number, line in records:
        if parts and size + len(line) + 1 > job.max_payload_bytes:
            batches.append(Batch(tuple(parts), tuple(lines)))
            parts, lines, size = [], [], 0
        parts.append(line)
        lines.append(number)
        size += len(line) + 1
    if parts:
        batches.append(Batch(tuple(parts), tuple(lines)))
    return batches


def assemble(bodies: Sequence[bytes], assemble_with: str) -> bytes:
    """AssembleWith None: the responses back to back; Line: each ends with a newline (added when missing)."""
    if assemble_with == "Line":
        return b"".join(body if body.endswith(b"\n") else body + b"\n" for body in bodies)
    return b"".join(bodies)


def culprit(batch: Batch, message: str) -> int | None:
    """The input line a failed mini-batch's message points at: ``instances[i]`` or ``line n`` of the payload."""
    if not batch.lines:
        return None
    if len(batch.lines) == 1:
        return batch.lines[0]
    if (match := _INSTANCE_INDEX.search(message)) and int(match.group(1)) < len(batch.lines):
        return batch.lines[int(match.group(1))]
    if (match := _PAYLOAD_LINE.search(message)) and 0 < int(match.group(1)) <= len(batch.lines):
        return batch.lines[int(match.group(1)) - 1]
    return None
