"""Shared setup of the local batch transform tests: JSON Lines jobs and files, and S3 (moto's server)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_endpoint.s3 import s3_client
from local_endpoint.transform import TransformJob

MODEL = "creative-scorer-v1"
JSONLINES = "application/jsonlines"
MALFORMED = '{"creative_id": "broken", "headline": '


def lines_job(tmp_path: Path, out: str = "out", **settings: Any) -> TransformJob:
    """JSON Lines in and out, one prediction per line: the usual batch job of this project."""
    defaults: dict[str, Any] = {
        "model": MODEL,
        "input": str(tmp_path / "in"),
        "output": str(tmp_path / out),
        "content_type": JSONLINES,
        "accept": JSONLINES,
        "split_type": "Line",
        "batch_strategy": "MultiRecord",
        "assemble_with": "Line",
        "workdir": tmp_path / "work",
    }
    return TransformJob(**{**defaults, **settings})


def write_lines(path: Path, creatives: list[dict[str, Any]], replace: dict[int, str] | None = None) -> Path:
    """One creative per line; ``replace`` maps 1-based line numbers to raw text put there instead."""
    lines = [json.dumps(c) for c in creatives]
    for number, text in (replace or {}).items():
        lines[number - 1] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.out"))}


@pytest.fixture
def s3(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_client(s3_url)


@pytest.fixture(autouse=True)
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, here and in the CLIs started from here, even when the test run itself
    started with SIGINT ignored (as a shell's ``&`` without job control starts it): an ignored signal stays
    ignored across exec, a handled one does not."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
