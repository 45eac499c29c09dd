"""Round two, finding 5: Kafka is a trust boundary.

Anyone who could reach the broker wrote a forged agent's reply on
``router.sla-commands.v1``. Against a real broker with a SASL_PLAINTEXT SCRAM listener and
the deployments' ACLs (deploy/k8s/base/kafka/acls.txt, StandardAuthorizer), a client is
refused without credentials or with a wrong password; a service's client, built by
``socialcrm.kafka.connection`` from its KAFKA_* settings, produces and consumes its own
topics, and is refused on another service's.

One broker for the module (its start is printed: about 10-20 s on a quiet machine).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Iterator

import pytest
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from aiokafka.protocol.admin import CreateAclsRequest

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.kafka.admin import ensure_compacted_topic, ensure_topics
from socialcrm.kafka.consumer import group_consumer
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import enriched_pb2, routed_pb2
from socialcrm_devstack.infra import KafkaBroker
from socialcrm_devstack.processes import free_port
from tests.deploy.tools import KafkaAcl, kafka_acls

# Kafka's protocol codes (org.apache.kafka.common.acl, .resource).
_RESOURCE = {"topic": 2, "group": 3, "transactional-id": 5}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {"Read": 3, "Write": 4, "Create": 5, "Describe": 8}
_ALLOW = 3

USERS = ("router", "sentiment")
COMMANDS = contract.topic_of(routed_pb2.SlaCommand)
ENRICHED = contract.topic_of(enriched_pb2.EnrichedInteraction)
REFUSAL_DEADLINE_S = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    users = {name: secrets.token_hex(16) for name in ("admin", *USERS)}
    kafka = KafkaBroker(tmp_path_factory.mktemp("kafka-sasl"), port=free_port(), scram_users=users)
    started = time.monotonic()
    kafka.start()
    print(f"\n[kafka-auth] SASL broker started in {time.monotonic() - started:.1f}s")
    try:
        asyncio.run(_prepare(kafka.client_settings(), kafka_acls()))
        yield kafka
    finally:
        kafka.stop()


async def _prepare(admin: ServiceSettings, acls: list[KafkaAcl]) -> None:
    """As the deployments' setup does: the topics, then the ACLs of the table."""
    await ensure_topics(admin, contract.all_topics())
    await ensure_compacted_topic(admin, "router.sla-state.v2")
    async with connection.started_admin(admin) as client:
        for acl in acls:
            if acl.user not in USERS:
                continue
            for operation in acl.operations:
                response = await client._send_request(
                    CreateAclsRequest(
                        _RESOURCE[acl.resource],
                        acl.name,
                        _PATTERN[acl.pattern],
                        f"User:{acl.user}",
                        "*",
                        _OPERATION[operation],
                        _ALLOW,
                    )
                )
                for error_code, message in response.creation_responses:
                    assert error_code == 0, f"{acl}: {operation}: {message}"


async def _refused(settings: ServiceSettings) -> None:
    """A producer built from ``settings`` fails at start, within the deadline."""
    producer = connection.producer(settings, request_timeout_ms=5000)
    try:
        async with asyncio.timeout(REFUSAL_DEADLINE_S):
            with pytest.raises(KafkaError):
                await producer.start()
    finally:
        await producer.stop()


async def test_a_client_without_credentials_is_refused(broker: KafkaBroker) -> None:
    anonymous = ServiceSettings(
        kafka_bootstrap_servers=broker.bootstrap, kafka_security_protocol="PLAINTEXT"
    )
    await _refused(anonymous)


async def test_a_wrong_password_is_refused(
    broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await _refused(broker.client_settings("router", password=secrets.token_hex(16)))
    said = [record.getMessage() for record in caplog.records]
    assert any("SaslAuthenticationFailed" in message for message in said), said


async def test_a_service_produces_and_consumes_its_topics_with_its_credentials(
    broker: KafkaBroker,
) -> None:
    router = broker.client_settings("router")
    topic = COMMANDS
    marker = uuid.uuid4().hex.encode()
    producer = connection.producer(router)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"command", key=marker)
    finally:
        await producer.stop()
    consumer = group_consumer(router, group_id=f"router-{marker.decode()}")
    await consumer.start()
    try:
        consumer.subscribe([topic])
        async with asyncio.timeout(30):
            seen: list[bytes | None] = []
            while marker not in seen:
                batches = await consumer.getmany(timeout_ms=500)
                seen += [r.key for records in batches.values() for r in records]
        await consumer.commit()
        assert sent.topic == topic
    finally:
        await consumer.stop()


@pytest.mark.parametrize("user", USERS)
async def test_a_service_starts_under_its_acls(broker: KafkaBroker, user: str) -> None:
    """What a service does at start: finds every topic (none looks missing, none is
    created), and a stateful one finds its changelog and the partitions of its input."""
    settings = broker.client_settings(user)
    await ensure_topics(settings, contract.all_topics())
    if user == "router":
        await ensure_compacted_topic(settings, "router.sla-state.v2")
        assert await connection.partitions_of(settings, ENRICHED) >= 1


async def test_a_service_cannot_write_another_services_topic(broker: KafkaBroker) -> None:
    """The finding's attack: a forged command on the router's command topic, now from a
    client authenticated as sentiment, which may write social.enriched.v1 only."""
    sentiment = broker.client_settings("sentiment")
    producer = connection.producer(sentiment)
    await producer.start()
    try:
        await producer.send_and_wait(ENRICHED, b"enriched", key=b"k")
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(COMMANDS, b"forged", key=b"k")
    finally:
        await producer.stop()
