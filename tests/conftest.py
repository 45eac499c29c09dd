"""Session fixtures: real Kafka and MongoDB-protocol servers, and the whole platform.

They are started once per test session, on free ports in a temporary folder, and
only when a test asks for them (unit tests start nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from socialcrm_devstack.infra import KafkaBroker, MongoServer
from socialcrm_devstack.observability import Observability, missing_packages
from socialcrm_devstack.processes import free_ports
from socialcrm_devstack.stack import SERVICES, LocalStack
from socialcrm_kpi.settings import DEFAULT_QUEUES
from tests.fixtures.otlp import TraceReceiver

REPO = Path(__file__).resolve().parents[1]
# Queues of the end-to-end KPI tests, each test's own: kpi counts only known queues.
E2E_QUEUES = ("e2e-dashboards", "e2e-views")


@dataclass(frozen=True)
class Infra:
    kafka: KafkaBroker
    mongo: MongoServer
    work_dir: Path


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    work_dir = tmp_path_factory.mktemp("infra")
    kafka_port, mongo_port = free_ports(2)
    kafka = KafkaBroker(work_dir / "kafka", port=kafka_port)
    mongo = MongoServer(work_dir / "mongodb", port=mongo_port)
    kafka.start()
    try:
        mongo.start()
        yield Infra(kafka, mongo, work_dir)
    finally:
        mongo.stop()
        kafka.stop()


@pytest.fixture(scope="session")
def traces() -> Iterator[TraceReceiver]:
    receiver = TraceReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def platform(infra: Infra, traces: TraceReceiver) -> Iterator[LocalStack]:
    # Every service exports its spans by OTLP, as in production, to the test's receiver.
    tracing = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces.traces_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    stack = LocalStack(
        infra.work_dir / "platform",
        ephemeral_ports=True,
        kafka=infra.kafka,
        mongo=infra.mongo,
        env={
            **{spec.name: tracing for spec in SERVICES},
            # Other tests publish replies to interactions this stack never saw: dead-letter
            # them at once instead of waiting minutes for the interaction to show up.
            "crm-sink": {**tracing, "CRM_REPLY_WAIT_SECONDS": "2"},
            # Windows close 5 s after a partition goes idle and 10 s after their end rather
            # than the failover-proof 45 s and 60 s: the tests publish no failover.
            "kpi": {
                **tracing,
                "KPI_IDLE_PARTITION_SECONDS": "5",
                "KPI_ALLOWED_LATENESS_SECONDS": "10",
                "KPI_KNOWN_QUEUES": ",".join((DEFAULT_QUEUES, *E2E_QUEUES)),
            },
        },
    )
    try:
        stack.start_services()
        yield stack
    finally:
        for name in reversed(list(stack.services)):
            stack.stop_service(name)


@pytest.fixture(scope="session")
def observability(
    platform: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observability]:
    """Prometheus (rules, every service scraped) and Alertmanager paging a local receiver."""
    missing = missing_packages()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: bin/setup installs them")
    servers = Observability(platform, tmp_path_factory.mktemp("observability")).start()
    try:
        yield servers
    finally:
        servers.stop()
