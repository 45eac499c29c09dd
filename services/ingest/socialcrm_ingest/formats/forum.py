"""Normalization of the forum / own-community webhook (pure logic).

Our own community platform posts one JSON object per new post or reply::

    {"type": "post" | "reply", "id": "p-981", "thread_id": "t-77",
     "in_reply_to": "p-970",            # replies: the post answered (default: thread_id)
     "space": "forum" | "community",    # default "forum"
     "author": {"id": "u-12", "username": "camille", "display_name": "Camille M.",
                "followers": 40, "verified": false},
     "text": "...", "created_at": "2026-11-16T09:12:44Z",
     "language": "fr", "url": "https://community.acme.example/t/77#p-981", "title": "..."}

or ``{"events": [<object>, ...]}`` to deliver several at once.
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
    path,
    require,
)

SPACES = {"forum": common_pb2.CHANNEL_FORUM, "community": common_pb2.CHANNEL_COMMUNITY}
KINDS = ("post", "reply")


def normalize_forum(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    body = as_object(payload, "body")
    if "events" in body:
        return [
            _item(as_object(event, f"events[{i}]"), brand, ingested_at, f"events[{i}]")
            for i, event in enumerate(optional_list(body, "events", ""))
        ]
    return [_item(body, brand, ingested_at, "")]


def _item(
    item: dict[str, Any], brand: str, ingested_at: datetime, where: str
) -> interaction_pb2.Interaction:
    kind = require(item, "type", where)
    if kind not in KINDS:
        raise PayloadError(f"{path(where, 'type')} {kind!r} is not one of {', '.join(KINDS)}")
    space = item.get("space") or "forum"
    if not isinstance(space, str) or space not in SPACES:
        raise PayloadError(f"{path(where, 'space')} {space!r} is not forum or community")
    item_id = str(require(item, "id", where))
    thread_id = str(require(item, "thread_id", where))
    author = as_object(require(item, "author", where), path(where, "author"))
    in_reply_to = str(item.get("in_reply_to") or thread_id) if kind == "reply" else ""
    title = item.get("title")
    text = str(require(item, "text", where))
    url = item.get("url")
    language = item.get("language")
    channel = SPACES[space]
    return interaction_pb2.Interaction(
        header=header(
            channel,
            item_id,
            iso_time(require(item, "created_at", where), path(where, "created_at"), ingested_at),
            ingested_at,
        ),
        conversation_id=thread_id,
        in_reply_to=in_reply_to,
        is_public=True,
        author=common_pb2.Author(
            handle=str(require(author, "username", path(where, "author"))),
            channel_user_id=str(author.get("id") or ""),
            display_name=str(author.get("display_name") or ""),
            followers=count(author.get("followers"), path(where, "author.followers")),
            verified=author.get("verified") is True,
        ),
        text=f"{title}\n\n{text}" if isinstance(title, str) and title else text,
        language_hint=language if isinstance(language, str) else "",
        links=[url] if isinstance(url, str) and url else [],
        raw_ref=f"{space}/{kind}/{item_id}",
        brand=brand,
        kind=kind,
    )
