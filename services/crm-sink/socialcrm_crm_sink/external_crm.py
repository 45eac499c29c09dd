"""What the external-CRM connector sends (pure): HubSpot-shaped objects, signed.

Contacts and tickets look like HubSpot's CRM v3 objects (``id``, ``properties``,
``createdAt``, ``updatedAt``, ``archived``) inside a webhook envelope naming the change, so a
receiver can map them with the code it already has for that CRM. The body is signed like
Stripe's webhooks: HMAC-SHA256 of ``<timestamp>.<body>``, so a replayed old request fails.
What the receiver answers is bounded here too: its ``Retry-After``, and the secrets its
errors might echo (redacted).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from socialcrm.v1 import crm_pb2

SIGNATURE_HEADER = "X-SocialCRM-Signature-256"
TIMESTAMP_HEADER = "X-SocialCRM-Timestamp"

# HubSpot's default ticket pipeline stages.
TICKET_STAGES = {
    "new": "1",
    "open": "3",
    "pending_customer": "2",
    "resolved": "4",
    "closed": "4",
}
TICKET_PRIORITIES = {"low": "LOW", "normal": "MEDIUM", "high": "HIGH", "urgent": "HIGH"}
CONTACT_PROPERTIES_OF_IDENTITY = {
    "email": "email",
    "phone": "phone",
    "x": "twitterhandle",
    "customer_number": "customer_number",
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def contact_object(contact: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"socialcrm_contact_id": contact["_id"]}
    first, _, last = str(contact.get("display_name", "")).partition(" ")
    properties["firstname"], properties["lastname"] = first, last
    for identity in contact.get("identities", []):
        name = CONTACT_PROPERTIES_OF_IDENTITY.get(identity.get("channel", ""))
        if name and name not in properties:
            properties[name] = identity.get("handle", "")
    properties["socialcrm_identities"] = ";".join(i["key"] for i in contact.get("identities", []))
    return {
        "id": contact["_id"],
        "properties": properties,
        "createdAt": _iso(contact.get("created_at")),
        "updatedAt": _iso(contact.get("merged_at") or contact.get("created_at")),
        "archived": False,
    }


def ticket_object(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": case["_id"],
        "properties": {
            "subject": f"{case.get('channel', '')} conversation ({case.get('queue', '')})",
            "hs_pipeline": "0",
            "hs_pipeline_stage": TICKET_STAGES.get(case["status"], "1"),
            "hs_ticket_priority": TICKET_PRIORITIES.get(case.get("priority", ""), "MEDIUM"),
            "socialcrm_status": case["status"],
            "socialcrm_queue": case.get("queue", ""),
            "socialcrm_channel": case.get("channel", ""),
            "socialcrm_sla_deadline": _iso(case.get("sla_deadline")),
            "socialcrm_first_response_at": _iso(case.get("first_response_at")),
            "socialcrm_assignee": case.get("assignee", ""),
        },
        "associations": {"contacts": [case["contact_id"]] if case.get("contact_id") else []},
        "createdAt": _iso(case.get("opened_at")),
        "updatedAt": _iso(case.get("last_activity_at") or case.get("opened_at")),
        "archived": case["status"] == "closed",
    }


def envelope(
    event: crm_pb2.CrmEvent, subscription: str, object_type: str, obj: dict[str, Any]
) -> dict[str, Any]:
    return {
        "eventId": event.header.event_id,
        "subscriptionType": subscription,
        "objectType": object_type,
        "objectId": obj["id"],
        "occurredAt": event.header.occurred_at.ToMilliseconds(),
        "object": obj,
    }


def privacy_deletion(event: crm_pb2.CrmEvent) -> dict[str, Any]:
    """HubSpot's GDPR deletion notice: the receiver deletes the contact it mirrors."""
    return {
        "eventId": event.header.event_id,
        "subscriptionType": "contact.privacyDeletion",
        "objectType": "contact",
        "objectId": event.contact_id,
        "occurredAt": event.header.occurred_at.ToMilliseconds(),
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff_delays(first: float, attempts: int, cap: float = 30.0) -> list[float]:
    """Pauses between ``attempts`` tries: doubling from ``first``, at most ``cap``."""
    return [min(first * 2**n, cap) for n in range(max(attempts - 1, 0))]


# A longer HTTP-date is no date: not parsed at all.
_MAX_DATE_LENGTH = 64
REDACTED = "[redacted]"


def retry_after_seconds(value: str, *, now: datetime, ceiling: float) -> float:
    """The pause a ``Retry-After`` asks for (delay-seconds or an HTTP-date), at most ``ceiling``.

    A receiver's answer decides nothing unbounded: a delay of a thousand years (or of a
    5,000-digit number) waits ``ceiling``; a date in the past, or garbage, waits nothing.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) <= 12 else math.inf
    elif 0 < len(value) <= _MAX_DATE_LENGTH:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return 0.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    else:
        return 0.0
    return min(max(seconds, 0.0), ceiling)


def url_secrets(url: str) -> list[str]:
    """What in the receiver's URL is a credential: its user info and its query values."""
    parts = urlsplit(url)
    found = [parts.password or "", parts.username or ""]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    # As written in the URL too (percent-encoded), which is how an HTTP log line shows it.
    found += [pair.partition("=")[2] for pair in parts.query.split("&")]
    return [f for f in found if len(f) >= 4]


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text
