"""Starting and stopping the servers a benchmark measures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from creative_scoring.net import free_port, wait_until_serving


@contextmanager
def local_endpoint(work: Path, *options: str) -> Iterator[str]:
    """``creative-scoring serve`` on a free port with ``options``; yields its URL once it answers."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "creative_scoring", "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--workdir", str(work / "models"), "--state-dir", str(work / "state"), *options]
    with (work / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(f"{url}/_local/endpoints", timeout_s=180, process=process)
            yield url
        finally:
            stop_tree(process.pid)


def stop_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = [parent, *parent.children(recursive=True)]
    for process in family:
        process.terminate()
    _, alive = psutil.wait_procs(family, timeout=20)
    for process in alive:
        process.kill()


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
