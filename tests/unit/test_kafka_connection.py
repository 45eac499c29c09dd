"""socialcrm.kafka.connection and the KAFKA_* settings: what every client is built with."""

from __future__ import annotations

import ssl
from typing import Any

import certifi
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from socialcrm.kafka import connection
from socialcrm.kafka.consumer import group_consumer
from socialcrm.kafka.partitioner import partition_of
from socialcrm.settings import ServiceSettings, help_epilog

PASSWORD = "s3cret-never-shown"


def sasl_ssl(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "service_name": "router",
        "kafka_bootstrap_servers": "kafka-1:9093,kafka-2:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_sasl_username": "router",
        "kafka_sasl_password": PASSWORD,
        "kafka_ssl_cafile": certifi.where(),
    }
    return ServiceSettings(**{**values, **overrides})


def test_plaintext_is_the_local_default() -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers="127.0.0.1:9092",
        kafka_client_id_suffix="-0",
        kafka_security_protocol="PLAINTEXT",
    )
    assert connection.base_options(settings) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "client_id": "socialcrm-0",
        "security_protocol": "PLAINTEXT",
    }


def test_client_ids_name_the_replica_and_the_purpose() -> None:
    settings = ServiceSettings(service_name="router", kafka_client_id_suffix="-router-7f9c")
    assert connection.client_id(settings) == "router-router-7f9c"
    assert connection.client_id(settings, "restore") == "router-router-7f9c-restore"


def test_sasl_ssl_verifies_the_brokers_and_authenticates() -> None:
    options = connection.security(sasl_ssl())
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "router",
        "sasl_plain_password": PASSWORD,
    }


def test_ssl_without_sasl_sends_no_credentials() -> None:
    settings = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=certifi.where())
    options = connection.security(settings)
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert not {key for key in options if key.startswith("sasl")}


def test_sasl_plaintext_has_no_tls() -> None:
    options = connection.security(
        sasl_ssl(kafka_security_protocol="SASL_PLAINTEXT", kafka_ssl_cafile="")
    )
    assert "ssl_context" not in options
    assert options["sasl_plain_username"] == "router"


async def test_every_kind_of_client_gets_the_security() -> None:
    settings = sasl_ssl()
    clients = [
        connection.consumer(settings, "social.routed.v1", group_id="router"),
        connection.producer(settings),
        connection.admin(settings),
    ]
    try:
        for client in clients:
            inner = client.client if isinstance(client, AIOKafkaProducer) else client._client
            assert inner._security_protocol == "SASL_SSL"
            assert inner._sasl_plain_username == "router"
            assert inner._ssl_context is not None
    finally:
        await clients[0].stop()
        await clients[1].stop()
        await clients[2].close()


async def test_a_stream_fetch_waits_for_a_few_records_worth() -> None:
    consumer = group_consumer(ServiceSettings(consumer_fetch_max_wait_ms=30), "router")
    try:
        assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (65536, 30)
    finally:
        await consumer.stop()


async def test_producer_defaults_and_options() -> None:
    settings = ServiceSettings(kafka_max_message_bytes=2_000_000)
    producer = connection.producer(settings, transactional_id="kpi")
    try:
        assert producer._max_request_size == 2_000_000
        assert producer._txn_manager is not None  # idempotent, and transactional as asked
        assert producer._txn_manager.transactional_id == "kpi"
        assert producer._partitioner is partition_of
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"kafka_sasl_username": ""}, ["KAFKA_SASL_USERNAME"]),
        ({"kafka_sasl_password": ""}, ["KAFKA_SASL_PASSWORD"]),
        (
            {"kafka_sasl_username": "", "kafka_sasl_password": ""},
            ["KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"],
        ),
    ],
)
def test_sasl_without_credentials_fails_at_start(
    overrides: dict[str, str], names: list[str]
) -> None:
    with pytest.raises(ValidationError) as raised:
        sasl_ssl(**overrides)
    for name in names:
        assert name in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"kafka_security_protocol": "PLAINTEXT", "kafka_ssl_cafile": ""}, "has no SASL"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT"},
            "KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT",
        ),
        ({"kafka_ssl_certfile": "/run/client.pem"}, "go together"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "kafka_sasl_mechanism"),
        ({"kafka_security_protocol": "SASL_SSLX"}, "kafka_security_protocol"),
    ],
)
def test_half_configured_security_is_refused(overrides: dict[str, str], expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        sasl_ssl(**overrides)
    assert expected in str(raised.value)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(ValidationError) as raised:
        sasl_ssl(kafka_sasl_username="")
    assert PASSWORD not in str(raised.value)


def test_the_password_stays_out_of_repr_and_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", PASSWORD)
    settings = ServiceSettings()
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in help_epilog(ServiceSettings)
    assert "KAFKA_SECURITY_PROTOCOL" in help_epilog(ServiceSettings)
