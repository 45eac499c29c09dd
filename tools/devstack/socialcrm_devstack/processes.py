"""Child processes with log files, readiness waits and clean stops."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class StartError(RuntimeError):
    """A server did not come up; the message names it and points at its log."""


# Ports are picked below the system's ephemeral range (32768-60999 on Linux), never with
# bind(0): a port the system hands out is free only until the server binds it, and
# meanwhile any outgoing connection of any process may take it as its source port (seen:
# a kpi "address already in use" with four test workers starting stacks at once).
PORT_RANGE_ENV = "SOCIALCRM_PORT_RANGE"
DEFAULT_PORT_RANGE = (20000, 32767)
_random = random.SystemRandom()
# Handed out by this process: a port picked for a server not started yet looks free.
_handed_out: set[int] = set()


def port_range() -> tuple[int, int]:
    """The ports to pick from: ``SOCIALCRM_PORT_RANGE`` (``low-high``, e.g. one test
    worker's share), else 20000-32767."""
    value = os.environ.get(PORT_RANGE_ENV, "")
    if not value:
        return DEFAULT_PORT_RANGE
    low, _, high = value.partition("-")
    return int(low), int(high)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now and never handed out before by this process, in
    random order from ``port_range()`` so that processes sharing a range rarely try the
    same port at the same moment."""
    low, high = port_range()
    picked: list[int] = []
    for port in _random.sample(range(low, high + 1), high - low + 1):
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            picked.append(port)
            if len(picked) == count:
                return picked
    raise StartError(f"fewer than {count} free ports in {low}-{high} ({PORT_RANGE_ENV})")


def _bindable(port: int) -> bool:
    # Any address: a server on 127.0.0.1 or on every address makes the port unusable.
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ManagedProcess:
    """A server run as a child process, its output in ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A process group of its own: Ctrl-C in the terminal reaches the supervisor only,
        # which then stops children in order.
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise StartError(
                    f"{self.name} exited while starting ({what}); "
                    f"see {self.log_path}:\n{self.tail()}"
                )
            try:
                if ready():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise StartError(
            f"{self.name} not {what} after {timeout:.0f}s; see {self.log_path}:\n{self.tail()}"
        )

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if not self.running or self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.running:
            self.process.kill()
            self.process.wait()
