"""The checkpoint: an interrupted job resumes, doing each input once; a changed input is redone."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from local_endpoint.transform import FileResult, run_transform
from local_endpoint.transform.checkpoint import CHECKPOINT
from tests.local_endpoint.transform.conftest import lines_job, outputs, read_predictions, write_lines
from training.dataset import generate


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("how", ["exception", "ctrl-c"])
def test_an_interrupted_job_resumes_doing_each_input_once_with_the_same_outputs(tmp_path: Path, how: str) -> None:
    creatives = generate(1_800, seed=17).creatives
    names = [f"part-{i}.jsonl" for i in range(6)]
    for i, name in enumerate(names):
        write_lines(tmp_path / "in" / name, creatives[i * 300 : (i + 1) * 300])
    run_transform(lines_job(tmp_path, "reference", max_concurrent_transforms=2))

    first: list[str] = []

    def stop_after_two(result: FileResult) -> None:
        first.append(result.key)
        if len(first) == 2:
            if how == "ctrl-c":
                signal.raise_signal(signal.SIGINT)
            else:
                raise Interrupted

    with pytest.raises(KeyboardInterrupt if how == "ctrl-c" else Interrupted):
        run_transform(lines_job(tmp_path, max_concurrent_transforms=2), on_file_done=stop_after_two)
    checkpoint = json.loads((tmp_path / "out" / CHECKPOINT).read_text())
    assert sorted(checkpoint["finished"]) == sorted(first)
    assert 2 <= len(first) < len(names)

    second: list[str] = []
    resumed = run_transform(
        lines_job(tmp_path, max_concurrent_transforms=2), on_file_done=lambda r: second.append(r.key)
    )

    assert sorted(first + second) == names  # every input done exactly once
    assert resumed.to_dict()["files"]["skipped"] == len(first)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "reference")

    write_lines(tmp_path / "in" / names[4], creatives[:10])  # a changed input is redone, and only it
    third: list[str] = []
    run_transform(lines_job(tmp_path), on_file_done=lambda r: third.append(r.key))
    assert third == [names[4]]
    assert len(read_predictions(tmp_path / "out" / f"{names[4]}.out")) == 10
