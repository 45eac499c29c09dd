"""Normalization of YouTube Data API v3 comment threads into Interaction events (pure logic).

Follows the published ``commentThreads.list`` response: ``items[]`` of
``youtube#commentThread`` resources, each with ``snippet.topLevelComment`` (a
``youtube#comment``) and, with ``part=replies``, ``replies.comments[]``. A single
``youtube#commentThread`` (one line of a backfill file) is accepted as well.

An author is their channel: ``authorChannelId.value`` (``UC...``, stable for the life of the
channel) is both the handle and ``channel_user_id``. ``authorDisplayName`` (a name, or an
``@handle`` the owner may change and another may take later) goes to ``display_name`` only.
A comment without an author channel gets an author of its own (``payload.item_author``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import (
    PayloadError,
    as_object,
    count,
    header,
    iso_time,
    item_author,
    require,
)

CHANNEL = common_pb2.CHANNEL_YOUTUBE


def comment_to_interaction(
    comment: Any,
    *,
    thread_id: str,
    video_id: str,
    is_public: bool,
    reply_count: int,
    brand: str,
    ingested_at: datetime,
    where: str,
) -> interaction_pb2.Interaction:
    comment = as_object(comment, where)
    comment_id = str(require(comment, "id", where))
    snippet = as_object(require(comment, "snippet", where), f"{where}.snippet")
    parent = str(snippet.get("parentId") or "")
    text = snippet.get("textOriginal") or snippet.get("textDisplay")
    if not isinstance(text, str):
        raise PayloadError(f"{where}.snippet.textDisplay is missing")
    author_channel = snippet.get("authorChannelId") or {}
    channel_id = author_channel.get("value") if isinstance(author_channel, dict) else None
    channel_id = channel_id.strip() if isinstance(channel_id, str) else ""
    display_name = str(require(snippet, "authorDisplayName", f"{where}.snippet"))
    published = iso_time(snippet.get("publishedAt"), f"{where}.snippet.publishedAt", ingested_at)
    video = str(snippet.get("videoId") or video_id)
    event_header = header(CHANNEL, comment_id, published, ingested_at)
    return interaction_pb2.Interaction(
        header=event_header,
        conversation_id=thread_id,
        in_reply_to=parent,
        is_public=is_public,
        author=common_pb2.Author(
            handle=channel_id or item_author(event_header),
            channel_user_id=channel_id,
            display_name=display_name,
        ),
        text=text,
        links=[f"https://www.youtube.com/watch?v={video}&lc={comment_id}"] if video else [],
        engagement=common_pb2.Engagement(
            likes=count(snippet.get("likeCount"), f"{where}.snippet.likeCount"),
            replies=reply_count,
        ),
        raw_ref=f"youtube/comment/{comment_id}",
        brand=brand,
        kind="reply" if parent else "comment",
    )


def thread_to_interactions(
    thread: Any, *, brand: str, ingested_at: datetime, where: str
) -> list[interaction_pb2.Interaction]:
    """The top-level comment of a thread and the replies it carries."""
    thread = as_object(thread, where)
    thread_id = str(require(thread, "id", where))
    snippet = as_object(require(thread, "snippet", where), f"{where}.snippet")
    video_id = str(snippet.get("videoId") or "")
    is_public = snippet.get("isPublic", True) is not False
    top = comment_to_interaction(
        require(snippet, "topLevelComment", f"{where}.snippet"),
        thread_id=thread_id,
        video_id=video_id,
        is_public=is_public,
        reply_count=count(snippet.get("totalReplyCount"), f"{where}.snippet.totalReplyCount"),
        brand=brand,
        ingested_at=ingested_at,
        where=f"{where}.snippet.topLevelComment",
    )
    replies = as_object(thread.get("replies") or {}, f"{where}.replies").get("comments", [])
    if not isinstance(replies, list):
        raise PayloadError(f"{where}.replies.comments is not a list")
    interactions = [top]
    for index, reply in enumerate(replies):
        interaction = comment_to_interaction(
            reply,
            thread_id=thread_id,
            video_id=video_id,
            is_public=is_public,
            reply_count=0,
            brand=brand,
            ingested_at=ingested_at,
            where=f"{where}.replies.comments[{index}]",
        )
        if not interaction.in_reply_to:
            interaction.in_reply_to = top.header.external_id
            interaction.kind = "reply"
        interactions.append(interaction)
    return interactions


def normalize_comment_threads(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of a ``commentThreads.list`` page, or of one comment thread."""
    payload = as_object(payload, "body")
    if "items" not in payload:
        if "snippet" in payload:
            return thread_to_interactions(
                payload, brand=brand, ingested_at=ingested_at, where="commentThread"
            )
        raise PayloadError("items is missing")
    items = payload["items"]
    if not isinstance(items, list):
        raise PayloadError("items is not a list")
    return [
        interaction
        for index, thread in enumerate(items)
        for interaction in thread_to_interactions(
            thread, brand=brand, ingested_at=ingested_at, where=f"items[{index}]"
        )
    ]
