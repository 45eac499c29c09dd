"""X API v2 filtered-stream JSON (data + includes + matching_rules), in X's published shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.x_filtered_stream import normalize_filtered_stream
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def stream_message() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "x" / "filtered_stream.json").read_text())
    return loaded


def test_a_matched_post_becomes_an_interaction_with_its_expanded_author() -> None:
    [post] = normalize_filtered_stream(stream_message(), "acme", NOW)
    assert post.header.channel == common_pb2.CHANNEL_X
    assert post.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_X, "1990000000000000777"
    )
    assert post.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 25, 31, tzinfo=UTC
    )
    assert post.kind == "reply"
    assert post.in_reply_to == "1990000000000000700"
    assert post.conversation_id == "1990000000000000700"
    assert post.author.handle == "samcarter"
    assert post.author.display_name == "Sam Carter"
    assert post.author.followers == 842
    assert post.language_hint == "en"
    assert post.links == ["https://acme.example/track/99812"]
    assert [(m.media_type, m.url) for m in post.media] == [
        ("photo", "https://pbs.twimg.com/media/parcel.jpg")
    ]
    assert post.engagement.likes == 12
    assert post.engagement.shares == 4
    assert post.engagement.views == 5400
    assert post.is_public
    contract.validate(post)


def test_a_list_of_messages_gives_each_post() -> None:
    second = stream_message()
    second["data"]["id"] = "1990000000000000999"
    del second["data"]["referenced_tweets"]
    posts = normalize_filtered_stream([stream_message(), second], "acme", NOW)
    assert [p.header.external_id for p in posts] == ["1990000000000000777", "1990000000000000999"]
    assert posts[1].kind == "post"


def test_stream_error_messages_give_nothing() -> None:
    errors = {"errors": [{"title": "operational-disconnect", "type": "about:blank"}]}
    assert normalize_filtered_stream(errors, "acme", NOW) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.pop("data"), "data is missing"),
        (lambda m: m["data"].pop("author_id"), "data.author_id is missing"),
        (lambda m: m["data"].update(created_at="16/11/2026"), "data.created_at"),
    ],
)
def test_malformed_messages_are_refused_naming_the_field(change: Any, reason: str) -> None:
    message = stream_message()
    change(message)
    with pytest.raises(PayloadError) as refused:
        normalize_filtered_stream(message, "acme", NOW)
    assert reason in str(refused.value)
