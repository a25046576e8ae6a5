"""``creative-scoring transform``: the result on stdout, exit codes, one-line messages, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from creative_scoring.paths import ROOT
from local_endpoint.transform.cli import run_cli
from tests.local_endpoint.conftest import write_test_archive
from tests.local_endpoint.transform.conftest import JSONLINES, MALFORMED, MODEL, write_lines
from training.dataset import generate


class LineReader:
    """A child process's text stream, read in a thread, so a test can wait for a line without a sleep."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once a line containing ``text`` was read; False at the end of the stream or after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or any(text in line for line in self.lines), timeout)
            return any(text in line for line in self.lines)

    def text(self) -> str:
        """Everything read, once the stream has ended."""
        self._thread.join(timeout=30)
        return "".join(self.lines)


def test_ctrl_c_twice_while_the_model_is_busy_ends_the_cli_without_a_traceback(tmp_path: Path) -> None:
    models = tmp_path / "models"
    started, release = tmp_path / "predicting", tmp_path / "release"
    busy = f"""
    import os
    open({str(started)!r}, "w").close()
    while not os.path.exists({str(release)!r}):  # created when the test ends: busy for as long as the CLI runs
        time.sleep(0.05)
    """
    write_test_archive(models, "busy", predict_fn_body=busy)
    write_lines(tmp_path / "in" / "part.jsonl", generate(3, seed=1).creatives)
    command = [sys.executable, "-m", "creative_scoring", "transform", "--model", "busy", "--models-dir", str(models)]
    command += ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--no-progress"]
    cli = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert cli.stderr is not None
    stderr = LineReader(cli.stderr)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and cli.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started.exists(), f"the model never started predicting: {stderr.lines}"

        cli.send_signal(signal.SIGINT)
        assert stderr.wait_for("interrupted: finished inputs are checkpointed", timeout=30), stderr.lines
        assert cli.poll() is None  # the model is still busy, and the interpreter waits for its thread
        cli.send_signal(signal.SIGINT)
        returncode = cli.wait(timeout=30)
    finally:
        release.touch()
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    assert returncode == -signal.SIGINT  # the second Ctrl-C, not the model finishing, ended it (the shell shows 130)
    assert "Traceback" not in stderr.text()


def test_cli_prints_the_result_and_exits_1_when_a_file_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    creatives = generate(20, seed=2).creatives
    write_lines(tmp_path / "in" / "good.jsonl", creatives[:10])
    write_lines(tmp_path / "in" / "bad.jsonl", creatives[10:], replace={4: MALFORMED})
    args = ["--model", MODEL, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    args += ["--split-type", "Line", "--accept", JSONLINES, "--assemble-with", "Line", "--no-progress"]

    assert run_cli(args) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["files"] == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    assert printed["failures"][0]["first_error"]["line"] == 4

    assert run_cli([*args, "--input", str(tmp_path / "in" / "good.jsonl"), "--output", str(tmp_path / "one")]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "Completed"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "no-such-model"], "model (--model) 'no-such-model': no such archive"),
        (["--split-type", "RecordIO"], "--split-type (SplitType) = 'RecordIO'"),
        (["--batch-strategy", "MultiRecord"], "needs --split-type 'Line'"),
        (["--max-payload-mb", "six"], "invalid int value"),
        (["--env", "NO_EQUALS"], "write KEY=VALUE"),
        (["--input", "/no/such/folder"], "does not exist"),
    ],
)
def test_cli_errors_are_messages_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    write_lines(tmp_path / "in" / "a.jsonl", generate(2, seed=2).creatives)
    args = ["--model", MODEL, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--no-progress"]

    assert run_cli([*args, *extra]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr
    assert "Traceback" not in stderr


def test_cli_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--help"]) == 0
    printed = capsys.readouterr().out
    assert all(option in printed for option in ("--batch-strategy", "--s3-endpoint-url", "MaxPayloadInMB", "exit"))


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3://no-such-bucket/scored", "output (--output) s3://no-such-bucket/scored: cannot write there: the bucket"),
        ("file/scored", "cannot write there: [Errno 20] Not a directory"),
    ],
)
def test_an_output_that_cannot_be_written_stops_the_job_before_the_model_runs(
    tmp_path: Path, s3_url: str, s3: Any, capsys: pytest.CaptureFixture[str], location: str, message: str
) -> None:
    write_lines(tmp_path / "in" / "a.jsonl", generate(2, seed=2).creatives)
    (tmp_path / "file").write_text("")
    output = location if location.startswith("s3://") else str(tmp_path / location)
    args = ["--model", MODEL, "--input", str(tmp_path / "in"), "--output", output, "--s3-endpoint-url", s3_url]

    assert run_cli([*args, "--split-type", "Line", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err.count("\n")) == ("", 1)
    assert message in captured.err


def test_an_s3_model_that_cannot_be_downloaded_names_the_fix(
    tmp_path: Path, s3_url: str, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.create_bucket(Bucket="models-here")
    write_lines(tmp_path / "in" / "a.jsonl", generate(2, seed=2).creatives)
    args = ["--model", "s3://models-here/missing.tar.gz", "--s3-endpoint-url", s3_url, "--no-progress"]

    assert run_cli([*args, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert "could not download it" in stderr
    assert "check the URI, --s3-endpoint-url and AWS credentials" in stderr
