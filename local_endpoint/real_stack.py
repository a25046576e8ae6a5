"""The real-stack backend of the local endpoint: SageMaker's own multi-model CPU serving stack, without Docker.

It runs what SageMaker's multi-model CPU containers run: Multi Model Server (a Java/Netty frontend with one set of
Python worker processes per model) driven by the SageMaker Inference Toolkit. A child Python process (the project's
venv interpreter, this file run as a script) calls ``sagemaker_inference.model_server.start_model_server``, as the
framework containers' ``serve`` entrypoint does. The server answers the SageMaker container API: ``GET /ping``,
``POST /models`` (``model_name``, ``url``), ``GET /models``, ``GET|DELETE /models/{name}``,
``POST /models/{name}/invoke`` in multi-model mode, and ``POST /invocations`` in single-model mode.

What differs from a container, and why (everything is kept under ``workdir``):
- The toolkit writes its MMS config to the fixed ``/etc/sagemaker-mms.properties``; the child repoints
  ``model_server.MMS_CONFIG_FILE`` to ``<workdir>/sagemaker-mms.properties``.
- The toolkit hard-codes ``inference_address``/``management_address`` to ``http://0.0.0.0:<port>``; the child
  rewrites both to ``http://127.0.0.1:<port>`` in the properties it generates, so nothing listens beyond loopback.
- ``TMPDIR``/``TEMP`` point to ``<workdir>/tmp``: MMS keeps its pid file (``.model_server.pid``, the same name
  TorchServe uses) and its workers' Unix sockets there, so servers in different workdirs never collide.
- The toolkit finds the Java process by scanning every process on the machine for the MMS main class, and gives up
  when it finds two; the child looks only at the pid in its own pid file, so concurrent servers work.
- ``-XX:-UsePerfData`` keeps the JVM from writing ``/tmp/hsperfdata_<user>``.
- MMS leaves its Python workers running when Java exits (a container hides this by dying whole): ``stop`` ends the
  launcher, Java and every process of the server's session, SIGKILLing what outlives a grace period.

Setup: ``apt-get install -y default-jre-headless`` and ``.venv/bin/pip install -r requirements-real-stack.txt``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil

from creative_scoring.net import HOST, PORTS, ServerExited, port_is_free, wait_until_serving

HANDLER_DIR = Path(__file__).resolve().parent
HANDLER_MODULE = "real_stack_handler"  # imported by the MMS workers from HANDLER_DIR
REQUIRED_MODULES = {
    "sagemaker_inference": "sagemaker-inference",
    "mms": "multi-model-server",
    "pkg_resources": "setuptools<82",  # sagemaker_inference.model_server imports it; setuptools 82 removed it
    "psutil": "psutil",
    "retrying": "retrying",
}
MMS_MAIN_CLASS = "com.amazonaws.ml.mms.ModelServer"
PID_FILE_NAME = ".model_server.pid"  # written by the multi-model-server CLI into tempfile.gettempdir()
UNIX_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the trailing NUL; MMS uses <TEMP>/.mms.sock.<port>
VMARGS = "-XX:-UseContainerSupport -XX:-UsePerfData"  # the toolkit's default, and no /tmp/hsperfdata_<user>
STOP_GRACE_S = 10.0
MAX_PORT = PORTS.stop - 1  # MMS refuses a port of 32767 or more ("Invalid port number")
_SERVE_FLAG = "--serve"


def available() -> str | None:
    """None when the real stack can run here, else a one-line reason naming what is missing."""
    if _java() is None:
        return "java not found: install a JRE (apt-get install default-jre-headless) or set JAVA_HOME"
    missing = [package for module, package in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]
    if missing:
        return (
            f"Python packages missing from {sys.executable}: {', '.join(missing)} "
            "(pip install -r requirements-real-stack.txt)"
        )
    if not _cli().is_file():
        return f"{_cli()} not found (pip install -r requirements-real-stack.txt)"
    return None


class RealStackServer:
    """Multi Model Server with the SageMaker Inference Toolkit, as a local process tree bound to 127.0.0.1.

    Multi-model mode (the default) starts with no model; register extracted archives with
    ``POST /models?model_name=NAME&url=MODEL_DIR``. Single-model mode (``multi_model=False``) serves ``model_dir``
    at ``/invocations``, as ``/opt/ml/model`` is served; the toolkit then pip-installs that model's
    ``code/requirements.txt`` into this interpreter's environment at start-up, as a container does.

    Files: ``<workdir>/sagemaker-mms.properties``, ``<workdir>/tmp`` (pid file, worker sockets, JVM temp),
    ``<workdir>/logs`` (``serve.log``: the launcher's and the workers' output; ``mms_log.log``, ``model_log.log``,
    ``access_log.log`` and metrics from MMS's log4j configuration) and ``<workdir>/opt_ml`` (the toolkit's base dir).
    """

    def __init__(
        self,
        *,
        workdir: Path,
        port: int,
        multi_model: bool = True,
        workers_per_model: int = 1,
        startup_timeout_s: float = 120,
        model_dir: Path | None = None,
    ) -> None:
        if multi_model == (model_dir is not None):
            raise ValueError("model_dir is required in single-model mode and not allowed in multi-model mode")
        if not 0 < port <= MAX_PORT:
            raise ValueError(f"MMS accepts ports 1 to {MAX_PORT} only, got {port}; see free_port()")
        if workers_per_model < 1:
            raise ValueError(f"workers_per_model must be at least 1, got {workers_per_model}")
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.multi_model = multi_model
        self.workers_per_model = workers_per_model
        self.startup_timeout_s = startup_timeout_s
        self.model_dir = None if model_dir is None else Path(model_dir).resolve()
        self.url = f"http://{HOST}:{port}"
        self.config_file = self.workdir / "sagemaker-mms.properties"
        self.tmp_dir = self.workdir / "tmp"
        self.log_dir = self.workdir / "logs"
        self.base_dir = self.workdir / "opt_ml"
        self.pid_file = self.tmp_dir / PID_FILE_NAME
        self._launcher: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._launcher is not None and self._launcher.poll() is None

    def start(self) -> str:
        """Start the server and wait until ``GET /ping`` answers 2xx; return the base URL.

        Raises:
            RuntimeError: the stack is not installed, the port is taken, or the server exited during start-up.
            TimeoutError: ``/ping`` did not answer 2xx within ``startup_timeout_s``.
        """
        if self._launcher is not None:
            raise RuntimeError(f"the server is already started at {self.url}")
        reason = available()
        if reason is not None:
            raise RuntimeError(reason)
        self._prepare()
        with (self.log_dir / "serve.log").open("ab") as log:
            self._launcher = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), _SERVE_FLAG, str(self.config_file), str(self.pid_file)],
                cwd=self.workdir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: every process of the server is found by session id
            )
        atexit.register(self.stop)
        try:
            wait_until_serving(f"{self.url}/ping", timeout_s=self.startup_timeout_s, process=self._launcher)
        except ServerExited as e:
            code = self._launcher.returncode
            self.stop()
            raise RuntimeError(f"the model server exited with status {code} during start-up\n{self.log_tail()}") from e
        except TimeoutError as e:
            self.stop()
            raise TimeoutError(f"{e}\n{self.log_tail()}") from e
        return self.url

    def stop(self) -> None:
        """Stop the launcher, Java and every worker process; safe to call more than once."""
        launcher, self._launcher = self._launcher, None
        if launcher is None:
            return
        atexit.unregister(self.stop)
        java_pid = self._java_pid()
        tracked = _server_processes(launcher.pid, java_pid)
        if launcher.poll() is None:
            launcher.terminate()  # the toolkit's SIGTERM handler forwards it to Java, as `docker stop` would
        try:
            launcher.wait(timeout=STOP_GRACE_S)  # it returns once Java has exited
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
        _wait_gone({process for process in tracked if process.pid == java_pid}, STOP_GRACE_S)
        for sig in (signal.SIGTERM, signal.SIGKILL):  # then the workers MMS leaves behind, and any straggler
            tracked |= _server_processes(launcher.pid, None)
            _signal(tracked, sig)
            if _wait_gone(tracked, STOP_GRACE_S / 2):
                break
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the launcher's output and of MMS's own log, for error messages."""
        parts = []
        for name in ("serve.log", "mms_log.log"):
            path = self.log_dir / name
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def _prepare(self) -> None:
        for folder in (self.workdir, self.tmp_dir, self.log_dir, self.base_dir):
            folder.mkdir(parents=True, exist_ok=True)
        socket_path = f"{self.tmp_dir}/.mms.sock.65535"  # worker sockets count up from .9000
        if len(socket_path.encode()) > UNIX_SOCKET_PATH_MAX:
            raise ValueError(f"workdir {self.workdir} is too long for MMS's worker Unix sockets ({socket_path})")
        if self.model_dir is not None:
            link = self.base_dir / "model"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.model_dir, target_is_directory=True)
        else:
            (self.base_dir / "models").mkdir(exist_ok=True)
        java_pid = self._java_pid()
        if java_pid is not None and _is_model_server(java_pid):
            raise RuntimeError(f"a model server started in {self.workdir} earlier is still running (pid {java_pid})")
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} on {HOST} is in use")

    def _environment(self) -> dict[str, str]:
        # The toolkit reads SAGEMAKER_* and MMS reads MMS_* (enable_envvars_config=true): start from a clean slate.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SAGEMAKER_", "MMS_")) and key not in ("PYTHONPATH", "PYTHONWARNINGS")
        }
        env.update(
            {
                # `multi-model-server` is looked up on PATH; its shebang is this interpreter, which the workers use.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)]),
                "PYTHONPATH": str(HANDLER_DIR),
                "TMPDIR": str(self.tmp_dir),
                "TEMP": str(self.tmp_dir),
                "TMP": str(self.tmp_dir),
                "LOG_LOCATION": str(self.log_dir),
                "METRICS_LOCATION": str(self.log_dir),
                "SAGEMAKER_BASE_DIR": str(self.base_dir),
                "SAGEMAKER_MULTI_MODEL": "true" if self.multi_model else "false",
                "SAGEMAKER_BIND_TO_PORT": str(self.port),
                "SAGEMAKER_MODEL_SERVER_WORKERS": str(self.workers_per_model),
                "SAGEMAKER_STARTUP_TIMEOUT": str(max(1, math.ceil(self.startup_timeout_s))),
                "SAGEMAKER_MODEL_SERVER_VMARGS": VMARGS,
            }
        )
        return env

    def _java_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


# --- processes -------------------------------------------------------------------------------------------------


def _server_processes(launcher_pid: int, java_pid: int | None) -> set[psutil.Process]:
    """The live processes of the launcher's session, the launcher and Java, and the descendants of all of them.

    Java is started by the ``multi-model-server`` CLI, which exits at once, so Java and its workers are re-parented
    away from the launcher; they keep its session, though, unless something calls setsid.
    """
    found = {process for process in psutil.process_iter() if _session(process.pid) == launcher_pid}
    for pid in (launcher_pid, java_pid):
        if pid is not None:  # psutil.Process(None) is this process
            with contextlib.suppress(psutil.Error):
                found.add(psutil.Process(pid))
    for process in list(found):
        with contextlib.suppress(psutil.Error):
            found.update(process.children(recursive=True))
    return {process for process in found if _alive(process)}


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _alive(process: psutil.Process) -> bool:
    """Not exited, and not a later process that reuses the pid; a zombie has exited (it is not reaped yet)."""
    try:
        return process.is_running() and process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def _signal(processes: set[psutil.Process], sig: signal.Signals) -> None:
    for process in processes:
        if _alive(process):
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)


def _wait_gone(processes: set[psutil.Process], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(process) for process in processes):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _is_model_server(pid: int) -> bool:
    try:
        return MMS_MAIN_CLASS in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


# --- environment -----------------------------------------------------------------------------------------------


def _java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home, "bin", "java")
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def _cli() -> Path:
    return Path(sys.executable).parent / "multi-model-server"


# --- the child process: the framework containers' `serve` entrypoint -------------------------------------------


class _JavaProcess:
    """What the toolkit needs of the MMS process it waits on: ``pid`` and a blocking ``wait``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._process = psutil.Process(pid)

    def wait(self) -> None:
        while _alive(self._process):
            time.sleep(0.2)


def _own_model_server(pid_file: Path) -> Callable[[], _JavaProcess]:
    """Replaces the toolkit's machine-wide scan for the MMS process with the pid from this server's pid file."""

    def retrieve() -> _JavaProcess:  # the toolkit retries it (any exception) until SAGEMAKER_STARTUP_TIMEOUT
        pid = int(pid_file.read_text().strip())
        if not _is_model_server(pid):
            raise RuntimeError(f"pid {pid} from {pid_file} is not {MMS_MAIN_CLASS}")
        return _JavaProcess(pid)

    return retrieve


def _loopback_only(generate: Callable[..., str]) -> Callable[..., str]:
    def generate_local(*args: Any, **kwargs: Any) -> str:
        return generate(*args, **kwargs).replace("http://0.0.0.0:", f"http://{HOST}:")

    return generate_local


def _serve(config_file: str, pid_file: str) -> None:
    from sagemaker_inference import model_server  # after the parent set SAGEMAKER_*: read at import time

    model_server.MMS_CONFIG_FILE = config_file
    model_server._generate_mms_config_properties = _loopback_only(model_server._generate_mms_config_properties)
    model_server._retrieve_mms_server_process = _own_model_server(Path(pid_file))
    model_server.start_model_server(handler_service=HANDLER_MODULE)


def _main(argv: Iterable[str]) -> None:
    args = list(argv)
    if len(args) != 3 or args[0] != _SERVE_FLAG:
        raise SystemExit(f"usage: {sys.executable} {__file__} {_SERVE_FLAG} CONFIG_FILE PID_FILE")
    _serve(args[1], args[2])


if __name__ == "__main__":
    _main(sys.argv[1:])
