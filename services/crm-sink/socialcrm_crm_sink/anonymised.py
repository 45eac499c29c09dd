"""What an erased person's timeline entries and cases keep (pure).

They stay for the KPIs (channel, language, polarity, queue, times) and lose everything that
leads back to the person: the texts, the contact, and every id derived from the network's
public ids (a timeline entry's id is its event id, itself derived from the post id; a case's
is derived from the conversation id). An anonymised document takes a random id instead, and
keeps only the fields listed here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# The key of the random id a document takes at erasure, kept on it until it has moved, so
# that a retried erasure moves it under the same id.
NEW_ID = "anonymised_id"
# Anonymised documents carry it; those of an older store schema (derived ids) do not.
ID_SCHEME = "random"

ENTRY_FIELDS = (
    "type",
    "channel",
    "brand",
    "is_public",
    "is_private",
    "occurred_at",
    "ingested_at",
    "recorded_at",
    "language",
    "polarity",
    "sentiment_score",
    "intent",
    "queue",
    "status",
    "first_response",
    "first_response_seconds",
    "sla_status",
)
CASE_FIELDS = (
    "channel",
    "brand",
    "status",
    "queue",
    "priority",
    "assignee",
    "sla_deadline",
    "opened_at",
    "last_activity_at",
    "first_response_at",
    "history_dropped",
)


def _blank(erased_at: datetime) -> dict[str, Any]:
    return {"contact_id": None, "conversation_id": "", "erased_at": erased_at, "ids": ID_SCHEME}


def anonymised_entry(
    entry: dict[str, Any], case_ids: dict[str, str], erased_at: datetime
) -> dict[str, Any]:
    """The timeline entry under its new id; its case under the case's new id (if it moved)."""
    kept = {k: entry[k] for k in ENTRY_FIELDS if k in entry}
    case_id = case_ids.get(entry.get("case_id") or "")
    return {
        "_id": entry[NEW_ID],
        **kept,
        **_blank(erased_at),
        "case_id": case_id,
        "text": "",
        "external_id": "",
        "event_id": "",
    }


def anonymised_case(case: dict[str, Any], erased_at: datetime) -> dict[str, Any]:
    kept = {k: case[k] for k in CASE_FIELDS if k in case}
    return {
        "_id": case[NEW_ID],
        **kept,
        **_blank(erased_at),
        "history": [],
        "interaction_event_ids": [],
        "opened_by_event_id": "",
    }


def interaction_key(event_id: str) -> str:
    """The key under which an erased interaction is fingerprinted (its replies are dropped)."""
    return f"interaction:{event_id}"
