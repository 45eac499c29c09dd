"""The kpi service's handlers: routed interactions and replies into the engine, the
watermark from the input partitions, and the events and metrics of what closed or fired.

No I/O: the transactional processor calls them inside a batch's transaction and
publishes what they return.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence

from aiokafka import ConsumerRecord
from google.protobuf.message import Message
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_kpi import metrics
from socialcrm_kpi.counting import (
    AuthorPseudonyms,
    InteractionDimensions,
    dimensions_of,
    queue_label,
)
from socialcrm_kpi.engine import KpiEngine, Outcome
from socialcrm_kpi.journal import ReplyFacts, RoutedFacts
from socialcrm_kpi.messages import alert_of, event_time, severity_name, snapshot_of
from socialcrm_kpi.watermarks import PartitionId, PartitionWatermarks

ROUTED_TOPIC = contract.topic_of(routed_pb2.RoutedInteraction)
REPLIES_TOPIC = contract.topic_of(reply_pb2.Reply)
_SLA_MET = {reply_pb2.SLA_STATUS_MET: True, reply_pb2.SLA_STATUS_BREACHED: False}


def publishable(outcome: Outcome, topic: str = "") -> list[Message]:
    """Messages of what closed or fired, with the metrics they move; ``topic``: where the
    event that had this outcome came from (for the windows that refused it)."""
    for window in outcome.refused:
        metrics.WINDOW_LATE_EVENTS.labels(topic, window).inc()
    messages: list[Message] = []
    sentiment_by_brand: dict[tuple[str, str], list[float]] = {}
    for closed in outcome.closed:
        messages.append(snapshot_of(closed))
        metrics.WINDOWS_CLOSED.labels(closed.window).inc()
        dims = dict(closed.dimensions)
        if "channel" in dims:
            figures = sentiment_by_brand.setdefault((dims["brand"], closed.window), [0, 0, 0])
            figures[0] += closed.values.get("positive", 0.0)
            figures[1] += closed.values.get("negative", 0.0)
            figures[2] += closed.values.get("volume", 0.0)
        if "share_of_voice" in closed.values:
            metrics.SHARE_OF_VOICE.labels(dims["brand"], closed.window).set(
                closed.values["share_of_voice"]
            )
        if "sla_compliance_ratio" in closed.values:
            metrics.SLA_COMPLIANCE.labels(dims["queue"], closed.window).set(
                closed.values["sla_compliance_ratio"]
            )
    for (brand, window), (positive, negative, volume) in sentiment_by_brand.items():
        if volume:
            metrics.NET_SENTIMENT.labels(brand, window).set((positive - negative) / volume)
    for spike in outcome.spikes:
        alert = alert_of(spike)
        messages.append(alert)
        metrics.ALERTS.labels(alert.kind, severity_name(alert.severity)).inc()
    return messages


class KpiHandlers:
    """Feeds the engine from records; ``punctuate`` moves its watermark.

    ``new_engine`` makes an empty engine: the state is dropped (``reset``) when the
    partitions are revoked or a transaction is aborted, then restored from the changelog.
    ``brands`` and ``queues`` are the label values counted under their own name.
    ``on_spike`` runs when an alert fires (to refresh the gauges at once); ``clock`` tells
    when a record was read, for the partitions' idleness."""

    def __init__(
        self,
        new_engine: Callable[[], KpiEngine],
        *,
        brands: frozenset[str],
        queues: frozenset[str],
        idle_partition_seconds: float,
        on_spike: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.new_engine = new_engine
        self.brands = brands
        self.queues = queues
        self.idle_partition_seconds = idle_partition_seconds
        self.on_spike = on_spike
        self.clock = clock
        # Drawn once per process: pseudonyms stay the same across resets.
        self.pseudonyms = AuthorPseudonyms()
        self.engine = new_engine()
        self.watermarks = PartitionWatermarks(idle_partition_seconds)
        # The counter's child per dimensions, looked up once: labels(**asdict(dims)) cost
        # 0.0106 ms an event against 0.0007 (20,000 calls, best of 5). As many as the
        # counter's own series.
        self._interactions: dict[InteractionDimensions, Counter] = {}
        # Series exist from the start, so that dashboards and alerts see zeros, not gaps.
        metrics.ALERTS.labels("viral_spike", "warning")
        metrics.ALERTS.labels("viral_spike", "critical")

    def _interactions_of(self, dims: InteractionDimensions) -> Counter:
        counter = self._interactions.get(dims)
        if counter is None:
            counter = self._interactions[dims] = metrics.INTERACTIONS.labels(
                dims.brand, dims.channel, dims.language, dims.polarity, dims.queue
            )
        return counter

    def reset(self) -> None:
        """Forget everything: an empty engine, no partitions."""
        self.engine = self.new_engine()
        self.watermarks = PartitionWatermarks(self.idle_partition_seconds)

    def assign(self, partitions: Collection[PartitionId], now: float) -> None:
        self.watermarks.assign(partitions, now)

    def on_routed(
        self, routed: routed_pb2.RoutedInteraction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        at = event_time(routed.header)
        self.watermarks.observe((record.topic, record.partition), at, self.clock())
        if routed.header.event_id in self.engine.seen:
            return []  # a redelivery: counted once
        dims = dimensions_of(routed, self.brands, self.queues)
        self._interactions_of(dims).inc()
        if routed.routing.escalated:
            metrics.ESCALATIONS.labels(dims.queue).inc()
        interaction = routed.enriched.interaction
        late_before = self.engine.interactions.late_events
        outcome = self.engine.on_routed(
            RoutedFacts(
                event_id=routed.header.event_id,
                occurred_at=at,
                dims=dims,
                sentiment_score=routed.enriched.enrichment.sentiment_score,
                escalated=routed.routing.escalated,
                needs_response=routed.routing.needs_response,
                author=self.pseudonyms.of(interaction.header.channel, interaction.author),
                reach=routed.enriched.enrichment.reach,
            )
        )
        if self.engine.interactions.late_events > late_before:
            metrics.LATE_EVENTS.labels(ROUTED_TOPIC).inc()
        if outcome.spikes:
            self.on_spike()
        return publishable(outcome, ROUTED_TOPIC)

    def on_reply(
        self, reply: reply_pb2.Reply, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        at = event_time(reply.header)
        self.watermarks.observe((record.topic, record.partition), at, self.clock())
        if reply.header.event_id in self.engine.seen:
            return []  # a redelivery: counted once
        queue = queue_label(reply.queue, self.queues)
        sla_met = _SLA_MET.get(reply.sla_status)
        if reply.first_response:
            metrics.FIRST_RESPONSE_SECONDS.labels(queue).observe(reply.first_response_seconds)
        if reply.resolution_seconds > 0:
            metrics.RESOLUTION_SECONDS.labels(queue).observe(reply.resolution_seconds)
        if sla_met is None or not reply.first_response:
            sla_status = "none"
        else:
            sla_status = "met" if sla_met else "breached"
        metrics.REPLIES.labels(queue, sla_status).inc()
        late_before = self.engine.replies.late_events
        outcome = self.engine.on_reply(
            ReplyFacts(
                interaction_event_id=reply.interaction_event_id,
                occurred_at=at,
                queue=queue,
                first_response=reply.first_response,
                first_response_seconds=reply.first_response_seconds,
                sla_met=sla_met,
                resolution_seconds=reply.resolution_seconds,
                event_id=reply.header.event_id,
            )
        )
        if self.engine.replies.late_events > late_before:
            metrics.LATE_EVENTS.labels(REPLIES_TOPIC).inc()
        return publishable(outcome, REPLIES_TOPIC)

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        """Advance the windows to the lowest watermark of the partitions that are not idle,
        or to the wall clock when every partition is idle and caught up."""
        if not self.watermarks.partitions:
            return []
        watermark = self.watermarks.watermark(now, caught_up)
        target = now if watermark is None else watermark
        if target == -math.inf:
            return []
        messages = publishable(self.engine.advance(target))
        metrics.WATERMARK.set(max(self.engine.watermark, 0.0))
        return messages
