"""Normalization of live-chat transcripts (pure logic): one interaction per visitor message.

The chat platform posts a transcript (whole, or the part since its last delivery)::

    {"conversation_id": "c-5521", "language": "fr",
     "visitor": {"id": "v-88", "name": "Camille Martin", "email": "camille.martin@example.fr"},
     "messages": [{"id": "1", "from": "visitor" | "agent" | "bot", "text": "...",
                   "created_at": "2026-11-16T09:12:44Z"}, ...]}

Agents' and bots' lines are the brand speaking and are left out. A visitor known by their
email address gets it as handle, like an email's sender, so that the CRM follows the
same person from one channel to the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import (
    PayloadError,
    as_list,
    as_object,
    header,
    iso_time,
    require,
)


def normalize_chat(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    transcript = as_object(payload, "body")
    conversation_id = str(require(transcript, "conversation_id", ""))
    visitor = as_object(require(transcript, "visitor", ""), "visitor")
    visitor_id = str(require(visitor, "id", "visitor"))
    email = visitor.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise PayloadError(f"visitor.email {email!r} is not an email address")
    language = transcript.get("language")
    if "messages" not in transcript:
        raise PayloadError("messages is missing")
    messages = as_list(transcript["messages"], "messages")
    author = common_pb2.Author(
        handle=email.strip().lower() if email else visitor_id,
        channel_user_id=visitor_id,
        display_name=str(visitor.get("name") or ""),
    )
    found = []
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        message = as_object(raw, where)
        if require(message, "from", where) != "visitor":
            continue
        message_id = str(require(message, "id", where))
        # Message ids are only unique within their conversation.
        external_id = f"{conversation_id}/{message_id}"
        found.append(
            interaction_pb2.Interaction(
                header=header(
                    common_pb2.CHANNEL_CHAT,
                    external_id,
                    iso_time(
                        require(message, "created_at", where),
                        f"{where}.created_at",
                        ingested_at,
                    ),
                    ingested_at,
                ),
                conversation_id=conversation_id,
                is_public=False,
                author=author,
                text=str(require(message, "text", where)),
                language_hint=language if isinstance(language, str) else "",
                raw_ref=f"chat/{external_id}",
                brand=brand,
                kind="chat",
            )
        )
    return found
