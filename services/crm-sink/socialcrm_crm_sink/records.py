"""What the CRM stores for a routed interaction, and the events it announces (pure logic).

Every id is derived from the source event, so replaying an event rebuilds the same
documents and the same CRM events: writes are upserts or inserts that a unique
key makes idempotent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from socialcrm import contract
from socialcrm.v1 import common_pb2, crm_pb2, reply_pb2, routed_pb2
from socialcrm_crm_sink.identities import author_keys, channel_name

_CRM_NAMESPACE = uuid.UUID("0b7d3f0e-5b7a-4f43-8f0c-6a6f0f3f9d21")


def contact_id_for(identity: str) -> str:
    return str(uuid.uuid5(_CRM_NAMESPACE, f"contact/{identity}"))


def case_id_for(channel: common_pb2.Channel.ValueType, conversation_id: str) -> str:
    return str(uuid.uuid5(_CRM_NAMESPACE, f"case/{channel_name(channel)}/{conversation_id}"))


@dataclass(frozen=True)
class CrmWrite:
    """The documents one routed interaction contributes to the CRM."""

    identity: dict[str, Any]
    contact_on_insert: dict[str, Any]
    timeline_entry: dict[str, Any]
    case_id: str | None
    case_on_insert: dict[str, Any]
    occurred_at: datetime
    # Vouched for by the channel: linked, and merged with their holder, automatically.
    strong_identities: list[dict[str, Any]] = field(default_factory=list)
    # Typed by the author: linked when nobody holds them, else a merge suggestion.
    typed_identities: list[dict[str, Any]] = field(default_factory=list)
    # Claimed by an unverified author: a merge suggestion at most, never a link.
    suggested_identities: list[dict[str, Any]] = field(default_factory=list)


def plan_write(routed: routed_pb2.RoutedInteraction) -> CrmWrite:
    interaction = routed.enriched.interaction
    enrichment = routed.enriched.enrichment
    routing = routed.routing
    header = interaction.header
    channel = channel_name(header.channel)
    keys = author_keys(interaction)
    identity = keys.identity["key"]
    contact_id = contact_id_for(identity)
    occurred_at = header.occurred_at.ToDatetime(tzinfo=UTC)
    case_id = (
        case_id_for(header.channel, interaction.conversation_id) if routing.needs_response else None
    )
    return CrmWrite(
        identity=keys.identity,
        contact_on_insert={
            "_id": contact_id,
            "display_name": interaction.author.display_name or interaction.author.handle,
            "created_by_event_id": header.event_id,
            "created_at": occurred_at,
        },
        timeline_entry={
            "_id": f"{header.event_id}:interaction",
            "event_id": header.event_id,
            "contact_id": contact_id,
            "type": "interaction",
            "channel": channel,
            "external_id": header.external_id,
            "conversation_id": interaction.conversation_id,
            "occurred_at": occurred_at,
            "ingested_at": header.ingested_at.ToDatetime(tzinfo=UTC),
            "text": interaction.text,
            "is_public": interaction.is_public,
            "brand": interaction.brand,
            "language": enrichment.language,
            "polarity": common_pb2.Polarity.Name(enrichment.polarity)
            .removeprefix("POLARITY_")
            .lower(),
            "sentiment_score": round(enrichment.sentiment_score, 4),
            "intent": common_pb2.Intent.Name(enrichment.intent).removeprefix("INTENT_").lower(),
            "queue": routing.queue,
            "case_id": case_id,
        },
        case_id=case_id,
        case_on_insert={
            "_id": case_id,
            "contact_id": contact_id,
            "channel": channel,
            "conversation_id": interaction.conversation_id,
            "brand": interaction.brand,
            "status": "new",
            "queue": routing.queue,
            "priority": common_pb2.Priority.Name(routing.priority)
            .removeprefix("PRIORITY_")
            .lower(),
            "sla_deadline": routing.sla_deadline.ToDatetime(tzinfo=UTC),
            "opened_by_event_id": header.event_id,
            "opened_at": occurred_at,
        },
        occurred_at=occurred_at,
        strong_identities=keys.verified,
        typed_identities=keys.typed,
        suggested_identities=keys.suggested,
    )


def crm_events(
    routed: routed_pb2.RoutedInteraction,
    *,
    contact_id: str,
    contact_created_by: str,
    case_id: str | None,
    case_opened_by: str | None,
    case_status: str,
) -> list[crm_pb2.CrmEvent]:
    """CRM events for this interaction: the same list every time the event is replayed."""
    source = routed.header
    enrichment = routed.enriched.enrichment

    def event(kind: int, purpose: str) -> crm_pb2.CrmEvent:
        header = common_pb2.EventHeader()
        header.CopyFrom(source)
        header.event_id = contract.derived_event_id(source.event_id, purpose)
        header.producer = "crm-sink"
        header.schema_version = contract.SCHEMA_VERSION
        return crm_pb2.CrmEvent(
            header=header,
            type=kind,  # type: ignore[arg-type]
            contact_id=contact_id,
            case_id=case_id or "",
            source_event_id=source.event_id,
            queue=routed.routing.queue,
            case_status=case_status,
            polarity=enrichment.polarity,
            language=enrichment.language,
        )

    events = []
    if contact_created_by == source.event_id:
        events.append(event(crm_pb2.CRM_EVENT_TYPE_CONTACT_CREATED, "contact-created"))
    if case_id is not None and case_opened_by == source.event_id:
        events.append(event(crm_pb2.CRM_EVENT_TYPE_CASE_OPENED, "case-opened"))
    events.append(event(crm_pb2.CRM_EVENT_TYPE_INTERACTION_RECORDED, "interaction-recorded"))
    return events


# The router's reply loop names fewer statuses than the CRM case life cycle.
CASE_STATUS_OF_REPLY = {"open": "open", "pending": "pending_customer", "resolved": "resolved"}


@dataclass(frozen=True)
class ReplyWrite:
    """What one reply contributes: a timeline entry next to the interaction it answers."""

    event_id: str
    interaction_event_id: str
    occurred_at: datetime
    agent_id: str
    requested_status: str
    has_text: bool
    timeline_entry: dict[str, Any]


def plan_reply(reply: reply_pb2.Reply) -> ReplyWrite:
    occurred_at = reply.header.occurred_at.ToDatetime(tzinfo=UTC)
    return ReplyWrite(
        event_id=reply.header.event_id,
        interaction_event_id=reply.interaction_event_id,
        occurred_at=occurred_at,
        agent_id=reply.agent_id,
        requested_status=CASE_STATUS_OF_REPLY.get(reply.status, ""),
        has_text=bool(reply.text),
        timeline_entry={
            "_id": f"{reply.header.event_id}:reply",
            "event_id": reply.header.event_id,
            "interaction_event_id": reply.interaction_event_id,
            "type": "reply" if reply.text else "status_change",
            "occurred_at": occurred_at,
            "agent_id": reply.agent_id,
            "text": reply.text,
            "is_private": reply.is_private,
            "status": reply.status,
            "first_response": reply.first_response,
            "first_response_seconds": round(reply.first_response_seconds, 3),
            "sla_status": reply_pb2.SlaStatus.Name(reply.sla_status)
            .removeprefix("SLA_STATUS_")
            .lower(),
            "queue": reply.queue,
        },
    )


def case_status_after_reply(current: str, write: ReplyWrite) -> str:
    """An agent's answer opens a new case; a status sent with it wins; closed stays closed."""
    if current == "closed":
        return current
    if write.requested_status:
        return write.requested_status
    if write.has_text and current == "new":
        return "open"
    return current


def case_updated_event(
    reply: reply_pb2.Reply, *, contact_id: str, case_id: str, case_status: str
) -> crm_pb2.CrmEvent:
    header = common_pb2.EventHeader()
    header.CopyFrom(reply.header)
    header.event_id = contract.derived_event_id(reply.header.event_id, "case-updated")
    header.producer = "crm-sink"
    header.schema_version = contract.SCHEMA_VERSION
    return crm_pb2.CrmEvent(
        header=header,
        type=crm_pb2.CRM_EVENT_TYPE_CASE_UPDATED,
        contact_id=contact_id,
        case_id=case_id,
        source_event_id=reply.header.event_id,
        queue=reply.queue,
        case_status=case_status,
    )


def case_changed_by_agent(case: dict[str, Any]) -> crm_pb2.CrmEvent:
    """The CASE_UPDATED event of an agent's change through the API (its last history entry)."""
    changed_at: datetime = case["history"][-1]["at"]
    header = common_pb2.EventHeader(
        event_id=contract.derived_event_id(case["_id"], f"case-updated/{changed_at.isoformat()}"),
        external_id=f"case:{case['_id']}",
        producer="crm-sink",
        schema_version=contract.SCHEMA_VERSION,
    )
    header.occurred_at.CopyFrom(contract.timestamp(changed_at))
    header.ingested_at.CopyFrom(contract.timestamp(changed_at))
    return crm_pb2.CrmEvent(
        header=header,
        type=crm_pb2.CRM_EVENT_TYPE_CASE_UPDATED,
        contact_id=case.get("contact_id") or "",
        case_id=case["_id"],
        queue=case.get("queue", ""),
        case_status=case["status"],
    )
