"""OpenAPI documentation of the webhooks (and of their fuzz tests): bodies and answers.

The body schemas describe what ingest reads of each network's published format, not the
whole format: networks add fields freely, and the normalizers ignore what they do not use.
The answers are every status a route really gives, errors in the shared shape
(``socialcrm.errors``), the 503 with its ``Retry-After`` header.
"""

from __future__ import annotations

from typing import Any

from socialcrm.errors import error_responses

Schema = dict[str, Any]
Responses = dict[int | str, dict[str, Any]]

_ID: Schema = {"type": "string", "minLength": 1}
_TIME: Schema = {"type": "integer", "minimum": 0}
_ISO_TIME: Schema = {"type": "string", "format": "date-time"}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items, "maxItems": 3}


_TWEET = _object(
    ["id_str", "text", "created_at", "user"],
    id_str=_ID,
    text={"type": "string"},
    created_at={"type": "string", "example": "Mon Nov 16 09:12:44 +0000 2026"},
    in_reply_to_status_id_str={"type": ["string", "null"]},
    is_quote_status={"type": "boolean"},
    lang={"type": "string"},
    user=_object(
        ["screen_name"],
        id_str=_ID,
        screen_name=_ID,
        name={"type": "string"},
        followers_count={"type": "integer"},
        verified={"type": "boolean"},
    ),
)
_DIRECT_MESSAGE = _object(
    ["type", "id", "created_timestamp", "message_create"],
    type={"const": "message_create"},
    id=_ID,
    created_timestamp={"type": "string", "pattern": "^[0-9]{13}$"},
    message_create=_object(
        ["sender_id", "message_data"],
        sender_id=_ID,
        target=_object(["recipient_id"], recipient_id=_ID),
        message_data=_object(["text"], text={"type": "string"}),
    ),
)
X_ACCOUNT_ACTIVITY: Schema = _object(
    ["for_user_id"],
    for_user_id=_ID,
    tweet_create_events=_array(_TWEET),
    direct_message_events=_array(_DIRECT_MESSAGE),
    users={"type": "object", "additionalProperties": {"type": "object"}},
)

X_FILTERED_STREAM: Schema = _object(
    ["data"],
    data=_object(
        ["id", "text", "author_id", "created_at"],
        id=_ID,
        text={"type": "string"},
        author_id=_ID,
        created_at=_ISO_TIME,
        conversation_id=_ID,
        lang={"type": "string"},
        referenced_tweets=_array(
            _object(["type", "id"], type={"enum": ["replied_to", "quoted", "retweeted"]}, id=_ID)
        ),
    ),
    includes=_object(
        [],
        users=_array(_object(["id", "username"], id=_ID, username=_ID, name={"type": "string"})),
    ),
    matching_rules=_array(_object(["id"], id=_ID, tag={"type": "string"})),
)

_FEED_CHANGE = _object(
    ["field", "value"],
    field={"const": "feed"},
    value=_object(
        ["item", "verb", "from", "post_id", "created_time"],
        item={"enum": ["status", "post", "photo", "comment", "reaction"]},
        verb={"enum": ["add", "edited", "remove"]},
        **{"from": _object(["id"], id=_ID, name={"type": "string"})},
        post_id=_ID,
        comment_id=_ID,
        parent_id=_ID,
        message={"type": "string"},
        created_time=_TIME,
    ),
)
_INSTAGRAM_CHANGE = {
    "oneOf": [
        _object(
            ["field", "value"],
            field={"enum": ["comments", "live_comments"]},
            value=_object(
                ["id", "from", "media", "text"],
                id=_ID,
                **{"from": _object(["id", "username"], id=_ID, username=_ID)},
                media=_object(["id"], id=_ID, media_product_type={"type": "string"}),
                parent_id=_ID,
                text={"type": "string"},
            ),
        ),
        _object(
            ["field", "value"],
            field={"const": "mentions"},
            value=_object(["media_id"], media_id=_ID, comment_id=_ID),
        ),
    ]
}
_MESSAGING = _object(
    ["sender", "recipient", "timestamp", "message"],
    sender=_object(["id"], id=_ID),
    recipient=_object(["id"], id=_ID),
    timestamp=_TIME,
    message=_object(["mid"], mid=_ID, text={"type": "string"}, is_echo={"type": "boolean"}),
)
META: Schema = {
    "oneOf": [
        _object(
            ["object", "entry"],
            object={"const": "page"},
            entry=_array(
                _object(
                    ["id", "time"],
                    id=_ID,
                    time=_TIME,
                    changes=_array(_FEED_CHANGE),
                    messaging=_array(_MESSAGING),
                )
            ),
        ),
        _object(
            ["object", "entry"],
            object={"const": "instagram"},
            entry=_array(
                _object(
                    ["id", "time"],
                    id=_ID,
                    time=_TIME,
                    changes=_array(_INSTAGRAM_CHANGE),
                    messaging=_array(_MESSAGING),
                )
            ),
        ),
    ]
}

FORUM: Schema = _object(
    ["type", "id", "thread_id", "author", "text", "created_at"],
    type={"enum": ["post", "reply"]},
    id=_ID,
    thread_id=_ID,
    in_reply_to=_ID,
    space={"enum": ["forum", "community"]},
    author=_object(
        ["username"],
        id=_ID,
        username=_ID,
        display_name={"type": "string"},
        followers={"type": "integer"},
        verified={"type": "boolean"},
    ),
    title={"type": "string"},
    text={"type": "string"},
    created_at=_ISO_TIME,
    language={"type": "string"},
    url={"type": "string"},
)

CHAT: Schema = _object(
    ["conversation_id", "visitor", "messages"],
    conversation_id=_ID,
    language={"type": "string"},
    visitor=_object(
        ["id"], id=_ID, name={"type": "string"}, email={"type": "string", "format": "email"}
    ),
    messages=_array(
        _object(
            ["id", "from", "text", "created_at"],
            id=_ID,
            **{"from": {"enum": ["visitor", "agent", "bot"]}},
            text={"type": "string"},
            created_at=_ISO_TIME,
        )
    ),
)

EMAIL: Schema = {
    "type": "string",
    "description": "An RFC 5322 message: headers (From, Message-ID, Date...) then the body.",
}


ACCEPTED: Schema = _object(
    ["accepted", "duplicates", "event_ids"],
    accepted={"type": "integer", "minimum": 0, "description": "Interactions published."},
    duplicates={
        "type": "integer",
        "minimum": 0,
        "description": "Interactions already published recently, not published again.",
    },
    event_ids={
        "type": "array",
        "items": {"type": "string"},
        "description": "Event id of every interaction of the call, duplicates included.",
    },
)
CRC_RESPONSE: Schema = _object(
    ["response_token"],
    response_token={"type": "string", "pattern": "^sha256=[A-Za-z0-9+/=]+$"},
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same call again.",
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
    }
}


def request_body(schema: Schema, *media_types: str) -> dict[str, Any]:
    """OpenAPI of a body the route reads raw (to check its signature before parsing it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {m: {"schema": schema} for m in media_types or ("application/json",)},
        }
    }


def _answers(ok: tuple[str, Schema] | None, errors: dict[int, str]) -> Responses:
    """OpenAPI ``responses``: 200 with ``ok`` (description and JSON schema; None: the
    route's own), then ``errors`` in the shared shape."""
    responses = error_responses(*errors)
    for status, description in errors.items():
        responses[status]["description"] = description
    if ok is not None:
        description, schema = ok
        responses[200] = {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    return responses


def webhook_responses(decodes_json: bool = True) -> Responses:
    """Answers of a webhook POST (``WebhookHandlers.receive`` and the body's reading)."""
    errors = {
        401: "Signature missing or not matching the body, timestamp outside the replay "
        "window, or a replayed call",
        404: "The channel is not enabled (INGEST_CHANNELS)",
        413: "Body over max_body_bytes, more interactions than max_items_per_call, or an "
        "event over the broker's record limit",
        422: "The body is not the network's format, a field is out of bounds (named), "
        "parsing took too long, or ?brand= is not a configured brand",
        503: "The broker did not acknowledge every event in time: retry after Retry-After",
    }
    if decodes_json:
        errors[400] = "The body is not JSON"
    responses = _answers(("Accepted (published, or recently published)", ACCEPTED), errors)
    responses[503]["headers"] = RETRY_AFTER
    return responses


X_CRC_RESPONSES = _answers(
    ("The CRC response token", CRC_RESPONSE),
    {
        400: "crc_token is not a plain token (letters, digits, -_+/=) or too long",
        404: "X is not enabled, or X_CONSUMER_SECRET is not configured",
        422: "crc_token is missing",
    },
)
META_HANDSHAKE_RESPONSES = _answers(
    None,
    {
        400: "hub.mode is not subscribe, or hub.challenge is missing",
        403: "hub.verify_token does not match META_VERIFY_TOKEN",
        404: "Meta is not enabled (INGEST_CHANNELS)",
    },
)
