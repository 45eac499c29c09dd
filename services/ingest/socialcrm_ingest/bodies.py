"""OpenAPI schemas of the webhook bodies: what ingest reads of each network's format (pure data).

They describe what the normalizers read of each network's published format, not the whole
format: networks add fields freely, and the normalizers ignore what they do not use. Each
row of ``channels.WEBHOOKS`` names its body's schema; the docs and the fuzz tests of the
webhooks are generated from them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_ID: Schema = {"type": "string", "minLength": 1}
_TIME: Schema = {"type": "integer", "minimum": 0}
_ISO_TIME: Schema = {"type": "string", "format": "date-time"}


def object_schema(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items, "maxItems": 3}


_TWEET = object_schema(
    ["id_str", "text", "created_at", "user"],
    id_str=_ID,
    text={"type": "string"},
    created_at={"type": "string", "example": "Mon Nov 16 09:12:44 +0000 2026"},
    in_reply_to_status_id_str={"type": ["string", "null"]},
    is_quote_status={"type": "boolean"},
    lang={"type": "string"},
    user=object_schema(
        ["screen_name"],
        id_str=_ID,
        screen_name=_ID,
        name={"type": "string"},
        followers_count={"type": "integer"},
        verified={"type": "boolean"},
    ),
)
_DIRECT_MESSAGE = object_schema(
    ["type", "id", "created_timestamp", "message_create"],
    type={"const": "message_create"},
    id=_ID,
    created_timestamp={"type": "string", "pattern": "^[0-9]{13}$"},
    message_create=object_schema(
        ["sender_id", "message_data"],
        sender_id=_ID,
        target=object_schema(["recipient_id"], recipient_id=_ID),
        message_data=object_schema(["text"], text={"type": "string"}),
    ),
)
X_ACCOUNT_ACTIVITY: Schema = object_schema(
    ["for_user_id"],
    for_user_id=_ID,
    tweet_create_events=_array(_TWEET),
    direct_message_events=_array(_DIRECT_MESSAGE),
    users={"type": "object", "additionalProperties": {"type": "object"}},
)

X_FILTERED_STREAM: Schema = object_schema(
    ["data"],
    data=object_schema(
        ["id", "text", "author_id", "created_at"],
        id=_ID,
        text={"type": "string"},
        author_id=_ID,
        created_at=_ISO_TIME,
        conversation_id=_ID,
        lang={"type": "string"},
        referenced_tweets=_array(
            object_schema(
                ["type", "id"], type={"enum": ["replied_to", "quoted", "retweeted"]}, id=_ID
            )
        ),
    ),
    includes=object_schema(
        [],
        users=_array(
            object_schema(["id", "username"], id=_ID, username=_ID, name={"type": "string"})
        ),
    ),
    matching_rules=_array(object_schema(["id"], id=_ID, tag={"type": "string"})),
)

_FEED_CHANGE = object_schema(
    ["field", "value"],
    field={"const": "feed"},
    value=object_schema(
        ["item", "verb", "from", "post_id", "created_time"],
        item={"enum": ["status", "post", "photo", "comment", "reaction"]},
        verb={"enum": ["add", "edited", "remove"]},
        **{"from": object_schema(["id"], id=_ID, name={"type": "string"})},
        post_id=_ID,
        comment_id=_ID,
        parent_id=_ID,
        message={"type": "string"},
        created_time=_TIME,
    ),
)
_INSTAGRAM_CHANGE = {
    "oneOf": [
        object_schema(
            ["field", "value"],
            field={"enum": ["comments", "live_comments"]},
            value=object_schema(
                ["id", "from", "media", "text"],
                id=_ID,
                **{"from": object_schema(["id", "username"], id=_ID, username=_ID)},
                media=object_schema(["id"], id=_ID, media_product_type={"type": "string"}),
                parent_id=_ID,
                text={"type": "string"},
            ),
        ),
        object_schema(
            ["field", "value"],
            field={"const": "mentions"},
            value=object_schema(["media_id"], media_id=_ID, comment_id=_ID),
        ),
    ]
}
_MESSAGING = object_schema(
    ["sender", "recipient", "timestamp", "message"],
    sender=object_schema(["id"], id=_ID),
    recipient=object_schema(["id"], id=_ID),
    timestamp=_TIME,
    message=object_schema(["mid"], mid=_ID, text={"type": "string"}, is_echo={"type": "boolean"}),
)
META: Schema = {
    "oneOf": [
        object_schema(
            ["object", "entry"],
            object={"const": "page"},
            entry=_array(
                object_schema(
                    ["id", "time"],
                    id=_ID,
                    time=_TIME,
                    changes=_array(_FEED_CHANGE),
                    messaging=_array(_MESSAGING),
                )
            ),
        ),
        object_schema(
            ["object", "entry"],
            object={"const": "instagram"},
            entry=_array(
                object_schema(
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

FORUM: Schema = object_schema(
    ["type", "id", "thread_id", "author", "text", "created_at"],
    type={"enum": ["post", "reply"]},
    id=_ID,
    thread_id=_ID,
    in_reply_to=_ID,
    space={"enum": ["forum", "community"]},
    author=object_schema(
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

CHAT: Schema = object_schema(
    ["conversation_id", "visitor", "messages"],
    conversation_id=_ID,
    language={"type": "string"},
    visitor=object_schema(
        ["id"], id=_ID, name={"type": "string"}, email={"type": "string", "format": "email"}
    ),
    messages=_array(
        object_schema(
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
