"""Normalization of Meta Graph webhooks (Facebook Pages, Messenger, Instagram), pure logic.

Meta posts ``{"object": "page" | "instagram", "entry": [...]}``; each entry (one Page or
Instagram professional account, ``entry.id``) carries ``changes`` (``field`` + ``value``)
and, for messaging, ``messaging`` events. Kept: Page ``feed`` posts and comments added by
other people, Messenger and Instagram direct messages, Instagram ``comments``,
``live_comments`` and ``mentions``. Everything else (reactions, edits, removals, the
account's own posts, echoes, delivery and read receipts) is skipped and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import (
    PayloadError,
    as_list,
    as_object,
    epoch_time,
    header,
    optional_list,
    optional_object,
    require,
)

log = logging.getLogger(__name__)

CHANNELS = {"page": common_pb2.CHANNEL_FACEBOOK, "instagram": common_pb2.CHANNEL_INSTAGRAM}
# Feed items that are a post of their own; a "comment" answers one; others carry no text.
FEED_POST_ITEMS = frozenset({"status", "post", "photo", "video", "link", "share", "note"})


@dataclass(frozen=True)
class _Entry:
    """What every item of one entry shares."""

    channel: common_pb2.Channel.ValueType
    account_id: str
    time: Any
    where: str
    brand: str
    ingested_at: datetime

    def interaction(
        self,
        *,
        external_id: str,
        occurred_at: datetime,
        conversation_id: str,
        author: common_pb2.Author,
        text: str,
        kind: str,
        in_reply_to: str = "",
        is_public: bool = True,
        media: list[common_pb2.Media] | None = None,
        links: list[str] | None = None,
    ) -> interaction_pb2.Interaction:
        network = "facebook" if self.channel == common_pb2.CHANNEL_FACEBOOK else "instagram"
        return interaction_pb2.Interaction(
            header=header(self.channel, external_id, occurred_at, self.ingested_at),
            conversation_id=conversation_id,
            in_reply_to=in_reply_to,
            is_public=is_public,
            author=author,
            text=text,
            media=media or [],
            links=links or [],
            raw_ref=f"{network}/{kind}/{external_id}",
            brand=self.brand,
            kind=kind,
        )


def normalize_meta(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of one Meta webhook delivery, in order."""
    body = as_object(payload, "body")
    kind = require(body, "object", "")
    if not isinstance(kind, str):
        raise PayloadError("object is not a string")
    if "entry" not in body:
        raise PayloadError("entry is missing")
    entries = as_list(body["entry"], "entry")
    if kind not in CHANNELS:
        log.info("Meta object not handled, skipped", extra={"meta_object": str(kind)})
        return []
    found: list[interaction_pb2.Interaction] = []
    for i, raw_entry in enumerate(entries):
        where = f"entry[{i}]"
        entry = as_object(raw_entry, where)
        context = _Entry(
            CHANNELS[kind],
            str(require(entry, "id", where)),
            entry.get("time"),
            where,
            brand,
            ingested_at,
        )
        for j, change in enumerate(optional_list(entry, "changes", where)):
            item = _change(
                context, as_object(change, f"{where}.changes[{j}]"), f"{where}.changes[{j}]"
            )
            if item is not None:
                found.append(item)
        for j, event in enumerate(optional_list(entry, "messaging", where)):
            message = _direct_message(
                context, as_object(event, f"{where}.messaging[{j}]"), f"{where}.messaging[{j}]"
            )
            if message is not None:
                found.append(message)
    return found


def _skip(reason: str, where: str, **details: str) -> None:
    log.info("Meta item skipped: %s", reason, extra={"where": where, **details})


def _change(
    context: _Entry, change: dict[str, Any], where: str
) -> interaction_pb2.Interaction | None:
    field = require(change, "field", where)
    value = as_object(change.get("value"), f"{where}.value")
    where = f"{where}.value"
    if context.channel == common_pb2.CHANNEL_FACEBOOK and field == "feed":
        return _feed(context, value, where)
    if context.channel == common_pb2.CHANNEL_INSTAGRAM and field in ("comments", "live_comments"):
        return _instagram_comment(context, value, where)
    if context.channel == common_pb2.CHANNEL_INSTAGRAM and field == "mentions":
        return _instagram_mention(context, value, where)
    _skip("field not handled", where, field=str(field))
    return None


def _feed(context: _Entry, value: dict[str, Any], where: str) -> interaction_pb2.Interaction | None:
    item = str(require(value, "item", where))
    verb = str(require(value, "verb", where))
    if verb != "add":
        _skip(f"{item} {verb}", where, item=item, verb=verb)
        return None
    if item != "comment" and item not in FEED_POST_ITEMS:
        _skip(f"feed item {item}", where, item=item)
        return None
    sender = as_object(require(value, "from", where), f"{where}.from")
    sender_id = str(require(sender, "id", f"{where}.from"))
    if sender_id == context.account_id:
        _skip(f"the page's own {item}", where, item=item)
        return None
    post_id = str(require(value, "post_id", where))
    author = common_pb2.Author(
        handle=sender_id, channel_user_id=sender_id, display_name=str(sender.get("name") or "")
    )
    occurred_at = epoch_time(
        value.get("created_time", context.time), f"{where}.created_time", context.ingested_at
    )
    media = _feed_media(value)
    text = str(value.get("message") or "")
    if item == "comment":
        comment_id = str(require(value, "comment_id", where))
        return context.interaction(
            external_id=comment_id,
            occurred_at=occurred_at,
            conversation_id=post_id,
            in_reply_to=str(value.get("parent_id") or post_id),
            author=author,
            text=text,
            kind="comment",
            media=media,
        )
    link = value.get("link")
    return context.interaction(
        external_id=post_id,
        occurred_at=occurred_at,
        conversation_id=post_id,
        author=author,
        text=text,
        kind="post",
        media=media,
        links=[link] if isinstance(link, str) and link else [],
    )


def _feed_media(value: dict[str, Any]) -> list[common_pb2.Media]:
    photos = [value.get("photo")]
    if isinstance(value.get("photos"), list):
        photos.extend(value["photos"])
    media = [
        common_pb2.Media(url=url, media_type="photo") for url in photos if isinstance(url, str)
    ]
    if isinstance(value.get("video"), str):
        media.append(common_pb2.Media(url=value["video"], media_type="video"))
    return media


def _instagram_comment(
    context: _Entry, value: dict[str, Any], where: str
) -> interaction_pb2.Interaction:
    comment_id = str(require(value, "id", where))
    sender = as_object(require(value, "from", where), f"{where}.from")
    media = as_object(require(value, "media", where), f"{where}.media")
    media_id = str(require(media, "id", f"{where}.media"))
    return context.interaction(
        external_id=comment_id,
        # Comment notifications carry no creation time: the entry's is when Meta sent it.
        occurred_at=epoch_time(context.time, f"{context.where}.time", context.ingested_at),
        conversation_id=media_id,
        in_reply_to=str(value.get("parent_id") or media_id),
        author=common_pb2.Author(
            handle=str(require(sender, "username", f"{where}.from")),
            channel_user_id=str(sender.get("id") or ""),
        ),
        text=str(value.get("text") or ""),
        kind="comment",
    )


def _instagram_mention(
    context: _Entry, value: dict[str, Any], where: str
) -> interaction_pb2.Interaction:
    # The notification names only the media (and the comment) that @mention the account;
    # author and text have to be read from the Graph API (mentioned_comment / mentioned_media).
    media_id = str(require(value, "media_id", where))
    comment_id = str(value.get("comment_id") or "")
    return context.interaction(
        external_id=comment_id or media_id,
        occurred_at=epoch_time(context.time, f"{context.where}.time", context.ingested_at),
        conversation_id=media_id,
        in_reply_to=media_id if comment_id else "",
        author=common_pb2.Author(),
        text="",
        kind="mention",
    )


def _direct_message(
    context: _Entry, event: dict[str, Any], where: str
) -> interaction_pb2.Interaction | None:
    message = optional_object(event, "message", where)
    if not message:
        _skip("messaging event without a message", where, keys=",".join(sorted(event)))
        return None
    if message.get("is_echo"):
        _skip("echo of the account's own message", where)
        return None
    sender = as_object(require(event, "sender", where), f"{where}.sender")
    sender_id = str(require(sender, "id", f"{where}.sender"))
    mid = str(require(message, "mid", f"{where}.message"))
    reply_to = optional_object(message, "reply_to", f"{where}.message")
    media = []
    for k, raw in enumerate(optional_list(message, "attachments", f"{where}.message")):
        attachment = as_object(raw, f"{where}.message.attachments[{k}]")
        content = optional_object(attachment, "payload", f"{where}.message.attachments[{k}]")
        media.append(
            common_pb2.Media(
                url=str(content.get("url") or ""), media_type=str(attachment.get("type") or "")
            )
        )
    return context.interaction(
        external_id=mid,
        occurred_at=epoch_time(
            event.get("timestamp", context.time), f"{where}.timestamp", context.ingested_at
        ),
        # One thread per person and account: the page-scoped id of the person is stable.
        conversation_id=f"{context.account_id}-{sender_id}",
        in_reply_to=str(reply_to.get("mid") or ""),
        is_public=False,
        author=common_pb2.Author(handle=sender_id, channel_user_id=sender_id),
        text=str(message.get("text") or ""),
        kind="dm",
        media=media,
    )
