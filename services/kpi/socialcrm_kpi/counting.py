"""Dimensions of a routed interaction and authors' pseudonyms (pure logic).

Every dimension is a bounded label, whatever events carry: brands outside the configured
list, queues outside the known ones, languages other than French and English, channels
and polarities the contract does not name count as ``other``, so the series stay few.
The windowed KPIs live in ``windows`` and ``engine``; the event ids applied, in ``dedup``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from socialcrm.labels import OTHER, bounded_label
from socialcrm.v1 import common_pb2, routed_pb2

LANGUAGES = frozenset({"fr", "en"})


@dataclass(frozen=True)
class InteractionDimensions:
    brand: str
    channel: str
    language: str
    polarity: str
    queue: str


def dimensions_of(
    routed: routed_pb2.RoutedInteraction, brands: Collection[str], queues: Collection[str]
) -> InteractionDimensions:
    interaction = routed.enriched.interaction
    enrichment = routed.enriched.enrichment
    return InteractionDimensions(
        brand=bounded_label(interaction.brand, brands) if interaction.brand else "unknown",
        channel=enum_label(common_pb2.Channel.Name, interaction.header.channel, "CHANNEL_"),
        language=bounded_label(enrichment.language, LANGUAGES),
        polarity=enum_label(common_pb2.Polarity.Name, enrichment.polarity, "POLARITY_"),
        queue=queue_label(routed.routing.queue, queues),
    )


def queue_label(queue: str, queues: Collection[str]) -> str:
    """A queue as a label: ``none`` when empty, ``other`` when not a known queue (a forged
    or misrouted event must not add a series)."""
    return bounded_label(queue, queues) if queue else "none"


def enum_label(name: Callable[[Any], str], value: int, prefix: str) -> str:
    """The contract's name of an enum value, lower case without its prefix; ``other`` for
    a number the contract does not define (an open enum decodes any number)."""
    try:
        return name(value).removeprefix(prefix).lower()
    except ValueError:
        return OTHER


class AuthorPseudonyms:
    """Opaque, stable keys of authors, so that the state never holds a handle.

    The key is drawn at start and never stored: a key in the state (kpi.state.v2, a
    compacted topic that erasure does not reach) cannot be linked back to a person. After
    a restart an author gets a new key; at worst one author counts twice in the top
    authors of the bucket that was open.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def of(self, channel: int, author: common_pb2.Author) -> str:
        """The key of an author on a channel; empty for an anonymous author."""
        identity = author.channel_user_id or author.handle
        if not identity:
            return ""
        message = f"{channel}:{identity}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
