"""Bounds of what the CRM accepts and keeps (pure).

MongoDB refuses a document over 16 MB: a case or a contact that grew that large would
send every later write of its conversation to the dead-letter topic and make the API
fail. Every field an API caller sets is bounded in length, a case keeps only its newest
history entries (counting those dropped), and a contact holds a bounded number of
identities, so no document can grow toward the cap.
"""

from __future__ import annotations

from typing import Any

MAX_HISTORY_ENTRIES = 200
MAX_IDENTITIES_PER_CONTACT = 50

# Ids of contacts, cases and suggestions are UUIDs (36 characters).
MAX_ID_LENGTH = 64
MAX_ASSIGNEE_LENGTH = 128
MAX_NOTE_LENGTH = 4000
MAX_STATUS_LENGTH = 32
MAX_QUEUE_LENGTH = 64
# RFC 5321's longest address; also far above any network's handle.
MAX_IDENTITY_VALUE_LENGTH = 320
MAX_IDENTITY_KIND_LENGTH = 32
# Display names are short; a longer search only costs the database a slower scan.
MAX_NAME_QUERY_LENGTH = 200


def history_push(entry: dict[str, Any], held: int) -> dict[str, Any]:
    """The update that appends ``entry`` to a case history holding ``held`` entries.

    The newest ``MAX_HISTORY_ENTRIES`` stay; ``history_dropped`` counts the entries let go.
    """
    update: dict[str, Any] = {
        "$push": {"history": {"$each": [entry], "$slice": -MAX_HISTORY_ENTRIES}}
    }
    dropped = held + 1 - MAX_HISTORY_ENTRIES
    if dropped > 0:
        update["$inc"] = {"history_dropped": dropped}
    return update


def identities_fit(held: int, added: int) -> bool:
    """Whether a contact holding ``held`` identities may take ``added`` more."""
    return held + added <= MAX_IDENTITIES_PER_CONTACT
