"""The forum / community webhook's documented shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.forum import normalize_forum
from socialcrm_ingest.formats.payload import PayloadError
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def reply() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "forum" / "reply.json").read_text())
    return loaded


def test_a_community_reply_keeps_its_thread_and_parent() -> None:
    [item] = normalize_forum(reply(), "acme", NOW)
    assert item.header.channel == common_pb2.CHANNEL_COMMUNITY
    assert item.header.event_id == contract.event_id_for(common_pb2.CHANNEL_COMMUNITY, "p-9812")
    assert item.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 31, 2, tzinfo=UTC
    )
    assert item.conversation_id == "t-771"
    assert item.in_reply_to == "p-9790"
    assert item.kind == "reply"
    assert item.is_public
    assert item.author.handle == "camille_mrt"
    assert item.author.followers == 41
    assert item.text.startswith("Livraison en retard\n\nMême problème ici")
    assert item.language_hint == "fr"
    assert item.links == ["https://community.acme.example/t/771#p-9812"]
    contract.validate(item)


def test_a_forum_post_starts_its_thread_and_events_can_come_in_batches() -> None:
    post = reply() | {"type": "post", "id": "p-1", "space": "forum"}
    del post["in_reply_to"]
    [first, second] = normalize_forum({"events": [post, reply()]}, "acme", NOW)
    assert first.header.channel == common_pb2.CHANNEL_FORUM
    assert first.kind == "post"
    assert first.in_reply_to == ""
    assert second.header.external_id == "p-9812"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"type": "like"}, "type 'like' is not one of post, reply"),
        ({"space": "myspace"}, "space 'myspace' is not forum or community"),
        ({"thread_id": None}, "thread_id is missing"),
        ({"author": "camille"}, "author is not an object"),
        ({"created_at": "2026-11-16 09:31"}, "created_at '2026-11-16 09:31' has no UTC offset"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as refused:
        normalize_forum(reply() | change, "acme", NOW)
    assert reason in str(refused.value)


def test_a_bad_event_in_a_batch_is_named_by_its_place() -> None:
    with pytest.raises(PayloadError, match=r"events\[1\]\.id is missing"):
        normalize_forum({"events": [reply(), reply() | {"id": ""}]}, "acme", NOW)
