"""Shapes, signature and retry pauses of the external-CRM webhooks (pure)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from socialcrm_crm_sink.external_crm import (
    backoff_delays,
    body_of,
    contact_object,
    signature,
    ticket_object,
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
