"""The container images and docker-compose.yml: valid, consistent with the services.

No Docker engine is needed: ``docker-compose config`` (Debian package docker-compose)
validates the file offline and the Dockerfiles are checked as text.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from socialcrm import contract
from tests.deploy.tools import REPO, SERVICES, Service, find_tool

COMPOSE_FILE = REPO / "docker-compose.yml"
SERVICE_IDS = [s.name for s in SERVICES]


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def dockerfile(service: Service) -> str:
    return (service.directory / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def test_every_service_directory_is_covered() -> None:
    on_disk = {p.parent.name for p in (REPO / "services").glob("*/pyproject.toml")}
    assert on_disk == set(SERVICE_IDS)


def test_compose_file_is_valid() -> None:
    binary = find_tool("docker-compose")
    if binary is None:
        pytest.skip(
            "docker-compose not found: bin/setup installs the Debian package docker-compose"
        )
    result = subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_compose_builds_and_wires_each_service(service: Service) -> None:
    spec = load_compose()["services"][service.name]
    assert spec["build"] == {"context": ".", "dockerfile": f"services/{service.name}/Dockerfile"}
    assert spec["image"] == f"ghcr.io/socialcrm/{service.name}:0.1.0"
    env = spec["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert_kafka_client(spec, service.name)
    assert env["HTTP_PORT"] == str(service.port)
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert spec["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert spec["depends_on"]["kafka-setup"] == {"condition": "service_completed_successfully"}
    assert f"{service.port}:{service.port}" in spec["ports"]
    if service.name == "crm-sink":
        assert "replicaSet=rs0" in env["MONGODB_URI"]
        assert spec["depends_on"]["mongodb"] == {"condition": "service_healthy"}


def assert_kafka_client(spec: dict[str, Any], user: str) -> None:
    """A client of the compose broker: its own user over SASL_SSL, the password from the
    shell or .env, the CA and not the broker's key."""
    env = spec["environment"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SSL_CAFILE"] == "/etc/socialcrm/kafka-ca/ca.crt"
    assert env["KAFKA_SASL_USERNAME"] == user
    variable = "KAFKA_PASSWORD_" + user.upper().replace("-", "_")
    assert env["KAFKA_SASL_PASSWORD"] == f"${{{variable}:-}}"
    assert "kafka-ca:/etc/socialcrm/kafka-ca:ro" in spec["volumes"]
    assert not [v for v in spec["volumes"] if v.startswith("kafka-tls:")]


def test_compose_pollers_are_ingest_kafka_clients() -> None:
    assert_kafka_client(load_compose()["services"]["ingest-poller"], "ingest")


def test_compose_kafka_authenticates_every_client() -> None:
    services = load_compose()["services"]
    broker = services["kafka"]
    assert broker["entrypoint"] == ["/bin/bash", "/etc/socialcrm/compose/kafka-broker.sh"]
    script = (REPO / "deploy" / "compose" / "kafka-broker.sh").read_text()
    listeners = re.search(r"^listeners=(.*)$", script, re.MULTILINE)
    protocols = re.search(r"^listener.security.protocol.map=(.*)$", script, re.MULTILINE)
    assert listeners
    assert protocols
    assert listeners[1] == "BROKER://:9092,HOST://:29092,CONTROLLER://127.0.0.1:9093"
    # PLAINTEXT only for the controller, on the container's own loopback.
    assert protocols[1] == "BROKER:SASL_SSL,HOST:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in (
        script
    )
    assert "process.roles=broker,controller" in script
    assert "--command-config" in " ".join(broker["healthcheck"]["test"])
    assert broker["depends_on"]["kafka-tls"] == {"condition": "service_completed_successfully"}
    setup = services["kafka-setup"]
    assert "./deploy/k8s/base/kafka:/etc/socialcrm/kafka-setup:ro" in setup["volumes"]
    assert setup["environment"]["TOPICS"].split() == [
        t for t in contract.all_topics() if not t.endswith(contract.DLQ_SUFFIX)
    ]
    for name, spec in services.items():
        for variable, value in (spec.get("environment") or {}).items():
            if "PASSWORD" in variable and name != "grafana":
                assert str(value).startswith("${KAFKA_PASSWORD_"), f"{name} {variable}"


def test_compose_infrastructure() -> None:
    services = load_compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    mongo = services["mongodb"]
    assert mongo["image"].startswith("mongo:8")
    assert "--replSet" in mongo["command"]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    for name in ("kafka", "mongodb"):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck for depends_on"
    for name in ("prometheus", "alertmanager", "grafana", "otel-collector", "jaeger"):
        assert name in services


def test_compose_bind_mounts_exist() -> None:
    for name, spec in load_compose()["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_dockerfile(service: Service) -> None:
    text = dockerfile(service)
    steps = instructions(text)
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder stage and a runtime stage"
    assert re.search(r"\bAS builder\b", froms[0], re.IGNORECASE)
    final_stage = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} runs as root"
    assert any(k == "COPY" and "--from=builder" in a for k, a in final_stage)
    assert not any(
        k == "RUN" and re.search(r"apt-get|gcc|build-essential", a) for k, a in final_stage
    )
    healthchecks = [args for keyword, args in final_stage if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert str(service.port) in healthchecks[0]
    assert ("EXPOSE", str(service.port)) in final_stage
    assert ("CMD", f'["python", "-m", "{service.package}"]') in final_stage
    assert (service.directory / service.package / "__main__.py").is_file()
    assert f"COPY services/{service.name} services/{service.name}" in text
    assert "--constraint constraints.txt" in text
    assert "Build context: the repository root" in text


def test_dockerfiles_differ_only_by_service() -> None:
    def generic(service: Service) -> str:
        text = dockerfile(service)
        for value, placeholder in (
            (service.package, "@PACKAGE@"),
            (service.name, "@SERVICE@"),
            (str(service.port), "@PORT@"),
        ):
            text = text.replace(value, placeholder)
        return text

    first, *others = SERVICES
    for other in others:
        assert generic(other) == generic(first), (
            f"{other.name} Dockerfile drifted from {first.name}"
        )


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".cache", "tests", "bench", "**/__pycache__", "**/*.egg-info"):
        assert needed in patterns
    for copied in ("constraints.txt", "libs", "services"):
        assert copied not in patterns
    assert Path(REPO / "constraints.txt").is_file()
