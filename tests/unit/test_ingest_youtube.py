from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import NORMALIZERS
from socialcrm_ingest.formats.youtube import normalize_comment_threads

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "youtube"
NOW = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)


def page(name: str = "comment_threads_page1.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def test_a_page_gives_each_top_level_comment_and_reply() -> None:
    top, reply, other = normalize_comment_threads(page(), "acme", NOW)
    assert top.header.channel == common_pb2.CHANNEL_YOUTUBE
    assert top.header.external_id == "UgzDE2tasfmrYLyNkGt4AaABAg"
    assert top.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_YOUTUBE, "UgzDE2tasfmrYLyNkGt4AaABAg"
    )
    assert top.kind == "comment"
    assert top.author.handle == top.author.channel_user_id == "UCq9fQk2Z3t0pLmN4vB8xYwA"
    assert top.author.display_name == "@camille_mrt"
    assert top.engagement.likes == 12
    assert top.engagement.replies == 1
    assert top.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 12, 44, tzinfo=UTC
    )
    assert top.links == [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&lc=UgzDE2tasfmrYLyNkGt4AaABAg"
    ]
    assert top.rating == 0
    assert reply.kind == "reply"
    assert reply.in_reply_to == top.header.external_id
    assert reply.conversation_id == top.conversation_id == "UgzDE2tasfmrYLyNkGt4AaABAg"
    assert other.text == "Great unboxing, the new model looks *amazing*!"  # textOriginal first
    for interaction in (top, reply, other):
        contract.validate(interaction)
        assert interaction.brand == "acme"


def test_one_thread_alone_is_accepted_as_a_backfill_line() -> None:
    thread = page()["items"][1]
    [interaction] = normalize_comment_threads(thread, "acme", NOW)
    assert interaction.header.external_id == "Ugw8kPq3xN1vR7tY5zA4AaABAg"


def test_polls_seeing_the_same_comment_give_the_same_event_id() -> None:
    first = normalize_comment_threads(page(), "acme", NOW)
    later = normalize_comment_threads(page(), "acme", datetime.now(UTC))
    assert [i.header.event_id for i in first] == [i.header.event_id for i in later]


def test_the_registry_knows_the_format() -> None:
    assert NORMALIZERS["youtube-comment-threads"](page(), "acme", NOW)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("items",), "nope", "items is not a list"),
        (("items", 0, "snippet", "topLevelComment", "id"), "", "topLevelComment.id"),
        (
            ("items", 0, "snippet", "topLevelComment", "snippet", "publishedAt"),
            "yesterday",
            "publishedAt",
        ),
        (
            ("items", 1, "snippet", "topLevelComment", "snippet", "authorDisplayName"),
            None,
            "authorDisplayName",
        ),
        (("items", 0, "replies", "comments"), {}, "replies.comments"),
    ],
)
def test_payloads_out_of_shape_name_the_field(
    path: tuple[Any, ...], value: Any, field: str
) -> None:
    body = copy.deepcopy(page())
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(PayloadError, match=field):
        normalize_comment_threads(body, "acme", NOW)


def test_a_body_that_is_neither_a_page_nor_a_thread_is_refused() -> None:
    with pytest.raises(PayloadError, match="items is missing"):
        normalize_comment_threads({"kind": "youtube#videoListResponse"}, "acme", NOW)


# Issue 25, finding 4: the display name won over the channel id.
def comment_by(comment_id: str, display_name: str, channel: Any) -> dict[str, Any]:
    """A thread of one comment, ``comment_id``, by ``display_name`` of ``channel``."""
    item: dict[str, Any] = copy.deepcopy(page()["items"][0])
    item.pop("replies", None)
    item["id"] = item["snippet"]["topLevelComment"]["id"] = comment_id
    snippet = item["snippet"]["topLevelComment"]["snippet"]
    snippet["authorDisplayName"] = display_name
    if channel is None:
        snippet.pop("authorChannelId", None)
    else:
        snippet["authorChannelId"] = channel
    return item


def test_an_author_is_their_channel_id_whatever_name_they_show() -> None:
    [renamed] = normalize_comment_threads(
        comment_by("c0", "camille.martin@example.fr", {"value": "UCq9fQk2Z3t0pLmN4vB8xYwA"}),
        "acme",
        NOW,
    )
    [namesake] = normalize_comment_threads(
        comment_by("c1", "Jean Dupont", {"value": "UCz7hT1kQ9wR3mP5nV2bX8cE"}), "acme", NOW
    )
    [other_namesake] = normalize_comment_threads(
        comment_by("c2", "Jean Dupont", {"value": "UCa1b2c3d4e5f6g7h8i9j0kL"}), "acme", NOW
    )
    assert renamed.author.handle == "UCq9fQk2Z3t0pLmN4vB8xYwA"
    assert renamed.author.display_name == "camille.martin@example.fr"
    assert namesake.author.display_name == other_namesake.author.display_name == "Jean Dupont"
    assert namesake.author.handle != other_namesake.author.handle


@pytest.mark.parametrize("channel", [None, {}, {"value": ""}, {"value": 42}, "UC-not-an-object"])
def test_a_comment_without_an_author_channel_has_an_author_of_its_own(channel: Any) -> None:
    comments = [
        normalize_comment_threads(comment_by(comment_id, "anonymous", channel), "acme", NOW)[0]
        for comment_id in ("c0", "c1", "c2")
    ]
    handles = {comment.author.handle for comment in comments}
    assert len(handles) == 3
    for comment in comments:
        assert comment.author.handle == f"unidentified/{comment.header.event_id}"
        assert comment.author.channel_user_id == ""
        assert comment.author.display_name == "anonymous"
