"""Normalization of X Account Activity webhook payloads into Interaction events (pure logic).

Follows the published Account Activity API format: a POST body with ``for_user_id`` and
``tweet_create_events`` (each a v1.1 Tweet object) or ``direct_message_events`` (each a
``message_create`` event, its people described in the ``users`` map).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import (
    PayloadError,
    as_object,
    count,
    epoch_time,
    header,
    in_range,
    optional_list,
    optional_object,
    require,
)

X_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"


def parse_x_time(value: str, where: str, ingested_at: datetime) -> datetime:
    try:
        moment = datetime.strptime(value, X_TIME_FORMAT).astimezone(UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"{where} {value!r} is not in X's format {X_TIME_FORMAT!r}") from exc
    return in_range(moment, where, ingested_at)


def tweet_to_interaction(
    tweet: dict[str, Any], *, brand: str, ingested_at: datetime, where: str = "tweet"
) -> interaction_pb2.Interaction:
    tweet = as_object(tweet, where)
    tweet_id = str(require(tweet, "id_str", where))
    user = as_object(require(tweet, "user", where), f"{where}.user")
    extended = optional_object(tweet, "extended_tweet", where)
    text = extended.get("full_text") or require(tweet, "text", where)
    in_reply_to = str(tweet.get("in_reply_to_status_id_str") or "")
    kind = "reply" if in_reply_to else "quote" if tweet.get("is_quote_status") else "post"
    entities = extended.get("entities") or optional_object(tweet, "entities", where)
    entities = as_object(entities, f"{where}.entities")
    return interaction_pb2.Interaction(
        header=header(
            common_pb2.CHANNEL_X,
            tweet_id,
            parse_x_time(require(tweet, "created_at", where), f"{where}.created_at", ingested_at),
            ingested_at,
        ),
        # The v1.1 payload names the parent, not the thread root; the parent keeps a
        # reply in its parent's partition, which is what ordering needs here.
        conversation_id=in_reply_to or tweet_id,
        in_reply_to=in_reply_to,
        is_public=True,
        author=common_pb2.Author(
            handle=str(require(user, "screen_name", f"{where}.user")),
            channel_user_id=str(user.get("id_str") or ""),
            display_name=str(user.get("name") or ""),
            followers=count(user.get("followers_count"), f"{where}.user.followers_count"),
            verified=user.get("verified") is True,
        ),
        text=str(text),
        language_hint="" if tweet.get("lang") in (None, "und") else str(tweet["lang"]),
        media=[
            common_pb2.Media(
                url=str(m.get("media_url_https", "")), media_type=str(m.get("type", ""))
            )
            for m in _objects(entities, "media", f"{where}.entities")
        ],
        links=[
            str(u.get("expanded_url") or u.get("url") or "")
            for u in _objects(entities, "urls", f"{where}.entities")
        ],
        engagement=common_pb2.Engagement(
            likes=count(tweet.get("favorite_count"), f"{where}.favorite_count"),
            shares=count(tweet.get("retweet_count"), f"{where}.retweet_count")
            + count(tweet.get("quote_count"), f"{where}.quote_count"),
            replies=count(tweet.get("reply_count"), f"{where}.reply_count"),
        ),
        raw_ref=f"x/tweet/{tweet_id}",
        brand=brand,
        kind=kind,
    )


def _objects(obj: dict[str, Any], field: str, where: str) -> list[dict[str, Any]]:
    return [
        as_object(item, f"{where}.{field}[{i}]")
        for i, item in enumerate(optional_list(obj, field, where))
    ]


def direct_message_to_interaction(
    event: dict[str, Any],
    users: dict[str, Any],
    *,
    brand: str,
    ingested_at: datetime,
    where: str,
) -> interaction_pb2.Interaction:
    event = as_object(event, where)
    message_id = str(require(event, "id", where))
    create = as_object(require(event, "message_create", where), f"{where}.message_create")
    sender_id = str(require(create, "sender_id", f"{where}.message_create"))
    target = optional_object(create, "target", f"{where}.message_create")
    recipient_id = str(target.get("recipient_id") or "")
    data = as_object(
        require(create, "message_data", f"{where}.message_create"),
        f"{where}.message_create.message_data",
    )
    sender = users.get(sender_id)
    sender = sender if isinstance(sender, dict) else {}
    entities = optional_object(data, "entities", f"{where}.message_create.message_data")
    # X names a one-to-one conversation by its two user ids, the smaller first.
    pair = sorted((sender_id, recipient_id), key=lambda i: (len(i), i)) if recipient_id else []
    return interaction_pb2.Interaction(
        header=header(
            common_pb2.CHANNEL_X,
            message_id,
            epoch_time(
                require(event, "created_timestamp", where),
                f"{where}.created_timestamp",
                ingested_at,
            ),
            ingested_at,
        ),
        conversation_id="-".join(pair) or sender_id,
        is_public=False,
        author=common_pb2.Author(
            # Without the users map the id is the only handle there is.
            handle=str(sender.get("screen_name") or sender_id),
            channel_user_id=sender_id,
            display_name=str(sender.get("name") or ""),
            followers=count(sender.get("followers_count"), f"users.{sender_id}.followers_count"),
            verified=sender.get("verified") is True,
        ),
        text=str(data.get("text") or ""),
        links=[
            str(u.get("expanded_url") or u.get("url") or "")
            for u in _objects(entities, "urls", f"{where}.message_create.message_data.entities")
        ],
        raw_ref=f"x/dm/{message_id}",
        brand=brand,
        kind="dm",
    )


def normalize_account_activity(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of an Account Activity event; other event kinds give an empty list.

    Direct messages the subscribed account sent itself (``for_user_id``) are left out:
    they are the brand's answers, not the customer's words.
    """
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    tweets = payload.get("tweet_create_events", [])
    if not isinstance(tweets, list):
        raise PayloadError("tweet_create_events is not a list")
    found = [
        tweet_to_interaction(
            t, brand=brand, ingested_at=ingested_at, where=f"tweet_create_events[{i}]"
        )
        for i, t in enumerate(tweets)
    ]
    users = optional_object(payload, "users", "")
    own_id = str(payload.get("for_user_id") or "")
    for i, event in enumerate(optional_list(payload, "direct_message_events", "")):
        where = f"direct_message_events[{i}]"
        if as_object(event, where).get("type") != "message_create":
            continue
        message = direct_message_to_interaction(
            event, users, brand=brand, ingested_at=ingested_at, where=where
        )
        if message.author.channel_user_id != own_id:
            found.append(message)
    return found
