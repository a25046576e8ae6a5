"""A job killed with SIGKILL, again and again, resumes and ends with each output once, as an uninterrupted run's.

SIGKILL writes no checkpoint and runs no ``finally``: what is left is what the killed run had renamed into place,
the checkpoint it last flushed, and any temporary file of a write it was killed in the middle of.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from creative_scoring.paths import ROOT
from local_endpoint.transform.checkpoint import CHECKPOINT
from local_endpoint.transform.storage import FolderStorage
from tests.local_endpoint.conftest import write_test_archive
from tests.local_endpoint.transform.conftest import JSONLINES, outputs, write_lines
from training.dataset import generate

INPUTS = 20
RECORDS_PER_INPUT = 50
# each input is one MultiRecord request; the pause sets the job's pace (seconds, whatever the CPU) so that it is
# killed part-way through, and lasts longer than the checkpoint's first flush (CHECKPOINT_INTERVAL_S)
PACED_PREDICT = "time.sleep(0.2)"
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")

# `python -m creative_scoring`, its write of the output named $HANG_ON stopped between the temporary file and the
# rename, until the test kills it: the window a SIGKILL leaves a temporary file in
HANG_IN_THE_WRITE = """
import os, runpy, sys, time
from pathlib import Path

replace = os.replace

def replace_or_hang(source, target, *args, **kwargs):
    if Path(target).name == os.environ["HANG_ON"]:
        Path(os.environ["HANG_MARKER"]).touch()
        time.sleep(600)
    return replace(source, target, *args, **kwargs)

os.replace = replace_or_hang
sys.argv = ["creative_scoring", *sys.argv[1:]]
runpy.run_module("creative_scoring", run_name="__main__", alter_sys=True)
"""


class Cli:
    """``creative-scoring transform`` in its own session (SIGKILL goes to all of it); output kept in files."""

    def __init__(self, tmp_path: Path, name: str, args: list[str], hang_on: str | None = None) -> None:
        self.stdout, self.stderr = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
        self.marker = tmp_path / f"{name}.hanging"
        env = dict(os.environ)
        command = [sys.executable, "-m", "creative_scoring", "transform", *args]
        if hang_on is not None:
            command[1:3] = ["-c", HANG_IN_THE_WRITE]
            env.update(HANG_ON=hang_on, HANG_MARKER=str(self.marker))
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the CLI ended ({self.process.returncode}) before {what}: {self.err()}"
            assert time.monotonic() < deadline, f"no {what} after {timeout}s: {self.err()}"
            time.sleep(0.02)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL, self.err()  # killed, not finished first

    def finish(self) -> dict[str, Any]:
        assert self.process.wait(timeout=120) == 0, self.err()
        result: dict[str, Any] = json.loads(self.stdout.read_text())
        return result

    def resumed(self) -> int:
        """How many inputs the run skipped as finished, from its note on stderr (0 without one)."""
        found = re.search(r"resumed: (\d+) of \d+ inputs", self.err())
        return int(found.group(1)) if found else 0

    def err(self) -> str:
        return self.stderr.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def test_a_job_killed_three_times_resumes_and_ends_with_each_output_once_as_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    models, out = tmp_path / "models", tmp_path / "out"
    write_test_archive(models, "paced", predict_fn_body=PACED_PREDICT)
    creatives = generate(INPUTS * RECORDS_PER_INPUT, seed=23).creatives
    names = [f"part-{i:02d}.jsonl" for i in range(INPUTS)]
    for i, name in enumerate(names):
        write_lines(tmp_path / "in" / name, creatives[i * RECORDS_PER_INPUT : (i + 1) * RECORDS_PER_INPUT])
    args = ["--model", "paced", "--models-dir", str(models), "--input", str(tmp_path / "in")]
    args += ["--split-type", "Line", "--batch-strategy", "MultiRecord", "--accept", JSONLINES]
    args += ["--assemble-with", "Line"]  # with progress: its "resumed" note on stderr

    def done() -> set[str]:
        return {n for n in names if (out / f"{n}.out").is_file()}

    def recorded() -> set[str]:
        """The inputs the checkpoint lists as finished (whose output is there: those a rerun skips)."""
        if not (out / CHECKPOINT).is_file():
            return set()
        return set(json.loads((out / CHECKPOINT).read_text())["finished"]) & done()

    def temporary_files() -> list[str]:
        return [p.name for p in out.rglob("*") if TEMPORARY.fullmatch(p.name)]

    runs: list[Cli] = []

    def start(name: str, hang_on: str | None = None) -> Cli:
        runs.append(Cli(tmp_path, name, [*args, "--output", str(out)], hang_on))
        return runs[-1]

    reference = Cli(tmp_path, "reference", [*args, "--output", str(tmp_path / "reference")])  # meanwhile
    runs.append(reference)
    try:
        # 1: killed once the checkpoint lists some inputs (others finished since are not in it: they are redone)
        first = start("first")
        first.wait_until(lambda: len(recorded()) > 0, "checkpoint")
        first.kill()
        assert 0 < len(done()) < INPUTS
        before = recorded()

        # 2: killed in the middle of writing an output, its temporary file written and not yet renamed
        missing = sorted(set(names) - done())
        hang_on = f"{missing[len(missing) // 2]}.out"
        second = start("second", hang_on=hang_on)
        second.wait_until(second.marker.exists, f"write of {hang_on}")
        second.kill()
        assert second.resumed() == len(before) > 0
        assert not (out / hang_on).exists()
        leftovers = [t for t in temporary_files() if t.startswith(f".{hang_on}.")]
        assert leftovers, temporary_files()
        before = recorded()

        # 3: killed once it has written two more outputs; the leftover was removed before it wrote any
        missing = sorted(set(names) - done())
        third = start("third")
        third.wait_until(lambda: len(set(missing) & done()) >= 2, "two new outputs")
        third.kill()
        assert third.resumed() == len(before)
        assert not [t for t in leftovers if (out / t).exists()]
        assert len(done()) < INPUTS
        before = recorded()

        final = start("final").finish()
        expected = reference.finish()
    finally:
        for run in runs:
            run.stop()

    assert expected["files"] == {"total": INPUTS, "succeeded": INPUTS, "failed": 0, "skipped": 0}
    assert final["status"] == "Completed"
    assert final["files"]["skipped"] == len(before) > 0  # the inputs the checkpoint had recorded, and only them
    assert final["files"]["succeeded"] == INPUTS - len(before)
    assert outputs(out) == outputs(tmp_path / "reference")  # same names, same bytes
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted(
        [CHECKPOINT, *(f"{n}.out" for n in names)]
    )  # one output per input, no temporary file, nothing else
    assert sorted(json.loads((out / CHECKPOINT).read_text())["finished"]) == names


def test_prepare_removes_leftover_temporary_files_and_keeps_files_that_only_look_like_them(tmp_path: Path) -> None:
    hexa = uuid.uuid4().hex
    leftovers = [
        f".a.jsonl.out.{hexa}.tmp",
        f"day=1/.b.jsonl.out.{hexa}.tmp",
        f"..transform-checkpoint.json.{hexa}.tmp",
    ]
    kept = [
        "a.jsonl.out",
        f"a.jsonl.out.{hexa}.tmp",  # no leading dot
        ".a.jsonl.out.tmp",  # no random part
        f".a.jsonl.out.{hexa[:-1]}.tmp",  # 31 hex digits
        f".a.jsonl.out.{hexa.upper()}.tmp",  # not uuid4().hex
        f".a.jsonl.out.{hexa}.tmp.json",
        f"day=1/.{hexa}.tmp",  # no name
        f"input.{hexa}.tmp",  # an input that happens to be called so
    ]
    for name in leftovers + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}")
    (tmp_path / f".c.jsonl.out.{hexa}.tmp").mkdir()  # a folder, not a file

    FolderStorage(tmp_path).prepare()

    remaining = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert remaining == sorted(kept)
    assert (tmp_path / f".c.jsonl.out.{hexa}.tmp").is_dir()
