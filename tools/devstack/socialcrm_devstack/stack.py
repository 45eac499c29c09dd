"""The whole platform on one machine: infrastructure plus the services."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from socialcrm_devstack.infra import KafkaBroker, MongoServer
from socialcrm_devstack.processes import ManagedProcess, StartError, free_ports
from socialcrm_devstack.webhook_signing import LOCAL_MAIL_GATEWAY_SECRET
from socialcrm_ingest.channels import WEBHOOKS

# The local stack's API keys, one per scope, each bound to an agent (the actor recorded):
# a local run has no secrets to protect. Router and crm-sink take the same keys.
LOCAL_CRM_API_KEY = "local-admin-key"
LOCAL_AGENT_API_KEY = "local-agent-key"
LOCAL_READ_API_KEY = "local-read-key"
LOCAL_ADMIN_AGENT_ID = "local-admin"
LOCAL_AGENT_ID = "local-agent"
LOCAL_READER_ID = "local-reader"
LOCAL_API_KEYS = (
    f"{LOCAL_CRM_API_KEY}=admin:{LOCAL_ADMIN_AGENT_ID};"
    f"{LOCAL_AGENT_API_KEY}=agent:{LOCAL_AGENT_ID};"
    f"{LOCAL_READ_API_KEY}=read:{LOCAL_READER_ID}"
)
# Key of crm-sink's erasure fingerprints on the local stack (crm-sink refuses to start without).
LOCAL_FINGERPRINT_SECRET = "local-crm-fingerprint-secret"
# Ingest's webhook secrets on the local stack: real ones, so every door is checked locally as
# in production (webhooks fail closed without them); the demo, tests and benchmarks sign
# with them (socialcrm_devstack.webhook_signing).
# A local secret for every secret setting of ingest's channels ("local-x-consumer-secret"...).
LOCAL_WEBHOOK_SECRETS: dict[str, str] = {
    name.upper(): "local-" + name.replace("_", "-")
    for webhook in WEBHOOKS.values()
    for name in webhook.secrets
}


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    default_port: int
    env: Mapping[str, str] = field(default_factory=dict)
    # Environment variables that hold another service's base URL: variable -> service name
    # (known only once the stack chose its ports).
    urls: Mapping[str, str] = field(default_factory=dict)


SERVICES = (
    ServiceSpec(
        "ingest",
        "socialcrm_ingest",
        8001,
        {**LOCAL_WEBHOOK_SECRETS, "MAIL_GATEWAY_SECRET": LOCAL_MAIL_GATEWAY_SECRET},
    ),
    ServiceSpec("sentiment", "socialcrm_sentiment", 8002),
    ServiceSpec("router", "socialcrm_router", 8003, {"API_KEYS": LOCAL_API_KEYS}),
    ServiceSpec(
        "crm-sink",
        "socialcrm_crm_sink",
        8004,
        {"API_KEYS": LOCAL_API_KEYS, "CRM_FINGERPRINT_SECRET": LOCAL_FINGERPRINT_SECRET},
    ),
    ServiceSpec("kpi", "socialcrm_kpi", 8005),
    # Started last: it reads the topics the others create, and calls the router and the CRM.
    ServiceSpec(
        "workspace",
        "socialcrm_workspace",
        8006,
        # The local stack serves plain HTTP on loopback: a Secure cookie would never be sent.
        {"API_KEYS": LOCAL_API_KEYS, "WORKSPACE_COOKIE_SECURE": "false"},
        urls={"WORKSPACE_ROUTER_URL": "router", "WORKSPACE_CRM_URL": "crm-sink"},
    ),
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
            **{variable: self.url(service) for variable, service in spec.urls.items()},
            **spec.env,
            **self.env_overrides.get(spec.name, {}),
        }

    def webhook_secrets(self) -> dict[str, str]:
        """Ingest's environment, where its webhook secrets are (overrides included)."""
        return self.service_env(next(spec for spec in SERVICES if spec.name == "ingest"))

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
