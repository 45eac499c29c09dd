"""Extra processes of the stream services, each in its service's consumer group.

A replica is the service as the local stack runs it, with a port of its own and a Kafka
client id suffix (``KAFKA_CLIENT_ID_SUFFIX``); its group id is the service name, so the
group spreads the partitions over the replicas.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from socialcrm_devstack.processes import ManagedProcess, free_ports
from socialcrm_devstack.stack import SERVICES, LocalStack

STREAM_SERVICES = ("sentiment", "router", "crm-sink", "kpi")
READY_SECONDS = 90


class Replicas:
    """Replicas 2..N of each stream service, or of ``services`` (the stack runs the first
    of each)."""

    def __init__(
        self, stack: LocalStack, count: int, services: Sequence[str] = STREAM_SERVICES
    ) -> None:
        self.stack = stack
        names = [(service, index) for service in services for index in range(2, count + 1)]
        ports = free_ports(len(names)) if names else []
        self.urls: dict[str, str] = {}
        self.processes: dict[str, ManagedProcess] = {}
        for (service, index), port in zip(names, ports, strict=True):
            spec = next(s for s in SERVICES if s.name == service)
            name = f"{service}-{index}"
            env = {
                **stack.service_env(spec),
                "HTTP_PORT": str(port),
                "KAFKA_CLIENT_ID_SUFFIX": f"-{index}",
            }
            self.urls[name] = f"http://127.0.0.1:{port}"
            self.processes[name] = ManagedProcess(
                name,
                [sys.executable, "-m", spec.module],
                stack.work_dir / "logs" / f"{name}.log",
                env=env,
            )

    def start(self) -> None:
        if not self.processes:
            return
        with ThreadPoolExecutor(len(self.processes)) as pool:
            for future in [pool.submit(self._start, name) for name in self.processes]:
                future.result()

    def _start(self, name: str) -> None:
        process = self.processes[name]
        process.start()
        process.wait_until(
            lambda: httpx.get(f"{self.urls[name]}/readyz", timeout=2).status_code == 200,
            READY_SECONDS,
            "ready (GET /readyz)",
        )

    def pids(self) -> dict[str, int]:
        return {
            name: process.process.pid
            for name, process in self.processes.items()
            if process.process is not None
        }

    def of(self, service: str) -> list[str]:
        """The URLs of ``service``'s replicas."""
        return [url for name, url in self.urls.items() if name.rsplit("-", 1)[0] == service]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
