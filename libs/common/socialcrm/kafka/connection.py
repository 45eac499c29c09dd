"""How every client of the code base reaches Kafka: the brokers, the client ids, the
security (TLS, SASL) and the base settings of consumers, producers and admin clients.

Kafka is a trust boundary: whoever can write ``router.sla-commands.v1`` answers as any
agent. Building every client here means one set of ``KAFKA_*`` settings authenticates all
of them, and a client that forgot the security settings cannot exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from socialcrm.kafka.partitioner import partition_of
from socialcrm.settings import ServiceSettings


def client_id(settings: ServiceSettings, purpose: str = "") -> str:
    """The service's client id (its replica's, with KAFKA_CLIENT_ID_SUFFIX), and
    ``-purpose`` for a client that does one job aside (a restore, a view)."""
    base = settings.service_name + settings.kafka_client_id_suffix
    return f"{base}-{purpose}" if purpose else base


def security(settings: ServiceSettings) -> dict[str, Any]:
    """The security options of an aiokafka client: the protocol, a TLS context that
    verifies the brokers' certificates and host names, the SASL credentials."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        # A default client context: certificates required, host names checked; the
        # system's CAs unless KAFKA_SSL_CAFILE names the deployment's own.
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile or None,
            certfile=settings.kafka_ssl_certfile or None,
            keyfile=settings.kafka_ssl_keyfile or None,
        )
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def base_options(settings: ServiceSettings, purpose: str = "") -> dict[str, Any]:
    """What every client needs: the brokers, its client id and the security."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": client_id(settings, purpose),
        **security(settings),
    }


def consumer(
    settings: ServiceSettings, *topics: str, purpose: str = "", **options: Any
) -> AIOKafkaConsumer:
    """A consumer (of ``topics`` if given); ``options`` add to or replace the base ones."""
    return AIOKafkaConsumer(*topics, **{**base_options(settings, purpose), **options})


def producer(settings: ServiceSettings, purpose: str = "", **options: Any) -> AIOKafkaProducer:
    """A producer acknowledged by all in-sync replicas, idempotent, that refuses a record
    larger than KAFKA_MAX_MESSAGE_BYTES; ``options`` add to or replace these."""
    return AIOKafkaProducer(
        **{
            **base_options(settings, purpose),
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "max_request_size": settings.kafka_max_message_bytes,
            "partitioner": partition_of,  # Kafka's default, in fewer Python steps
            **options,
        }
    )


def admin(settings: ServiceSettings, purpose: str = "", **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**{**base_options(settings, purpose), **options})


@asynccontextmanager
async def started_admin(
    settings: ServiceSettings, purpose: str = "", **options: Any
) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client, started, closed on leaving."""
    client = admin(settings, purpose, **options)
    try:
        await client.start()
        yield client
    finally:
        await client.close()


async def partitions_of(settings: ServiceSettings, topic: str) -> int:
    """How many partitions ``topic`` has (numbered 0 to n-1); it must exist. A consumer
    only learns the metadata of the topics it reads: this asks the cluster."""
    async with started_admin(settings) as client:
        [described] = await client.describe_topics([topic])
    count = len(described.get("partitions", ())) if not described.get("error_code") else 0
    if not count:
        raise RuntimeError(
            f"topic {topic} has no partitions: does it exist, may this client describe it?"
            f" (error code {described.get('error_code')})"
        )
    return count
