"""How a reply moves a case and what it puts on the timeline (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, reply_pb2
from socialcrm_crm_sink.records import case_status_after_reply, plan_reply


def reply(text: str = "Bonjour, nous regardons", status: str = "") -> reply_pb2.Reply:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    return reply_pb2.Reply(
        header=common_pb2.EventHeader(
            event_id="r1",
            external_id="reply:r1",
            occurred_at=contract.timestamp(at),
            ingested_at=contract.timestamp(at),
        ),
        interaction_event_id="i1",
        agent_id="agent-7",
        text=text,
        status=status,
        sla_status=reply_pb2.SLA_STATUS_MET,
        first_response=True,
    )


@pytest.mark.parametrize(
    ("current", "text", "status", "expected"),
    [
        ("new", "Bonjour", "", "open"),
        ("open", "Bonjour", "", "open"),
        ("new", "", "pending", "pending_customer"),
        ("open", "C'est réglé", "resolved", "resolved"),
        ("pending_customer", "", "open", "open"),
        ("closed", "Encore une question ?", "open", "closed"),
        ("new", "", "", "new"),
    ],
)
def test_case_status_after_a_reply(current: str, text: str, status: str, expected: str) -> None:
    assert case_status_after_reply(current, plan_reply(reply(text, status))) == expected


def test_a_reply_and_a_bare_status_change_on_the_timeline() -> None:
    answered = plan_reply(reply()).timeline_entry
    assert answered["_id"] == "r1:reply"
    assert answered["type"] == "reply"
    assert answered["sla_status"] == "met"
    assert answered["first_response"] is True
    assert plan_reply(reply(text="", status="resolved")).timeline_entry["type"] == "status_change"
