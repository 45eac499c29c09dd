from __future__ import annotations

from datetime import UTC, datetime

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from tests.fixtures.payloads import x_tweet_event

NOW = datetime(2026, 11, 16, 9, 13, tzinfo=UTC)


def test_tweet_create_event_becomes_one_interaction() -> None:
    [interaction] = normalize_account_activity(
        x_tweet_event("1990000000000000001"), brand="acme", ingested_at=NOW
    )
    assert interaction.header.channel == common_pb2.CHANNEL_X
    assert interaction.header.external_id == "1990000000000000001"
    assert interaction.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_X, "1990000000000000001"
    )
    assert interaction.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 12, 44, tzinfo=UTC
    )
    assert interaction.author.handle == "camille_mrt"
    assert interaction.author.followers == 182000
    assert interaction.author.verified
    assert interaction.language_hint == "fr"
    assert interaction.links == ["https://acme.example/orders/48213"]
    assert interaction.engagement.likes == 37
    assert interaction.kind == "post"
    assert interaction.conversation_id == "1990000000000000001"
    contract.validate(interaction)


def test_reply_keeps_its_parent_as_conversation() -> None:
    [reply] = normalize_account_activity(
        x_tweet_event("2", in_reply_to="1"), brand="acme", ingested_at=NOW
    )
    assert reply.kind == "reply"
    assert reply.in_reply_to == "1"
    assert reply.conversation_id == "1"


def test_redelivered_webhook_gives_the_same_event_id() -> None:
    first = normalize_account_activity(x_tweet_event("7"), brand="acme", ingested_at=NOW)
    again = normalize_account_activity(
        x_tweet_event("7"), brand="acme", ingested_at=datetime.now(UTC)
    )
    assert first[0].header.event_id == again[0].header.event_id


def test_other_account_activity_events_give_nothing() -> None:
    assert (
        normalize_account_activity(
            {"for_user_id": "1", "favorite_events": []}, brand="a", ingested_at=NOW
        )
        == []
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "body is not a JSON object"),
        ({"tweet_create_events": {}}, "tweet_create_events is not a list"),
        ({"tweet_create_events": [{"text": "hi"}]}, "tweet_create_events[0].id_str is missing"),
    ],
)
def test_malformed_payloads_are_refused_with_the_place_of_the_fault(
    payload: object, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        normalize_account_activity(payload, brand="acme", ingested_at=NOW)


def test_bad_date_is_refused() -> None:
    payload = x_tweet_event("3")
    payload["tweet_create_events"][0]["created_at"] = "2026-11-16T09:12:44Z"
    with pytest.raises(PayloadError, match="created_at"):
        normalize_account_activity(payload, brand="acme", ingested_at=NOW)
