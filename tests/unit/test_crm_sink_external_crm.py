"""Shapes, signature, retry pauses and redaction of the external-CRM webhooks (pure)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from socialcrm_crm_sink.external_crm import (
    backoff_delays,
    body_of,
    contact_object,
    redact,
    retry_after_seconds,
    signature,
    ticket_object,
    url_secrets,
)

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_a_contact_as_a_hubspot_object() -> None:
    contact = {
        "_id": "c1",
        "display_name": "Jean Dupont",
        "created_at": AT,
        "identities": [
            {"key": "x:jdupont", "channel": "x", "handle": "jdupont"},
            {"key": "email:jean@example.com", "channel": "email", "handle": "jean@example.com"},
        ],
    }
    obj = contact_object(contact)
    assert obj["id"] == "c1"
    assert obj["createdAt"] == "2026-03-01T09:00:00Z"
    assert obj["properties"]["firstname"] == "Jean"
    assert obj["properties"]["lastname"] == "Dupont"
    assert obj["properties"]["email"] == "jean@example.com"
    assert obj["properties"]["twitterhandle"] == "jdupont"


def test_a_case_as_a_hubspot_ticket() -> None:
    case = {
        "_id": "k1",
        "contact_id": "c1",
        "status": "pending_customer",
        "priority": "high",
        "queue": "customer-service-fr",
        "channel": "x",
        "opened_at": AT,
        "sla_deadline": AT,
    }
    ticket = ticket_object(case)
    assert ticket["properties"]["hs_pipeline_stage"] == "2"
    assert ticket["properties"]["hs_ticket_priority"] == "HIGH"
    assert ticket["associations"] == {"contacts": ["c1"]}
    assert ticket["archived"] is False


def test_signature_covers_timestamp_and_body() -> None:
    body = body_of({"b": 1, "a": "é"})
    expected = hmac.new(b"key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("key", 1_700_000_000, body) == f"sha256={expected}"
    assert signature("key", 1_700_000_001, body) != signature("key", 1_700_000_000, body)


def test_pauses_double_up_to_a_cap() -> None:
    assert backoff_delays(0.5, 5) == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delays(10, 5) == [10, 20, 30, 30]
    assert backoff_delays(1, 1) == []


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("", 0.0),
        ("7", 7.0),
        ("99999999999", 30.0),  # 3,170 years
        ("9" * 5000, 30.0),
        ("Sun, 06 Dec 2026 12:00:20 GMT", 20.0),
        ("Sun, 06 Dec 3026 12:00:00 GMT", 30.0),
        ("Sun, 06 Dec 2020 12:00:00 GMT", 0.0),
        ("-5", 0.0),
        ("soon", 0.0),
        ("x" * 10_000, 0.0),
        ("٣", 0.0),  # a digit, but not an ASCII one
    ],
)
def test_a_retry_after_waits_at_most_the_ceiling(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW, ceiling=30.0) == seconds


def test_credentials_of_the_url_are_redacted() -> None:
    url = "https://sync:p%40ss-word@crm.example/hooks?token=t0k%2Fen&v=1"
    secrets = url_secrets(url)
    line = f"HTTP Request: POST {url} failed; token t0k/en"
    redacted = redact(line, secrets)
    for secret in ("p%40ss-word", "p@ss-word", "t0k%2Fen", "t0k/en", "sync"):
        assert secret not in redacted
    assert "crm.example/hooks" in redacted
