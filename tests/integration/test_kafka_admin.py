"""The shared Kafka admin helper against the real Kafka broker: topics are created once, a
refusal is an error."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from socialcrm.kafka.admin import ensure_topics
from socialcrm.settings import ServiceSettings
from tests.conftest import Infra

pytestmark = pytest.mark.integration


async def test_topics_named_twice_are_created_once_and_a_refusal_is_an_error(
    infra: Infra,
) -> None:
    settings = ServiceSettings(
        service_name="it-topics", kafka_bootstrap_servers=infra.kafka.bootstrap
    )
    topic = f"it.topics-{uuid.uuid4().hex[:8]}.v1"
    await ensure_topics(settings, [topic, topic])
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka.bootstrap)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    with pytest.raises(RuntimeError, match=r"it\.topics! bad: "):
        await ensure_topics(settings, ["it.topics! bad"])
