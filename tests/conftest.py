"""Session fixtures: real Kafka and MongoDB-protocol servers, and the whole platform.

They are started once per test session (per xdist worker), on free ports in a temporary
folder, and only when a test asks for them (unit tests start nothing). The platform has
servers of its own: the integration tests publish thousands of events (fuzzed chats,
backfills, events with past SLA deadlines) on the contract's topics of ``infra``, which a
platform reading them would have to work through for minutes, whatever the test order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler.protocol import Scheduling

from socialcrm_devstack.infra import KafkaBroker, MongoServer
from socialcrm_devstack.observability import Observability, missing_packages
from socialcrm_devstack.processes import PORT_RANGE_ENV, free_ports
from socialcrm_devstack.stack import SERVICES, LocalStack
from socialcrm_kpi.settings import DEFAULT_QUEUES
from tests.fixtures.otlp import TraceReceiver
from tests.fixtures.parallel import LongestFirstScheduling, group_and_order, worker_port_range

REPO = Path(__file__).resolve().parents[1]
# Queues of the end-to-end KPI tests, each test's own: kpi counts only known queues.
E2E_QUEUES = ("e2e-dashboards", "e2e-views")


@dataclass(frozen=True)
class Infra:
    kafka: KafkaBroker
    mongo: MongoServer
    work_dir: Path


def pytest_configure() -> None:
    # Each xdist worker, and every server its tests start, picks ports in its own share.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
        os.environ[PORT_RANGE_ENV] = worker_port_range(worker, workers)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    group_and_order(items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    if config.getvalue("dist") == "loadgroup":
        return LongestFirstScheduling(config, log)
    return None


def started_infra(work_dir: Path) -> Iterator[Infra]:
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
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    yield from started_infra(tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def platform_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    yield from started_infra(tmp_path_factory.mktemp("platform-infra"))


@pytest.fixture(scope="session")
def traces() -> Iterator[TraceReceiver]:
    receiver = TraceReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def platform(platform_infra: Infra, traces: TraceReceiver) -> Iterator[LocalStack]:
    # Every service exports its spans by OTLP, as in production, to the test's receiver.
    tracing = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces.traces_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    stack = LocalStack(
        platform_infra.work_dir / "platform",
        ephemeral_ports=True,
        kafka=platform_infra.kafka,
        mongo=platform_infra.mongo,
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
