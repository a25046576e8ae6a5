"""Loopback servers started by this project: a free port to start one on, and the wait until it serves."""

from __future__ import annotations

import random
import socket
import subprocess
import time

import httpx

HOST = "127.0.0.1"
# Below Linux's ephemeral range (32768 and up), where the OS gives port 0 and outgoing connections: Multi Model
# Server refuses ports from 32767 on ("Invalid port number").
PORTS = range(20000, 32767)


class ServerExited(RuntimeError):
    """The server's process ended before the server answered."""


def free_port(ports: range = PORTS) -> int:
    """A port of ``ports`` that is free on 127.0.0.1 now."""
    candidates = list(ports)
    random.shuffle(candidates)
    for port in candidates:
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free port from {ports.start} to {ports.stop - 1} on {HOST}")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_until_serving(
    url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None, interval_s: float = 0.1
) -> None:
    """Return once ``GET url`` answers 2xx.

    Raises:
        ServerExited: ``process`` (the server's, when given) ended first.
        TimeoutError: no 2xx answer within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2, trust_env=False) as client:  # no proxy between us and loopback
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ServerExited(f"the server at {url} exited with status {process.returncode} before it answered")
            try:
                if client.get(url).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(interval_s)
    raise TimeoutError(f"{url} did not answer 2xx within {timeout_s} s")
