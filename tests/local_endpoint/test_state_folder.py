"""One local endpoint per state folder, refused at the command line with the holder named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from creative_scoring.paths import ROOT
from local_endpoint.state_folder import StateFolderInUse, owned
from tests.local_endpoint.conftest import LocalServer, free_port


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "creative_scoring", "serve", "--port", str(free_port()), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_a_second_owner_is_refused_and_a_killed_owner_blocks_nobody(tmp_path: Path) -> None:
    with (
        owned(tmp_path / "state"),
        pytest.raises(StateFolderInUse, match=rf"in use by process {os.getpid()}"),
        owned(tmp_path / "state"),
    ):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time; from pathlib import Path; from local_endpoint.state_folder import "
         f"owned; cm = owned(Path({str(tmp_path / 'state')!r})); cm.__enter__(); print('held', flush=True); "
         "time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.stdout.close()
    with pytest.raises(StateFolderInUse, match=rf"process {holder.pid}"), owned(tmp_path / "state"):
        pass
    holder.kill()
    holder.wait()
    with owned(tmp_path / "state"):  # the kernel released the killed owner's lock
        pass


def test_serve_on_a_state_folder_in_use_exits_2_naming_the_running_endpoint(tmp_path: Path) -> None:
    state = tmp_path / "state"
    running = LocalServer(tmp_path, "--env", "dev", "--state-dir", str(state))
    try:
        second = _serve("--env", "dev", "--state-dir", str(state))
    finally:
        running.stop()
    assert second.returncode == 2
    assert f"cannot start: the state folder {state} is in use by process {running.process.pid}" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--s3-port", "9000", "--s3-endpoint-url", "http://127.0.0.1:9000"], "--s3-port moves the local S3"),
        (["--s3-port", "70000"], "less than or equal to 65535"),
    ],
)
def test_s3_options_that_cannot_work_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    refused = _serve(*args)
    assert refused.returncode == 2
    assert message in " ".join(refused.stderr.replace("│", " ").split())  # the words, out of rich's error box
