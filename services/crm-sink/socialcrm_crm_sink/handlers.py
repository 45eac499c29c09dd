"""What the CRM sink does, for the stream and for the API; raises the domain errors of
``errors`` (the API maps them to statuses) and knows nothing of HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm.kafka.producer import EventProducer
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_crm_sink.erasure_publisher import ErasurePublisher
from socialcrm_crm_sink.errors import InteractionNotRecordedYet, InvalidRequest, UnknownInteraction
from socialcrm_crm_sink.identities import IdentityKind, manual_identity
from socialcrm_crm_sink.records import (
    case_changed_by_agent,
    case_updated_event,
    crm_events,
    plan_reply,
    plan_write,
)
from socialcrm_crm_sink.store import CrmStore
from socialcrm_crm_sink.suggestions import STATUSES
from socialcrm_crm_sink.writes import Recorded


def announced(routed: routed_pb2.RoutedInteraction, recorded: Recorded | None) -> Sequence[Message]:
    """The CRM events of a recorded interaction (none for an erased person's)."""
    if recorded is None:
        return []
    return crm_events(
        routed,
        contact_id=recorded.contact_id,
        contact_created_by=recorded.contact_created_by,
        case_id=recorded.case_id,
        case_opened_by=recorded.case_opened_by,
        case_status=recorded.case_status,
    )


class CrmHandlers:
    """Records routed interactions and replies in ``store``; serves the API's reads and
    changes, announcing agents' case changes with ``producer`` and erasures with ``erasure``.

    A reply may wait ``reply_wait_seconds`` for its interaction (retried meanwhile).
    """

    def __init__(
        self,
        store: CrmStore,
        erasure: ErasurePublisher,
        producer: EventProducer,
        *,
        reply_wait_seconds: float,
    ) -> None:
        self.store = store
        self.erasure = erasure
        self.producer = producer
        self.reply_wait_seconds = reply_wait_seconds

    async def handle_routed(
        self, routed: routed_pb2.RoutedInteraction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return announced(routed, await self.store.record(plan_write(routed)))

    async def handle_routed_batch(
        self,
        batch: Sequence[tuple[routed_pb2.RoutedInteraction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        # Searching a batch's texts for keys is linear but not free (a few milliseconds per
        # long message): a worker thread does it, so that the API goes on answering.
        writes = await asyncio.to_thread(lambda: [plan_write(routed) for routed, _ in batch])
        recorded = await self.store.record_many(writes)
        return [announced(routed, r) for (routed, _), r in zip(batch, recorded, strict=True)]

    async def handle_reply(
        self, reply: reply_pb2.Reply, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        write = plan_reply(reply)
        recorded = await self.store.record_reply(write)
        if recorded is None:
            waited = (datetime.now(UTC) - write.occurred_at).total_seconds()
            if waited < self.reply_wait_seconds:
                raise InteractionNotRecordedYet(reply.interaction_event_id)
            raise UnknownInteraction(
                f"interaction {reply.interaction_event_id} is not in the CRM "
                f"{waited:.0f}s after its reply"
            )
        if not (recorded.status_changed and recorded.case_id):
            return []
        return [
            case_updated_event(
                reply,
                contact_id=recorded.contact_id,
                case_id=recorded.case_id,
                case_status=recorded.case_status,
            )
        ]

    async def contact(self, contact_id: str, *, limit: int, cursor: int) -> dict[str, Any]:
        return await self.store.contact_view(contact_id, limit=limit, cursor=cursor)

    async def search(
        self, *, handle: str | None, email: str | None, name: str | None, limit: int
    ) -> list[dict[str, Any]]:
        if not (handle or email or name):
            raise InvalidRequest("give one of the query parameters handle, email or name")
        return await self.store.search(handle=handle, email=email, name=name, limit=limit)

    async def cases(self, *, queue: str | None, status: str | None, limit: int) -> list[Any]:
        return await self.store.cases(queue=queue, status=status, limit=limit)

    async def update_case(
        self,
        case_id: str,
        *,
        status: str | None,
        assignee: str | None,
        note: str | None,
        actor: str,
    ) -> dict[str, Any]:
        """Apply an agent's change, then announce it (CASE_UPDATED) before answering."""
        case = await self.store.update_case(
            case_id, status=status, assignee=assignee, note=note, actor=actor
        )
        await self.producer.publish_and_wait(case_changed_by_agent(case))
        return case

    async def link_identity(self, contact_id: str, kind: str, value: str) -> dict[str, Any]:
        linkable = [k for k in IdentityKind if k.linkable_by_hand]
        if kind not in linkable:
            raise InvalidRequest(f"kind must be one of {', '.join(linkable)}")
        identity = manual_identity(kind, value)
        if identity is None:
            raise InvalidRequest(
                "value is empty after normalisation (blanks and a leading @ removed)"
            )
        return await self.store.link(contact_id, identity)

    async def merge(self, contact_id: str, other_contact_id: str) -> dict[str, Any]:
        return await self.store.merge(contact_id, other_contact_id)

    async def merge_suggestions(self, *, status: str | None, limit: int) -> list[dict[str, Any]]:
        if status and status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
        return await self.store.suggestions.listed(status=status, limit=limit)

    async def accept_suggestion(self, suggestion_id: str, *, actor: str) -> dict[str, Any]:
        return await self.store.accept_suggestion(suggestion_id, actor=actor)

    async def reject_suggestion(self, suggestion_id: str, *, actor: str) -> dict[str, Any]:
        return await self.store.suggestions.claim(suggestion_id, status="rejected", actor=actor)

    async def export(self, contact_id: str) -> dict[str, Any]:
        return await self.store.export(contact_id)

    async def erase(self, contact_id: str) -> dict[str, Any]:
        """Erase the person everywhere; the contact ids erased and the tombstones sent."""
        plan = await self.store.plan_erasure(contact_id)
        # Tombstones first: if the store then fails, a retry of the request finds the person
        # again and finishes; the other order could leave downstream copies nobody erases.
        tombstones = await self.erasure.forget(plan)
        await self.store.erase(plan)
        await self.erasure.announce(plan)
        return {"erased_contact_ids": plan.contact_ids, "tombstones": tombstones}
