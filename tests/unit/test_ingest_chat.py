"""Live-chat transcripts: one private interaction per visitor message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.chat import normalize_chat
from socialcrm_ingest.formats.email_inbound import normalize_email
from socialcrm_ingest.formats.payload import PayloadError
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def transcript() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "chat" / "transcript.json").read_text())
    return loaded


def test_each_visitor_message_is_one_interaction_and_agents_are_left_out() -> None:
    first, second = normalize_chat(transcript(), "acme", NOW)
    assert first.header.channel == common_pb2.CHANNEL_CHAT
    assert first.header.external_id == "c-5521/1"
    assert second.header.external_id == "c-5521/3"
    assert first.header.event_id == contract.event_id_for(common_pb2.CHANNEL_CHAT, "c-5521/1")
    assert first.conversation_id == second.conversation_id == "c-5521"
    assert first.kind == "chat"
    assert not first.is_public
    assert first.language_hint == "fr"
    assert "déçue" in second.text
    assert second.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 41, 12, tzinfo=UTC
    )
    contract.validate(first)


def test_the_visitor_with_an_email_has_the_same_handle_as_their_emails() -> None:
    [chat, _] = normalize_chat(transcript(), "acme", NOW)
    [mail] = normalize_email((FIXTURES / "email" / "reply.eml").read_bytes(), "acme", NOW)
    assert chat.author.handle == mail.author.handle == "camille.martin@example.fr"
    assert chat.author.channel_user_id == "v-88412"


def test_an_anonymous_visitor_is_known_by_their_visitor_id() -> None:
    payload = transcript()
    del payload["visitor"]["email"]
    [chat, _] = normalize_chat(payload, "acme", NOW)
    assert chat.author.handle == "v-88412"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t.pop("conversation_id"), "conversation_id is missing"),
        (lambda t: t.pop("messages"), "messages is missing"),
        (lambda t: t["visitor"].update(email="nobody"), "visitor.email 'nobody'"),
        (lambda t: t["messages"][2].pop("text"), "messages[2].text is missing"),
        (lambda t: t["messages"][0].update(created_at=12), "messages[0].created_at"),
    ],
)
def test_malformed_transcripts_are_refused_naming_the_field(change: Any, reason: str) -> None:
    payload = transcript()
    change(payload)
    with pytest.raises(PayloadError) as refused:
        normalize_chat(payload, "acme", NOW)
    assert reason in str(refused.value)
