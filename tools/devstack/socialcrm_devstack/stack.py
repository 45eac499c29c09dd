"""The whole platform on one machine: infrastructure plus the five services."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from socialcrm_devstack.infra import KafkaBroker, MongoServer
from socialcrm_devstack.processes import ManagedProcess, StartError, free_ports

# The local stack's CRM API key (scope admin): a local run has no secrets to protect.
LOCAL_CRM_API_KEY = "local-admin-key"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    default_port: int
    env: Mapping[str, str] = field(default_factory=dict)


SERVICES = (
    ServiceSpec("ingest", "socialcrm_ingest", 8001),
    ServiceSpec("sentiment", "socialcrm_sentiment", 8002),
    ServiceSpec("router", "socialcrm_router", 8003),
    ServiceSpec(
        "crm-sink", "socialcrm_crm_sink", 8004, {"CRM_API_KEYS": f"{LOCAL_CRM_API_KEY}=admin"}
    ),
    ServiceSpec("kpi", "socialcrm_kpi", 8005),
)


class LocalStack:
    """Starts Kafka, the database and the services; stops them in reverse order.

    With ``ephemeral_ports`` every server gets a free port (tests); otherwise the
    documented defaults are used (demo).
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        ephemeral_ports: bool = False,
        log_level: str = "INFO",
        kafka: KafkaBroker | None = None,
        mongo: MongoServer | None = None,
        env: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Pass ``kafka``/``mongo`` to run the services on servers started elsewhere,
        ``env`` to add or override environment variables per service name."""
        self.work_dir = work_dir
        self.log_level = log_level
        self.env_overrides = {name: dict(values) for name, values in (env or {}).items()}
        names = ["kafka", "mongodb", *(s.name for s in SERVICES)]
        defaults = [9092, 27017, *(s.default_port for s in SERVICES)]
        ports = dict(
            zip(names, free_ports(len(names)) if ephemeral_ports else defaults, strict=True)
        )
        self.kafka = kafka or KafkaBroker(work_dir / "kafka", port=ports["kafka"])
        self.mongo = mongo or MongoServer(work_dir / "mongodb", port=ports["mongodb"])
        self.ports = {s.name: ports[s.name] for s in SERVICES}
        self.services: dict[str, ManagedProcess] = {}

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "MONGODB_URI": self.mongo.uri,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.ports[spec.name]),
            "LOG_LEVEL": self.log_level,
            "OTEL_SERVICE_NAME": spec.name,
            **spec.env,
            **self.env_overrides.get(spec.name, {}),
        }

    def start_infra(self) -> None:
        self.kafka.start()
        self.mongo.start()

    def start_services(self) -> None:
        for spec in SERVICES:
            self.start_service(spec.name)

    def start_service(self, name: str) -> None:
        spec = next(s for s in SERVICES if s.name == name)
        process = ManagedProcess(
            name,
            [sys.executable, "-m", spec.module],
            self.work_dir / "logs" / f"{name}.log",
            env=self.service_env(spec),
        )
        self.services[name] = process
        process.start()
        process.wait_until(lambda: self._ready(name), 90, "ready (GET /readyz)")

    def _ready(self, name: str) -> bool:
        return httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200

    def stop_service(self, name: str) -> None:
        if name in self.services:
            self.services.pop(name).stop()

    def kill_service(self, name: str) -> None:
        if name in self.services:
            self.services.pop(name).kill()

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            self.stop_service(name)
        self.mongo.stop()
        self.kafka.stop()


__all__ = ["SERVICES", "LocalStack", "ServiceSpec", "StartError"]
