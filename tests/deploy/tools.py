"""Paths and tool look-up shared by the deployment tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_BIN = REPO / ".cache" / "bin"


@dataclass(frozen=True)
class Service:
    """One microservice: its directory, Python package and HTTP port."""

    name: str
    port: int

    @property
    def package(self) -> str:
        return "socialcrm_" + self.name.replace("-", "_")

    @property
    def directory(self) -> Path:
        return REPO / "services" / self.name


SERVICES = (
    Service("ingest", 8001),
    Service("sentiment", 8002),
    Service("router", 8003),
    Service("crm-sink", 8004),
    Service("kpi", 8005),
    Service("workspace", 8006),
)


def find_tool(name: str) -> str | None:
    """``name`` on PATH, else in .cache/bin where bin/setup installs tools; None if absent."""
    found = shutil.which(name)
    if found:
        return found
    cached = CACHE_BIN / name
    return str(cached) if cached.is_file() else None


KAFKA_ACLS = REPO / "deploy" / "k8s" / "base" / "kafka" / "acls.txt"


@dataclass(frozen=True)
class KafkaAcl:
    """One row of deploy/k8s/base/kafka/acls.txt: ``user`` may do ``operations`` on the
    ``resource`` (topic, group, transactional-id) named ``name`` (literal or prefixed)."""

    user: str
    resource: str
    pattern: str
    name: str
    operations: tuple[str, ...]


def kafka_acls() -> list[KafkaAcl]:
    rows = []
    for line in KAFKA_ACLS.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, resource, pattern, name, operations = line.split()
        rows.append(KafkaAcl(user, resource, pattern, name, tuple(operations.split(","))))
    return rows
