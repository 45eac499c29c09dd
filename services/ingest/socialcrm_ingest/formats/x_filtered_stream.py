"""Normalization of X API v2 filtered-stream JSON into Interaction events (pure logic).

Each stream message is ``{"data": <v2 Post>, "includes": {"users": [...], "media": [...]},
"matching_rules": [...]}``; the author and media are found in ``includes`` by id. A Post
seen both here and in an Account Activity webhook gets the same event id (channel X and the
Post id), so it is published once.
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
    optional_list,
    optional_object,
    require,
)


def normalize_filtered_stream(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of one stream message, or of a list of them (newline-delimited body)."""
    if isinstance(payload, list):
        return [
            interaction
            for i, message in enumerate(payload)
            for interaction in _message(message, brand, ingested_at, f"[{i}]")
        ]
    return _message(payload, brand, ingested_at, "")


def _message(
    payload: Any, brand: str, ingested_at: datetime, where: str
) -> list[interaction_pb2.Interaction]:
    message = as_object(payload, where or "body")
    if "data" not in message:
        # Keep-alive and error messages of the stream carry no Post.
        if "errors" in message:
            return []
        raise PayloadError(f"{where + '.' if where else ''}data is missing")
    data = message["data"]
    includes = optional_object(message, "includes", where)
    posts = data if isinstance(data, list) else [data]
    return [
        _post(post, includes, brand, ingested_at, f"{where + '.' if where else ''}data")
        for post in posts
    ]


def _by_key(includes: dict[str, Any], field: str, key: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in optional_list(includes, field, "includes"):
        if isinstance(item, dict) and isinstance(item.get(key), str):
            found[item[key]] = item
    return found


def _post(
    post: Any, includes: dict[str, Any], brand: str, ingested_at: datetime, where: str
) -> interaction_pb2.Interaction:
    post = as_object(post, where)
    post_id = str(require(post, "id", where))
    author_id = str(require(post, "author_id", where))
    user = _by_key(includes, "users", "id").get(author_id, {})
    long_text = optional_object(post, "note_tweet", where).get("text")
    text = long_text or require(post, "text", where)
    references = {
        str(ref.get("type")): str(ref.get("id") or "")
        for ref in optional_list(post, "referenced_tweets", where)
        if isinstance(ref, dict)
    }
    in_reply_to = references.get("replied_to", "")
    kind = "reply" if in_reply_to else "quote" if "quoted" in references else "post"
    metrics = optional_object(post, "public_metrics", where)
    user_metrics = optional_object(user, "public_metrics", "includes.users[]")
    entities = optional_object(post, "entities", where)
    media_by_key = _by_key(includes, "media", "media_key")
    attachments = optional_object(post, "attachments", where)
    media = [
        media_by_key[key]
        for key in optional_list(attachments, "media_keys", f"{where}.attachments")
        if isinstance(key, str) and key in media_by_key
    ]
    lang = post.get("lang")
    return interaction_pb2.Interaction(
        header=header(
            common_pb2.CHANNEL_X,
            post_id,
            iso_time(require(post, "created_at", where), f"{where}.created_at", ingested_at),
            ingested_at,
        ),
        # v2 names the thread's root Post: the whole thread shares one key.
        conversation_id=str(post.get("conversation_id") or post_id),
        in_reply_to=in_reply_to,
        is_public=True,
        author=common_pb2.Author(
            # Without the users expansion the id is the only handle there is.
            handle=str(user.get("username") or author_id),
            channel_user_id=author_id,
            display_name=str(user.get("name") or ""),
            followers=count(
                user_metrics.get("followers_count"),
                "includes.users[].public_metrics.followers_count",
            ),
            verified=user.get("verified") is True,
        ),
        text=str(text),
        language_hint=lang if isinstance(lang, str) and lang != "und" else "",
        media=[
            common_pb2.Media(
                url=str(m.get("url") or m.get("preview_image_url") or ""),
                media_type=str(m.get("type") or ""),
            )
            for m in media
        ],
        links=[
            str(u.get("expanded_url") or u.get("url") or "")
            for u in optional_list(entities, "urls", f"{where}.entities")
            if isinstance(u, dict)
        ],
        engagement=common_pb2.Engagement(
            likes=count(metrics.get("like_count"), f"{where}.public_metrics.like_count"),
            shares=count(metrics.get("retweet_count"), f"{where}.public_metrics.retweet_count")
            + count(metrics.get("quote_count"), f"{where}.public_metrics.quote_count"),
            replies=count(metrics.get("reply_count"), f"{where}.public_metrics.reply_count"),
            views=count(
                metrics.get("impression_count"), f"{where}.public_metrics.impression_count"
            ),
        ),
        raw_ref=f"x/tweet/{post_id}",
        brand=brand,
        kind=kind,
    )
