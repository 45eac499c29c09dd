"""Normalisation of X Account Activity webhook payloads into Interaction events (pure logic).

Follows the published Account Activity API format: a POST body with ``for_user_id``
and ``tweet_create_events``, each a v1.1 Tweet object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.payload import PayloadError, require

X_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"


def parse_x_time(value: str) -> datetime:
    try:
        return datetime.strptime(value, X_TIME_FORMAT).astimezone(UTC)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"created_at {value!r} is not in X's format {X_TIME_FORMAT!r}") from exc


def tweet_to_interaction(
    tweet: dict[str, Any], *, brand: str, ingested_at: datetime, where: str = "tweet"
) -> interaction_pb2.Interaction:
    if not isinstance(tweet, dict):
        raise PayloadError(f"{where} is not an object")
    tweet_id = str(require(tweet, "id_str", where))
    user = require(tweet, "user", where)
    if not isinstance(user, dict):
        raise PayloadError(f"{where}.user is not an object")
    extended = tweet.get("extended_tweet") or {}
    text = extended.get("full_text") or require(tweet, "text", where)
    in_reply_to = tweet.get("in_reply_to_status_id_str") or ""
    kind = "reply" if in_reply_to else "quote" if tweet.get("is_quote_status") else "post"
    entities = extended.get("entities") or tweet.get("entities") or {}
    channel = common_pb2.CHANNEL_X
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(
            event_id=contract.event_id_for(channel, tweet_id),
            channel=channel,
            external_id=tweet_id,
            occurred_at=contract.timestamp(parse_x_time(require(tweet, "created_at", where))),
            ingested_at=contract.timestamp(ingested_at),
            schema_version=contract.SCHEMA_VERSION,
            producer="ingest",
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
            followers=int(user.get("followers_count") or 0),
            verified=bool(user.get("verified")),
        ),
        text=str(text),
        language_hint="" if tweet.get("lang") in (None, "und") else str(tweet["lang"]),
        media=[
            common_pb2.Media(
                url=str(m.get("media_url_https", "")), media_type=str(m.get("type", ""))
            )
            for m in entities.get("media", [])
        ],
        links=[str(u.get("expanded_url") or u.get("url") or "") for u in entities.get("urls", [])],
        engagement=common_pb2.Engagement(
            likes=int(tweet.get("favorite_count") or 0),
            shares=int(tweet.get("retweet_count") or 0) + int(tweet.get("quote_count") or 0),
            replies=int(tweet.get("reply_count") or 0),
        ),
        raw_ref=f"x/tweet/{tweet_id}",
        brand=brand,
        kind=kind,
    )


def normalize_account_activity(
    payload: Any, *, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of an Account Activity event; other event kinds give an empty list."""
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    tweets = payload.get("tweet_create_events", [])
    if not isinstance(tweets, list):
        raise PayloadError("tweet_create_events is not a list")
    return [
        tweet_to_interaction(
            t, brand=brand, ingested_at=ingested_at, where=f"tweet_create_events[{i}]"
        )
        for i, t in enumerate(tweets)
    ]
