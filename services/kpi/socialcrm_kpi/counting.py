"""Dimensions of a routed interaction, and deduplication of redelivered events (pure logic).

The running Prometheus counters are deduplicated on event_id over a bounded recent
window held in memory; the windowed KPIs live in ``windows`` and ``engine``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from socialcrm.v1 import common_pb2, routed_pb2


@dataclass(frozen=True)
class InteractionDimensions:
    brand: str
    channel: str
    language: str
    polarity: str
    queue: str


def dimensions_of(routed: routed_pb2.RoutedInteraction) -> InteractionDimensions:
    interaction = routed.enriched.interaction
    enrichment = routed.enriched.enrichment
    # Bounded label values: anything outside the known languages counts as "other".
    language = enrichment.language if enrichment.language in ("fr", "en") else "other"
    return InteractionDimensions(
        brand=interaction.brand or "unknown",
        channel=common_pb2.Channel.Name(interaction.header.channel)
        .removeprefix("CHANNEL_")
        .lower(),
        language=language,
        polarity=common_pb2.Polarity.Name(enrichment.polarity).removeprefix("POLARITY_").lower(),
        queue=routed.routing.queue or "none",
    )


class RecentEvents:
    """Remembers the last ``capacity`` event ids, to count a redelivered event once."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True
