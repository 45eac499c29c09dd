"""deploy/k8s/base/kafka/setup.sh (the Kubernetes Job and compose's kafka-setup), run with
stand-ins for Kafka's command-line tools that record how they were called."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass

import pytest

from tests.deploy.tools import KAFKA_ACLS, kafka_acls

SETUP = KAFKA_ACLS.parent / "setup.sh"
TOOLS = ("kafka-acls.sh", "kafka-configs.sh", "kafka-topics.sh")
ADMIN_PASSWORD = "0dminpassw0rd"
ROUTER_PASSWORD = "r0uterpassw0rd"


@dataclass(frozen=True)
class Run:
    calls: list[list[str]]  # each tool's argv, without the options common to all
    output: str
    admin_config: list[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    work = tmp_path_factory.mktemp("kafka-setup")
    calls = work / "calls"
    for tool in TOOLS:
        stub = work / tool
        stub.write_text(f'#!/bin/sh\nprintf "%s\\0" {tool} "$@" >> {calls}\necho >> {calls}\n')
        stub.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "KAFKA_BIN": str(work),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "admin",
        "KAFKA_SASL_PASSWORD": ADMIN_PASSWORD,
        "KAFKA_SSL_CAFILE": "/etc/socialcrm/kafka-ca/ca.crt",
        "KAFKA_PASSWORD_ROUTER": ROUTER_PASSWORD,
        "ACLS": str(KAFKA_ACLS),
        "TOPICS": "social.routed.v1 alerts.v1",
        "TOPIC_PARTITIONS": "12",
        "TOPIC_REPLICATION_FACTOR": "3",
        "TOPIC_RETENTION_HOURS": "168",
        "TMPDIR": str(work),
    }
    result = subprocess.run(
        ["bash", str(SETUP)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    recorded = [
        [arg for arg in line.split("\0") if arg]
        for line in calls.read_text().splitlines()
        if line.strip("\0")
    ]
    admin_config = work / "kafka-admin.properties"
    common = ["--bootstrap-server", "kafka:9092", "--command-config", str(admin_config)]
    for call in recorded:
        assert call[1:5] == common, call
    return Run(
        [[call[0], *call[5:]] for call in recorded],
        result.stdout + result.stderr,
        admin_config.read_text().splitlines(),
    )


def test_every_acl_row_is_applied(run: Run) -> None:
    calls = run.calls
    applied = [call[1:] for call in calls if call[0] == "kafka-acls.sh"]
    expected = []
    for acl in kafka_acls():
        operations = [arg for op in acl.operations for arg in ("--operation", op)]
        expected.append(
            [
                "--add",
                "--allow-principal",
                f"User:{acl.user}",
                "--resource-pattern-type",
                acl.pattern,
                f"--{acl.resource}",
                acl.name,
                *operations,
            ]
        )
    assert applied == expected


def test_only_the_users_given_a_password_are_set(run: Run) -> None:
    calls, output = run.calls, run.output
    users = [call for call in calls if call[0] == "kafka-configs.sh" and "users" in call]
    assert users == [
        [
            "kafka-configs.sh",
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "router",
            "--add-config",
            f"SCRAM-SHA-256=[password={ROUTER_PASSWORD}],SCRAM-SHA-512=[password={ROUTER_PASSWORD}]",
        ]
    ]
    assert "user kpi: KAFKA_PASSWORD_KPI unset" in output
    assert ROUTER_PASSWORD not in output
    assert ADMIN_PASSWORD not in output


def test_topics_and_their_dead_letters_get_a_bounded_retention(
    run: Run,
) -> None:
    calls = run.calls
    created = [call[call.index("--topic") + 1] for call in calls if call[0] == "kafka-topics.sh"]
    assert created == ["social.routed.v1", "social.routed.v1.dlq", "alerts.v1", "alerts.v1.dlq"]
    for call in calls:
        if call[0] == "kafka-topics.sh":
            assert shlex.join(call).endswith("--partitions 12 --replication-factor 3")
        elif "topics" in call:
            assert call[-1] == "cleanup.policy=delete,retention.ms=604800000,segment.ms=86400000"


def test_the_admin_client_authenticates_over_tls(run: Run) -> None:
    properties = run.admin_config
    assert "security.protocol=SASL_SSL" in properties
    assert "ssl.truststore.location=/etc/socialcrm/kafka-ca/ca.crt" in properties
    assert any(
        line.startswith("sasl.jaas.config=") and 'username="admin"' in line for line in properties
    )
