"""The local batch transform: SageMaker's split, batch, assemble and failure semantics, resume, and S3."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from creative_scoring.paths import ROOT, SAMPLES
from local_endpoint.batch import (
    CHECKPOINT,
    FileResult,
    Progress,
    TransformError,
    TransformJob,
    run_cli,
    run_transform,
    s3_client,
)
from tests.local_endpoint.conftest import write_test_archive
from training.dataset import generate

MODEL = "creative-scorer-v1"
JSONLINES = "application/jsonlines"
MALFORMED = '{"creative_id": "broken", "headline": '
FLAKY_PREDICT = """
global CALLS
CALLS += 1
if CALLS % 2:
    raise scoring_handler.InferenceError(scoring_handler.HTTPStatus.SERVICE_UNAVAILABLE, "busy, try again")
"""


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


def test_100k_lines_in_multi_record_batches_come_back_one_per_input_line_in_order(tmp_path: Path) -> None:
    creatives = generate(100_000, seed=20260).creatives
    write_lines(tmp_path / "in" / "creatives.jsonl", creatives)

    result = run_transform(lines_job(tmp_path, max_payload_mb=2, workers=2))

    predictions = read_predictions(tmp_path / "out" / "creatives.jsonl.out")
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in creatives]
    assert all(0.0 <= p["score"] <= 1.0 and p["model"] == MODEL for p in predictions)
    summary = result.to_dict()
    assert summary["status"] == "Completed"
    assert summary["records"] == {"succeeded": 100_000, "failed": 0, "discarded": 0, "skipped": 0}
    assert 25 <= summary["invocations"] <= 40  # mini-batches of up to 2 MiB, ~530 bytes a creative


def test_single_record_gives_the_same_scores_as_multi_record(tmp_path: Path) -> None:
    write_lines(tmp_path / "in" / "part-1.jsonl", generate(150, seed=3).creatives)

    multi = run_transform(lines_job(tmp_path, "multi"))
    single = run_transform(lines_job(tmp_path, "single", batch_strategy="SingleRecord"))

    singles = read_predictions(tmp_path / "single" / "part-1.jsonl.out")
    batched = read_predictions(tmp_path / "multi" / "part-1.jsonl.out")
    assert [p["creative_id"] for p in singles] == [p["creative_id"] for p in batched]
    # a batched forward pass may differ from a single one in the last float bits: scores are rounded to 1e-6
    assert [p["score"] for p in singles] == pytest.approx([p["score"] for p in batched], abs=2e-6)
    assert (multi.to_dict()["invocations"], single.to_dict()["invocations"]) == (1, 150)


def test_split_type_none_sends_a_json_file_whole(tmp_path: Path) -> None:
    instances = json.loads((SAMPLES / "creatives.json").read_text())["instances"]
    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLES / "creatives.json", tmp_path / "in" / "creatives.json")
    whole = lines_job(
        tmp_path,
        "whole",
        content_type="application/json",
        accept="application/json",
        split_type="None",
        batch_strategy=None,
        assemble_with="None",
    )

    result = run_transform(whole)

    assert result.to_dict()["invocations"] == 1
    predictions = json.loads((tmp_path / "whole" / "creatives.json.out").read_text())["predictions"]
    assert [p["creative_id"] for p in predictions] == [i["creative_id"] for i in instances]
    write_lines(tmp_path / "lines" / "creatives.jsonl", instances)  # the same creatives one per line score the same
    run_transform(lines_job(tmp_path, "by-line", input=str(tmp_path / "lines")))
    assert read_predictions(tmp_path / "by-line" / "creatives.jsonl.out") == predictions


@pytest.mark.parametrize("strategy", ["SingleRecord", "MultiRecord"])
@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (MALFORMED, "is not valid JSON"),
        (json.dumps({**generate(1, seed=9).creatives[0], "channel": "radio"}), ".channel"),
    ],
    ids=["malformed-json", "invalid-creative"],
)
def test_a_bad_line_fails_its_file_with_its_line_number_and_other_files_succeed(
    tmp_path: Path, strategy: str, bad_line: str, expected: str
) -> None:
    creatives = generate(120, seed=5).creatives
    write_lines(tmp_path / "in" / "a-good.jsonl", creatives[:60])
    write_lines(tmp_path / "in" / "b-bad.jsonl", creatives[60:], replace={37: bad_line})

    result = run_transform(lines_job(tmp_path, batch_strategy=strategy))

    out = tmp_path / "out"
    assert len(read_predictions(out / "a-good.jsonl.out")) == 60
    assert not (out / "b-bad.jsonl.out").exists()
    report = json.loads((out / "b-bad.jsonl.out.failed.json").read_text())
    [failure] = report["failures"]
    assert failure["line"] == 37
    assert failure["status"] == 400
    assert expected in failure["message"]
    assert "Traceback" not in failure["message"]  # the toolkit appends one to the model's answer
    assert failure["attempts"] == 1  # a 4xx is not retried
    failed_records = 1 if strategy == "SingleRecord" else 60
    assert (report["records"], report["failed_records"]) == (60, failed_records)
    summary = result.to_dict()
    assert summary["status"] == "Failed"
    assert summary["files"] == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    assert summary["records"] == {
        "succeeded": 60,
        "failed": failed_records,
        "discarded": 60 - failed_records,
        "skipped": 0,
    }
    assert summary["failures"][0]["input"] == "b-bad.jsonl"


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("how", ["exception", "ctrl-c"])
def test_an_interrupted_job_resumes_doing_each_input_once_with_the_same_outputs(tmp_path: Path, how: str) -> None:
    creatives = generate(1_800, seed=17).creatives
    names = [f"part-{i}.jsonl" for i in range(6)]
    for i, name in enumerate(names):
        write_lines(tmp_path / "in" / name, creatives[i * 300 : (i + 1) * 300])
    run_transform(lines_job(tmp_path, "reference", workers=2))

    first: list[str] = []

    def stop_after_two(result: FileResult) -> None:
        first.append(result.key)
        if len(first) == 2:
            if how == "ctrl-c":
                signal.raise_signal(signal.SIGINT)
            else:
                raise Interrupted

    with pytest.raises(KeyboardInterrupt if how == "ctrl-c" else Interrupted):
        run_transform(lines_job(tmp_path, workers=2), on_file_done=stop_after_two)
    checkpoint = json.loads((tmp_path / "out" / CHECKPOINT).read_text())
    assert sorted(checkpoint["finished"]) == sorted(first)
    assert 2 <= len(first) < len(names)

    second: list[str] = []
    resumed = run_transform(lines_job(tmp_path, workers=2), on_file_done=lambda r: second.append(r.key))

    assert sorted(first + second) == names  # every input done exactly once
    assert resumed.to_dict()["files"]["skipped"] == len(first)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "reference")

    write_lines(tmp_path / "in" / names[4], creatives[:10])  # a changed input is redone, and only it
    third: list[str] = []
    run_transform(lines_job(tmp_path), on_file_done=lambda r: third.append(r.key))
    assert third == [names[4]]
    assert len(read_predictions(tmp_path / "out" / f"{names[4]}.out")) == 10


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


def test_5xx_answers_are_retried_up_to_max_retries(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_test_archive(models, "flaky", predict_fn_body=FLAKY_PREDICT, extra="\nCALLS = 0\n")
    write_lines(tmp_path / "in" / "part.jsonl", generate(8, seed=1).creatives)
    settings: dict[str, Any] = {"model": "flaky", "models_dir": models, "batch_strategy": "SingleRecord"}

    retried = run_transform(lines_job(tmp_path, "retried", max_retries=1, **settings)).to_dict()
    given_up = run_transform(lines_job(tmp_path, "given-up", max_retries=0, **settings)).to_dict()

    assert (retried["status"], retried["invocations"], retried["retries"]) == ("Completed", 16, 8)
    assert len(read_predictions(tmp_path / "retried" / "part.jsonl.out")) == 8
    assert given_up["status"] == "Failed"
    report = json.loads((tmp_path / "given-up" / "part.jsonl.out.failed.json").read_text())
    assert {(f["status"], f["message"], f["attempts"]) for f in report["failures"]} == {(503, "busy, try again", 1)}


VALID: dict[str, Any] = {"model": MODEL, "input": "in", "output": "out"}


@pytest.mark.parametrize(
    ("wrong", "right", "message"),
    [
        ({"split_type": "RecordIO"}, {"split_type": "Line"}, "SplitType (--split-type) RecordIO is not supported"),
        ({"split_type": "line"}, {"split_type": "Line"}, "case-sensitive: use Line"),
        (
            {"batch_strategy": "MultiRecord"},
            {"batch_strategy": "MultiRecord", "split_type": "Line"},
            "BatchStrategy (--batch-strategy) MultiRecord needs SplitType Line",
        ),
        ({"batch_strategy": "Multi", "split_type": "Line"}, {"split_type": "Line"}, "SingleRecord, MultiRecord"),
        ({"max_payload_mb": 0}, {"max_payload_mb": 1}, "chunked streaming"),
        ({"max_payload_mb": 101}, {"max_payload_mb": 100}, "MaxPayloadInMB (--max-payload-mb) is 101"),
        ({"max_payload_mb": 2.5}, {"max_payload_mb": 2}, "whole number"),
        ({"workers": 17}, {"workers": 16}, "lower --workers to 16"),
        ({"workers": -1}, {"workers": 1}, "MaxConcurrentTransforms (--workers) is -1"),
        ({"compression_type": "gzip"}, {"compression_type": "Gzip"}, "case-sensitive: use Gzip"),
        ({"max_retries": 4}, {"max_retries": 3}, "InvocationsMaxRetries (--max-retries) is 4"),
        ({"assemble_with": "Lines"}, {"assemble_with": "Line"}, "AssembleWith (--assemble-with)"),
        ({"content_type": ""}, {"content_type": "application/json"}, "ContentType (--content-type)"),
        ({"environment": {f"V{i}": "1" for i in range(17)}}, {"environment": {f"V{i}": "1" for i in range(16)}}, "16"),
        ({"environment": {"1ST": "x"}}, {"environment": {"FIRST": "x"}}, "not a variable name"),
        ({"output": "in/scored"}, {"output": "scored"}, "inside the input location"),
        (
            {"input": "s3://data/x", "output": "s3://data/x-out"},
            {"input": "s3://data/x/", "output": "s3://data/y"},
            "inside",
        ),
        ({"input": "s3://Data/x"}, {"input": "s3://data/x"}, "not an S3 bucket name"),
        ({"input": "gs://data/x"}, {"input": "s3://data/x"}, "only local paths and s3://"),
        ({"s3_endpoint_url": "localhost:5000"}, {"s3_endpoint_url": "http://localhost:5000"}, "--s3-endpoint-url"),
    ],
)
def test_settings_sagemaker_refuses_are_refused_naming_the_parameter_and_fix(
    wrong: dict[str, Any], right: dict[str, Any], message: str
) -> None:
    with pytest.raises(TransformError) as raised:
        TransformJob(**{**VALID, **wrong})
    assert message in str(raised.value)
    assert TransformJob(**{**VALID, **right})


def test_workers_0_is_the_default_1_and_too_many_workers_are_told_to_lower_workers() -> None:
    assert TransformJob(**VALID, workers=0).workers == 1  # as SageMaker: 0 is unset, 1 without execution-parameters
    with pytest.raises(TransformError) as raised:
        TransformJob(**VALID, workers=101, max_payload_mb=1)
    assert str(raised.value).endswith("it must be at most 100: lower --workers to 100")


def test_gzip_inputs_are_decompressed_with_compression_type_gzip(tmp_path: Path) -> None:
    creatives = generate(30, seed=4).creatives
    plain = write_lines(tmp_path / "plain" / "part.jsonl", creatives)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    shutil.copy(plain, tmp_path / "in" / "not-gzip.jsonl")

    result = run_transform(lines_job(tmp_path, compression_type="Gzip")).to_dict()

    predictions = read_predictions(tmp_path / "out" / "part.jsonl.gz.out")
    assert [p["creative_id"] for p in predictions] == [c["creative_id"] for c in creatives]
    assert result["settings"]["CompressionType"] == "Gzip"
    assert result["files"] == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
    report = json.loads((tmp_path / "out" / "not-gzip.jsonl.out.failed.json").read_text())
    assert "it is not gzip data" in report["failures"][0]["message"]


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
        (["--split-type", "RecordIO"], "SplitType (--split-type) RecordIO"),
        (["--batch-strategy", "MultiRecord"], "needs SplitType Line"),
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


def _encode(creatives: list[dict[str, Any]], replace: dict[int, str] | None = None) -> bytes:
    lines = [json.dumps(c) for c in creatives]
    for number, text in (replace or {}).items():
        lines[number - 1] = text
    return "".join(line + "\n" for line in lines).encode()


def test_s3_input_and_output_through_an_s3_endpoint(tmp_path: Path, s3: Any, s3_url: str) -> None:
    bucket = "transform-data"
    s3.create_bucket(Bucket=bucket)
    archive = Path(__file__).resolve().parents[2] / "model_artifacts" / f"{MODEL}.tar.gz"
    s3.put_object(Bucket=bucket, Key="models/model.tar.gz", Body=archive.read_bytes())
    creatives = generate(40, seed=8).creatives
    s3.put_object(Bucket=bucket, Key="in/day=1/a.jsonl", Body=_encode(creatives[:20]))
    s3.put_object(Bucket=bucket, Key="in/day=2/b.jsonl", Body=_encode(creatives[20:], {7: MALFORMED}))
    job = lines_job(
        tmp_path,
        model=f"s3://{bucket}/models/model.tar.gz",
        input=f"s3://{bucket}/in/",
        output=f"s3://{bucket}/scored",
        s3_endpoint_url=s3_url,
    )

    def read(key: str) -> bytes:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def keys() -> set[str]:
        return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="scored/").get("Contents", [])}

    first = run_transform(job).to_dict()

    assert first["status"] == "Failed"
    assert keys() == {f"scored/{CHECKPOINT}", "scored/day=1/a.jsonl.out", "scored/day=2/b.jsonl.out.failed.json"}
    ids = [json.loads(line)["creative_id"] for line in read("scored/day=1/a.jsonl.out").splitlines()]
    assert ids == [c["creative_id"] for c in creatives[:20]]
    report = json.loads(read("scored/day=2/b.jsonl.out.failed.json"))
    assert (report["input"], report["failures"][0]["line"]) == (f"s3://{bucket}/in/day=2/b.jsonl", 7)

    s3.put_object(Bucket=bucket, Key="in/day=2/b.jsonl", Body=_encode(creatives[20:]))  # fixed: only it is redone
    done: list[str] = []
    second = run_transform(job, on_file_done=lambda r: done.append(r.key)).to_dict()

    assert done == ["day=2/b.jsonl"]
    assert (second["status"], second["files"]["skipped"]) == ("Completed", 1)
    assert keys() == {f"scored/{CHECKPOINT}", "scored/day=1/a.jsonl.out", "scored/day=2/b.jsonl.out"}


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


def test_progress_shows_records_done_of_the_total_and_the_rate() -> None:
    stream = io.StringIO()
    progress = Progress(True, files=2, total_bytes=3_000, stream=stream, use_tqdm=False)
    progress.input_read(1_000, 10)
    assert progress.total() == (30, False)  # the unread 2,000 bytes estimated at 100 bytes a record
    progress.advance(10)
    progress.file_done(failed=False)
    progress.input_read(2_000, 25)
    progress.advance(25, failed=True)
    progress.file_done(failed=True)
    progress.close()
    assert progress.total() == (35, True)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("transform: 35/35 records (100%), ")
    assert "records/s, files 2/2, 1 failed" in last
