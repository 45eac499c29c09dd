"""Dimensions of a routed interaction and authors' pseudonyms (pure logic).

Every dimension is a bounded label: brands outside the configured list, and queues too
long to be configured ones, count as ``other``, so the series stay few whatever events
carry. The windowed KPIs live in ``windows`` and ``engine``; the event ids applied, in
``dedup``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from socialcrm.labels import bounded_label
from socialcrm.v1 import common_pb2, routed_pb2


@dataclass(frozen=True)
class InteractionDimensions:
    brand: str
    channel: str
    language: str
    polarity: str
    queue: str


def dimensions_of(
    routed: routed_pb2.RoutedInteraction, brands: Collection[str]
) -> InteractionDimensions:
    interaction = routed.enriched.interaction
    enrichment = routed.enriched.enrichment
    # Bounded label values: anything outside the known languages counts as "other".
    language = enrichment.language if enrichment.language in ("fr", "en") else "other"
    return InteractionDimensions(
        brand=bounded_label(interaction.brand, brands) if interaction.brand else "unknown",
        channel=common_pb2.Channel.Name(interaction.header.channel)
        .removeprefix("CHANNEL_")
        .lower(),
        language=language,
        polarity=common_pb2.Polarity.Name(enrichment.polarity).removeprefix("POLARITY_").lower(),
        queue=bounded_label(routed.routing.queue or "none"),
    )


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
