"""Meta Graph webhooks (Pages feed, Messenger, Instagram), in the shapes Meta publishes."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.meta import normalize_meta
from socialcrm_ingest.formats.payload import PayloadError
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 9, 20, tzinfo=UTC)


def meta(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "meta" / f"{name}.json").read_text())
    return loaded


def feed_value(payload: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]
    return value


def test_a_page_comment_becomes_a_public_comment_in_its_post_thread() -> None:
    [comment] = normalize_meta(meta("page_feed_comment"), brand="acme", ingested_at=NOW)
    assert comment.header.channel == common_pb2.CHANNEL_FACEBOOK
    assert comment.header.external_id == "912345678901234_1288877766655544"
    assert comment.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_FACEBOOK, "912345678901234_1288877766655544"
    )
    assert comment.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime.fromtimestamp(
        1794824100, UTC
    )
    assert comment.header.ingested_at.ToDatetime(tzinfo=UTC) == NOW
    assert comment.conversation_id == "104650388876123_912345678901234"
    assert comment.in_reply_to == "104650388876123_912345678901234"
    assert comment.is_public
    assert comment.kind == "comment"
    assert comment.author.handle == comment.author.channel_user_id == "7409521113561234"
    assert comment.author.display_name == "Camille Martin"
    assert "commande #48213" in comment.text
    assert comment.raw_ref == "facebook/comment/912345678901234_1288877766655544"
    assert comment.brand == "acme"
    contract.validate(comment)


def test_a_visitor_post_on_the_page_becomes_a_post_with_its_link() -> None:
    [post] = normalize_meta(meta("page_feed_post"), brand="acme", ingested_at=NOW)
    assert post.kind == "post"
    assert post.header.external_id == post.conversation_id == "104650388876123_933300011122233"
    assert post.in_reply_to == ""
    assert post.links == ["https://acme.example/orders/77120"]
    assert post.author.display_name == "Jordan Blake"


@pytest.mark.parametrize("verb", ["edited", "remove", "hide"])
def test_edits_and_removals_are_skipped(verb: str) -> None:
    payload = meta("page_feed_comment")
    feed_value(payload)["verb"] = verb
    assert normalize_meta(payload, brand="acme", ingested_at=NOW) == []


def test_reactions_and_the_pages_own_posts_are_skipped() -> None:
    reaction = meta("page_feed_comment")
    feed_value(reaction)["item"] = "reaction"
    own = meta("page_feed_post")
    feed_value(own)["from"] = {"id": "104650388876123", "name": "Acme France"}
    assert normalize_meta(reaction, brand="acme", ingested_at=NOW) == []
    assert normalize_meta(own, brand="acme", ingested_at=NOW) == []


def test_a_messenger_message_is_a_private_dm_threaded_per_person() -> None:
    [dm] = normalize_meta(meta("messenger_message"), brand="acme", ingested_at=NOW)
    assert dm.header.channel == common_pb2.CHANNEL_FACEBOOK
    assert dm.header.external_id == "m_AG5Hz2Uq7qDEj6cs5ul2iGZAGVsK8tE7QxU3EXAMPLE"
    assert dm.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 10, 19, 5, 12000, tzinfo=UTC
    )
    assert not dm.is_public
    assert dm.kind == "dm"
    assert dm.conversation_id == "104650388876123-27183648293847561"
    assert dm.author.handle == "27183648293847561"
    assert [m.media_type for m in dm.media] == ["image"]
    contract.validate(dm)


def test_echoes_and_receipts_are_skipped() -> None:
    echo = meta("messenger_message")
    echo["entry"][0]["messaging"][0]["message"]["is_echo"] = True
    receipt = meta("messenger_message")
    event = receipt["entry"][0]["messaging"][0]
    del event["message"]
    event["read"] = {"watermark": 1794824345012}
    assert normalize_meta(echo, brand="acme", ingested_at=NOW) == []
    assert normalize_meta(receipt, brand="acme", ingested_at=NOW) == []


def test_an_instagram_comment_keeps_its_media_as_thread() -> None:
    [comment] = normalize_meta(meta("instagram_comments"), brand="acme", ingested_at=NOW)
    assert comment.header.channel == common_pb2.CHANNEL_INSTAGRAM
    assert comment.header.external_id == "17865799348089039"
    assert comment.conversation_id == comment.in_reply_to == "17918195224117851"
    assert comment.author.handle == "lea.travels"
    assert comment.author.channel_user_id == "232323232"
    assert comment.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime.fromtimestamp(
        1794824400, UTC
    )
    assert comment.kind == "comment"
    assert comment.is_public


def test_an_instagram_reply_answers_its_parent_comment() -> None:
    payload = meta("instagram_comments")
    feed_value(payload)["parent_id"] = "17865799348089000"
    [reply] = normalize_meta(payload, brand="acme", ingested_at=NOW)
    assert reply.in_reply_to == "17865799348089000"


def test_an_instagram_mention_is_identified_by_its_comment() -> None:
    [mention] = normalize_meta(meta("instagram_mentions"), brand="acme", ingested_at=NOW)
    assert mention.kind == "mention"
    assert mention.header.external_id == "17894227972186120"
    assert mention.conversation_id == "17920112008063024"
    contract.validate(mention)


def test_redelivery_gives_the_same_event_ids() -> None:
    payload = meta("page_feed_comment")
    first = normalize_meta(payload, brand="acme", ingested_at=NOW)
    again = normalize_meta(copy.deepcopy(payload), brand="acme", ingested_at=datetime.now(UTC))
    assert [i.header.event_id for i in first] == [i.header.event_id for i in again]


def test_objects_not_subscribed_give_nothing() -> None:
    assert normalize_meta({"object": "user", "entry": []}, brand="a", ingested_at=NOW) == []


def _without_comment_id() -> dict[str, Any]:
    payload = meta("page_feed_comment")
    del feed_value(payload)["comment_id"]
    return payload


def _bad_created_time() -> dict[str, Any]:
    payload = meta("page_feed_comment")
    feed_value(payload)["created_time"] = "yesterday"
    return payload


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "body is not an object"),
        ({"entry": []}, "object is missing"),
        ({"object": "page"}, "entry is missing"),
        ({"object": "page", "entry": {}}, "entry is not a list"),
        ({"object": "page", "entry": [{"changes": []}]}, "entry[0].id is missing"),
        (_without_comment_id(), "entry[0].changes[0].value.comment_id is missing"),
        (_bad_created_time(), "entry[0].changes[0].value.created_time"),
        (
            {"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "comments"}]}]},
            "entry[0].changes[0].value is not an object",
        ),
    ],
)
def test_malformed_payloads_are_refused_naming_the_field(payload: object, reason: str) -> None:
    with pytest.raises(PayloadError) as refused:
        normalize_meta(payload, brand="acme", ingested_at=NOW)
    assert reason in str(refused.value)
