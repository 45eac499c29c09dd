"""The CRM sink's handlers with fake store, producer and erasure publisher (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from socialcrm.kafka.producer import EventProducer
from socialcrm.v1 import crm_pb2, reply_pb2
from socialcrm_crm_sink.erasure_publisher import ErasurePublisher
from socialcrm_crm_sink.errors import (
    CrmError,
    InteractionNotRecordedYet,
    InvalidRequest,
    UnknownInteraction,
)
from socialcrm_crm_sink.gdpr import Erased
from socialcrm_crm_sink.handlers import CrmHandlers
from socialcrm_crm_sink.records import ReplyWrite
from socialcrm_crm_sink.store import CrmStore
from socialcrm_crm_sink.writes import RecordedReply
from tests.fixtures import events

WAIT_SECONDS = 300.0


class FakeStore(CrmStore):
    """Answers what the handlers ask and keeps the order of the calls; holds no database."""

    def __init__(self, reply: RecordedReply | None = None) -> None:
        self.reply = reply
        self.calls: list[str] = []
        self.linked: list[dict[str, Any]] = []

    async def record_reply(self, write: ReplyWrite) -> RecordedReply | None:
        return self.reply

    async def link(self, contact_id: str, identity: dict[str, Any]) -> dict[str, Any]:
        self.linked.append(identity)
        return {"_id": contact_id, "identities": [identity]}

    async def plan_erasure(self, contact_id: str) -> Erased:
        self.calls.append("plan")
        return Erased([contact_id, "merged-1"], ["x:paul"], [("event-1", "conversation-1")])

    async def erase(self, plan: Erased) -> None:
        self.calls.append("erase")


class FakeProducer(EventProducer):
    def __init__(self) -> None:
        """No settings, no broker: the handlers tested here publish nothing themselves."""


class FakeErasure(ErasurePublisher):
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def forget(self, plan: Erased) -> int:
        self.calls.append("forget")
        return len(plan.contact_ids) + len(plan.interactions)

    async def announce(self, plan: Erased) -> None:
        self.calls.append("announce")


def replied(reply: reply_pb2.Reply) -> tuple[reply_pb2.Reply, ConsumerRecord[bytes, bytes]]:
    """The reply and the record it came in."""
    value = reply.SerializeToString()
    record = ConsumerRecord("social.replies.v1", 0, 0, 0, 0, b"", value, None, 0, len(value), ())
    return reply, record


def handlers(store: FakeStore) -> CrmHandlers:
    erasure = FakeErasure(store.calls)
    return CrmHandlers(store, erasure, FakeProducer(), reply_wait_seconds=WAIT_SECONDS)


async def test_a_reply_ahead_of_its_interaction_is_retried_then_dead_lettered() -> None:
    crm = handlers(FakeStore(reply=None))
    routed = events.routed()
    recent = events.reply(routed, occurred_at=datetime.now(UTC))
    with pytest.raises(InteractionNotRecordedYet):
        await crm.handle_reply(*replied(recent))
    late = datetime.now(UTC) - timedelta(seconds=WAIT_SECONDS + 1)
    with pytest.raises(UnknownInteraction):
        await crm.handle_reply(*replied(events.reply(routed, occurred_at=late)))


async def test_a_reply_announces_only_a_status_change() -> None:
    routed = events.routed()
    changed = RecordedReply("contact-1", "case-1", "open", status_changed=True)
    crm = handlers(FakeStore(reply=changed))
    [event] = await crm.handle_reply(*replied(events.reply(routed)))
    assert isinstance(event, crm_pb2.CrmEvent)
    assert event.type == crm_pb2.CRM_EVENT_TYPE_CASE_UPDATED
    assert (event.case_id, event.case_status) == ("case-1", "open")
    unchanged = RecordedReply("contact-1", "case-1", "open", status_changed=False)
    crm = handlers(FakeStore(reply=unchanged))
    assert await crm.handle_reply(*replied(events.reply(routed))) == []


async def test_a_search_needs_a_term() -> None:
    crm = handlers(FakeStore())
    with pytest.raises(InvalidRequest, match="handle, email or name"):
        await crm.search(handle=None, email="", name=None, limit=10)


@pytest.mark.parametrize(
    ("kind", "value", "problem"),
    [
        ("youtube", "paul", "kind must be one of x, facebook, instagram, email, phone"),
        ("x", " @ ", "value is empty"),
    ],
)
async def test_a_manual_link_refuses_kinds_and_values_that_name_nobody(
    kind: str, value: str, problem: str
) -> None:
    store = FakeStore()
    crm = handlers(store)
    with pytest.raises(InvalidRequest, match=problem) as refused:
        await crm.link_identity("contact-1", kind, value)
    assert refused.value.status == 422
    assert store.linked == []


async def test_a_manual_link_is_normalised() -> None:
    store = FakeStore()
    crm = handlers(store)
    await crm.link_identity("contact-1", "phone", "06 12 34 56 78")
    assert [i["key"] for i in store.linked] == ["phone:+33612345678"]


async def test_merge_suggestions_are_listed_by_a_known_status() -> None:
    crm = handlers(FakeStore())
    with pytest.raises(InvalidRequest, match="pending, accepted, rejected"):
        await crm.merge_suggestions(status="maybe", limit=10)


async def test_an_erasure_sends_tombstones_before_it_erases_the_store() -> None:
    store = FakeStore()
    crm = handlers(store)
    assert await crm.erase("contact-1") == {
        "erased_contact_ids": ["contact-1", "merged-1"],
        "tombstones": 3,
    }
    assert store.calls == ["plan", "forget", "erase", "announce"]


def test_every_domain_error_carries_an_http_error_status() -> None:
    def subclasses(cls: type[CrmError]) -> list[type[CrmError]]:
        return [s for c in cls.__subclasses__() for s in (c, *subclasses(c))]

    assert all(400 <= error.status < 500 for error in subclasses(CrmError))
