"""JSON Schemas of the webhook bodies, for the OpenAPI documentation (and its fuzz tests).

They describe what ingest reads of each network's published format, not the whole format:
networks add fields freely, and the normalisers ignore what they do not use.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

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
