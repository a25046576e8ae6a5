"""The local endpoint's own S3 server (SeaweedFS): data on disk, a kept address, one owner per state folder."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from creative_scoring.net import free_port
from local_endpoint.s3 import ObjectStore
from local_endpoint.s3_server import LocalS3, S3ServerError, weed_binary


def _serves(pid: int, data: Path) -> bool:
    """Whether process ``pid`` is a live SeaweedFS serving ``data``."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and f"-dir={data}" in process.cmdline()
    except psutil.Error:
        return False


def _wait_for(condition: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _answers(store: ObjectStore, uri: str) -> bool:
    """Whether ``uri`` can be read: a restarted server answers metadata calls before it serves objects."""
    try:
        store.fetch(uri)
    except Exception:
        return False
    return True


def test_objects_and_their_metadata_survive_a_kill_and_the_restarted_server_keeps_the_address(tmp_path: Path) -> None:
    folder = tmp_path / "s3"
    with LocalS3(folder) as s3:
        url, first_pid = s3.endpoint_url, s3.pid
        store = ObjectStore(url, create_buckets=True)
        store.write("s3://kept-bucket/a/answer.out", b'{"ok": 1}', "application/json", owner="token-1")
        assert first_pid is not None
        os.killpg(first_pid, signal.SIGKILL)
    with LocalS3(folder) as again:
        assert again.endpoint_url == url
        store = ObjectStore(again.endpoint_url)
        assert store.fetch("s3://kept-bucket/a/answer.out") == (b'{"ok": 1}', "application/json")
        assert store.owner("s3://kept-bucket/a/answer.out") == "token-1"
    assert json.loads((folder / "server.json").read_text())["endpoint_url"] == url


def test_a_server_killed_under_its_owner_is_started_again_on_the_same_address(tmp_path: Path) -> None:
    with LocalS3(tmp_path / "s3") as s3:
        store = ObjectStore(s3.endpoint_url, create_buckets=True)
        store.write("s3://kept-bucket/before", b"1")
        killed = s3.pid
        assert killed is not None
        os.killpg(killed, signal.SIGKILL)
        _wait_for(lambda: s3.pid != killed and _answers(store, "s3://kept-bucket/before"), "a restarted server")
        assert store.fetch("s3://kept-bucket/before")[0] == b"1"
        store.write("s3://kept-bucket/after", b"2")
        last = s3.pid
    assert last is not None
    assert not _serves(last, s3.data)


def test_a_server_that_cannot_be_started_again_for_a_while_is_retried_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    binary = tmp_path / "weed"
    binary.symlink_to(weed_binary())
    with LocalS3(tmp_path / "s3", binary=str(binary)) as s3:
        store = ObjectStore(s3.endpoint_url, create_buckets=True)
        store.write("s3://kept-bucket/before", b"1")
        binary.unlink()  # say, the package being reinstalled
        killed = s3.pid
        assert killed is not None
        os.killpg(killed, signal.SIGKILL)
        _wait_for(lambda: "cannot run" in caplog.text, "a logged failure to start it again")
        binary.symlink_to(weed_binary())
        _wait_for(lambda: _answers(store, "s3://kept-bucket/before"), "the server back once it can start", 60)
        assert store.fetch("s3://kept-bucket/before")[0] == b"1"


def test_a_requested_port_taken_by_another_program_is_named_with_the_way_out(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(S3ServerError, match=rf"port {port} \(--s3-port\) is in use by another program"):
            LocalS3(tmp_path / "s3", port=port).start()


def test_the_kept_port_taken_while_the_server_was_down_is_refused_not_moved(tmp_path: Path) -> None:
    with LocalS3(tmp_path / "s3") as s3:
        kept = s3.endpoint_url
    port = int(kept.rsplit(":", 1)[1])
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's connections linger
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(S3ServerError, match=rf"port {port} \(kept in .*server.json.*--s3-port"):
            LocalS3(tmp_path / "s3").start()
    with LocalS3(tmp_path / "s3") as s3:  # free again: the same address
        assert s3.endpoint_url == kept


def test_the_endpoints_own_port_not_bound_yet_is_never_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    front = free_port()
    offered = iter([front, front, *range(20000, 32767)])  # the chooser offers the endpoint's port first
    monkeypatch.setattr("local_endpoint.s3_server.free_port", lambda *_: next(offered))
    with LocalS3(tmp_path / "s3", reserved=[front]) as s3:
        assert s3.ports is not None
        assert front not in dataclasses.asdict(s3.ports).values()
    with pytest.raises(S3ServerError, match=rf"port {front} \(--s3-port\) is the endpoint's own port"):
        LocalS3(tmp_path / "s3", port=front, reserved=[front]).start()


def test_a_binary_that_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(S3ServerError, match=r"did not start: /no/such/weed cannot run"):
        LocalS3(tmp_path / "s3", binary="/no/such/weed").start()
    with LocalS3(tmp_path / "s3") as s3:  # the lock was released
        assert s3.pid is not None


def test_the_server_ends_when_the_process_that_owns_it_is_killed(tmp_path: Path) -> None:
    owner_script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from local_endpoint.s3_server import LocalS3
        s3 = LocalS3(Path({str(tmp_path / "s3")!r}))
        s3.start()
        print(s3.pid, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_script], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    server_pid = int(owner.stdout.readline())
    owner.stdout.close()
    data = tmp_path / "s3" / "data"
    assert _serves(server_pid, data)
    owner.kill()
    owner.wait()
    _wait_for(lambda: not _serves(server_pid, data), "the orphaned server to end")
    with LocalS3(tmp_path / "s3") as s3:  # and the next owner starts one on the same folder
        assert s3.pid != server_pid
