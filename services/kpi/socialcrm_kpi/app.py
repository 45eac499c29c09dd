"""Wiring of the kpi service.

social.routed.v1 and social.replies.v1 in (consumer group ``kpi``);
KpiSnapshot events on kpi.snapshots.v1 when windows close, Alert events on alerts.v1
on viral spikes, Prometheus metrics on /metrics, durable state in kpi.state.v1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge, Histogram

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer, StreamProcessor
from socialcrm.labels import bounded_label
from socialcrm.v1 import common_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_kpi.counting import AuthorPseudonyms, RecentEvents, dimensions_of
from socialcrm_kpi.engine import KpiEngine, Outcome, ReplyFacts, RoutedFacts
from socialcrm_kpi.settings import KpiSettings
from socialcrm_kpi.spikes import Spike
from socialcrm_kpi.state import KpiStateStore
from socialcrm_kpi.windows import ClosedWindow, dimension_key

INTERACTIONS = Counter(
    "socialcrm_interactions_total",
    "Interactions routed, by brand, channel, language, sentiment polarity and queue.",
    ["brand", "channel", "language", "polarity", "queue"],
)
ESCALATIONS = Counter(
    "socialcrm_escalations_total", "Interactions escalated at routing time.", ["queue"]
)
REPLIES = Counter(
    "socialcrm_replies_total",
    "Agents' replies, by queue and SLA status of first responses (met, breached, none).",
    ["queue", "sla_status"],
)
_DURATION_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)
FIRST_RESPONSE_SECONDS = Histogram(
    "socialcrm_first_response_seconds",
    "Time from an interaction to its first response.",
    ["queue"],
    buckets=_DURATION_BUCKETS,
)
RESOLUTION_SECONDS = Histogram(
    "socialcrm_resolution_seconds",
    "Time from an interaction to its resolution.",
    ["queue"],
    buckets=_DURATION_BUCKETS,
)
BACKLOG_ITEMS = Gauge(
    "socialcrm_backlog_items", "Interactions waiting for a first response.", ["queue"]
)
BACKLOG_OLDEST_AGE = Gauge(
    "socialcrm_backlog_oldest_age_seconds",
    "Age of the oldest interaction waiting for a first response.",
    ["queue"],
)
SHARE_OF_VOICE = Gauge(
    "socialcrm_kpi_share_of_voice_ratio",
    "Share of a brand in the volume of own and competitor brands, last closed window.",
    ["brand", "window"],
)
NET_SENTIMENT = Gauge(
    "socialcrm_kpi_net_sentiment_ratio",
    "(positive - negative) / volume of a brand's interactions, last closed window.",
    ["brand", "window"],
)
SLA_COMPLIANCE = Gauge(
    "socialcrm_kpi_sla_compliance_ratio",
    "First responses within their SLA over first responses judged, last closed window.",
    ["queue", "window"],
)
WINDOWS_CLOSED = Counter(
    "socialcrm_kpi_windows_closed_total", "KPI snapshots published, by window.", ["window"]
)
LATE_EVENTS = Counter(
    "socialcrm_kpi_late_events_total",
    "Events too late for every window they belong to (not counted in snapshots).",
    ["topic"],
)
ALERTS = Counter("socialcrm_alerts_total", "Alerts published.", ["kind", "severity"])
SPIKE_ACTIVE = Gauge(
    "socialcrm_viral_spike_active",
    "1 while a viral spike is under way for the brand and topic, else 0.",
    ["brand", "topic"],
)


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def event_time(header: common_pb2.EventHeader) -> float:
    """When the event occurred; never after it was ingested, so that a source's clock
    running ahead cannot push the watermark into the future and close windows early."""
    return min(_seconds(header.occurred_at), _seconds(header.ingested_at))


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _header(event_id: str, external_id: str, occurred_at: float) -> common_pb2.EventHeader:
    return common_pb2.EventHeader(
        event_id=event_id,
        external_id=external_id,
        occurred_at=_timestamp(occurred_at),
        ingested_at=contract.timestamp(),
        schema_version=contract.SCHEMA_VERSION,
        producer="kpi",
    )


def snapshot_of(closed: ClosedWindow) -> kpi_pb2.KpiSnapshot:
    dims = {"window": closed.window, **dict(closed.dimensions)}
    key = dimension_key(tuple(sorted(dims.items())))
    identity = f"{key}@{closed.start}"
    return kpi_pb2.KpiSnapshot(
        header=_header(contract.derived_event_id(identity, "kpi-snapshot"), identity, closed.end),
        window_start=_timestamp(closed.start),
        window_end=_timestamp(closed.end),
        dimensions=dims,
        dimension_key=key,
        values={k: v for k, v in closed.values.items() if v == v},  # NaN: no data
    )


def alert_of(spike: Spike) -> kpi_pb2.Alert:
    alert_key = f"viral_spike:{spike.brand}:{spike.topic}"
    identity = f"{alert_key}@{spike.bucket_start}"
    severity = kpi_pb2.SEVERITY_CRITICAL if spike.topic == "negative" else kpi_pb2.SEVERITY_WARNING
    return kpi_pb2.Alert(
        header=_header(contract.derived_event_id(identity, "alert"), identity, spike.detected_at),
        alert_key=alert_key,
        kind="viral_spike",
        severity=severity,
        summary=(
            f"Viral spike for {spike.brand} ({spike.topic}): {spike.count} interactions "
            f"since {time.strftime('%H:%M:%S', time.gmtime(spike.bucket_start))} UTC "
            f"against {spike.baseline:.1f} usually"
        ),
        detected_at=_timestamp(spike.detected_at),
        evidence={
            "count": spike.count,
            "baseline": spike.baseline,
            "score": spike.score,
            "z_score": spike.z_score,
            "p_value": spike.p_value,
            "bucket_start": spike.bucket_start,
        },
        sample_event_ids=[post.event_id for post in spike.top_posts],
        brand=spike.brand,
        topic=spike.topic,
        # Each author by the event id of their widest-reach post: no handle on the topic.
        top_authors=[kpi_pb2.AuthorReach(author=e, reach=r) for e, r in spike.top_authors],
    )


def severity_name(severity: kpi_pb2.Severity.ValueType) -> str:
    return kpi_pb2.Severity.Name(severity).removeprefix("SEVERITY_").lower()


def publishable(outcome: Outcome) -> list[Message]:
    """Messages of what closed or fired, with the metrics they move."""
    messages: list[Message] = []
    sentiment_by_brand: dict[tuple[str, str], list[float]] = {}
    for closed in outcome.closed:
        snapshot = snapshot_of(closed)
        messages.append(snapshot)
        WINDOWS_CLOSED.labels(closed.window).inc()
        dims = dict(closed.dimensions)
        if "channel" in dims:
            figures = sentiment_by_brand.setdefault((dims["brand"], closed.window), [0, 0, 0])
            figures[0] += closed.values.get("positive", 0.0)
            figures[1] += closed.values.get("negative", 0.0)
            figures[2] += closed.values.get("volume", 0.0)
        if "share_of_voice" in closed.values:
            SHARE_OF_VOICE.labels(dims["brand"], closed.window).set(closed.values["share_of_voice"])
        if "sla_compliance_ratio" in closed.values:
            SLA_COMPLIANCE.labels(dims["queue"], closed.window).set(
                closed.values["sla_compliance_ratio"]
            )
    for (brand, window), (positive, negative, volume) in sentiment_by_brand.items():
        if volume:
            NET_SENTIMENT.labels(brand, window).set((positive - negative) / volume)
    for spike in outcome.spikes:
        alert = alert_of(spike)
        messages.append(alert)
        ALERTS.labels(alert.kind, severity_name(alert.severity)).inc()
    return messages


class MetricsRefresher:
    """Refreshes the gauges that depend on the clock (backlog age, active spikes)."""

    name = "metrics-refresher"

    def __init__(self, engine: KpiEngine, interval_seconds: float = 5.0) -> None:
        self.engine = engine
        self.interval_seconds = interval_seconds
        self._queues: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.refresh()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        return None

    def refresh(self) -> None:
        backlog = self.engine.backlog_by_queue(time.time())
        for queue in self._queues | set(backlog):
            figures = backlog.get(queue)
            BACKLOG_ITEMS.labels(queue).set(figures.items if figures else 0)
            BACKLOG_OLDEST_AGE.labels(queue).set(figures.oldest_age_seconds if figures else 0)
        self._queues |= set(backlog)
        active = set(self.engine.spikes.active_series())
        for brand, topic in self.engine.spikes.series:
            SPIKE_ACTIVE.labels(brand, topic).set(1 if (brand, topic) in active else 0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            self.refresh()


def build_app(settings: KpiSettings) -> FastAPI:
    engine = KpiEngine(
        settings.window_specs(),
        allowed_lateness_seconds=settings.kpi_allowed_lateness_seconds,
        share_of_voice=settings.share_of_voice(),
        spike_settings=settings.spike_settings(),
        backlog_max_age_seconds=settings.kpi_backlog_max_age_seconds,
    )
    recent_routed = RecentEvents()
    brands = settings.counted_brands()
    pseudonyms = AuthorPseudonyms()
    recent_replies = RecentEvents()
    refresher = MetricsRefresher(engine)
    routed_topic = contract.topic_of(routed_pb2.RoutedInteraction)
    replies_topic = contract.topic_of(reply_pb2.Reply)
    # Series exist from the start, so that dashboards and alerts see zeros, not gaps.
    ALERTS.labels("viral_spike", "warning")
    ALERTS.labels("viral_spike", "critical")

    async def handle_routed(
        routed: routed_pb2.RoutedInteraction, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if engine.applied(record.topic, record.partition, record.offset):
            return []
        engine.mark_applied(record.topic, record.partition, record.offset)
        if not recent_routed.first_time(routed.header.event_id):
            return []
        dims = dimensions_of(routed, brands)
        INTERACTIONS.labels(**asdict(dims)).inc()
        if routed.routing.escalated:
            ESCALATIONS.labels(dims.queue).inc()
        interaction = routed.enriched.interaction
        late_before = engine.interactions.late_events
        outcome = engine.on_routed(
            RoutedFacts(
                event_id=routed.header.event_id,
                occurred_at=event_time(routed.header),
                dims=dims,
                sentiment_score=routed.enriched.enrichment.sentiment_score,
                escalated=routed.routing.escalated,
                needs_response=routed.routing.needs_response,
                author=pseudonyms.of(interaction.header.channel, interaction.author),
                reach=routed.enriched.enrichment.reach,
            )
        )
        if engine.interactions.late_events > late_before:
            LATE_EVENTS.labels(routed_topic).inc()
        if outcome.spikes:
            refresher.refresh()
        return publishable(outcome)

    async def handle_reply(
        reply: reply_pb2.Reply, record: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if engine.applied(record.topic, record.partition, record.offset):
            return []
        engine.mark_applied(record.topic, record.partition, record.offset)
        if not recent_replies.first_time(reply.header.event_id):
            return []
        queue = bounded_label(reply.queue or "none")
        sla_met = {reply_pb2.SLA_STATUS_MET: True, reply_pb2.SLA_STATUS_BREACHED: False}.get(
            reply.sla_status
        )
        if reply.first_response:
            FIRST_RESPONSE_SECONDS.labels(queue).observe(reply.first_response_seconds)
        if reply.resolution_seconds > 0:
            RESOLUTION_SECONDS.labels(queue).observe(reply.resolution_seconds)
        if sla_met is None or not reply.first_response:
            sla_status = "none"
        else:
            sla_status = "met" if sla_met else "breached"
        REPLIES.labels(queue, sla_status).inc()
        late_before = engine.replies.late_events
        outcome = engine.on_reply(
            ReplyFacts(
                interaction_event_id=reply.interaction_event_id,
                occurred_at=event_time(reply.header),
                queue=queue,
                first_response=reply.first_response,
                first_response_seconds=reply.first_response_seconds,
                sla_met=sla_met,
                resolution_seconds=reply.resolution_seconds,
            )
        )
        if engine.replies.late_events > late_before:
            LATE_EVENTS.labels(replies_topic).inc()
        return publishable(outcome)

    producer = EventProducer(settings)
    state = KpiStateStore(settings, engine, producer, settings.kpi_state_snapshot_seconds)
    routed_processor = StreamProcessor(
        settings=settings,
        group_id=settings.service_name,
        input_type=routed_pb2.RoutedInteraction,
        handler=handle_routed,
        producer=producer,
        before_commit=state.flush,
    )
    replies_processor = StreamProcessor(
        settings=settings,
        # One consumer group for both topics: each member gets the partitions of its topic.
        group_id=settings.service_name,
        input_type=reply_pb2.Reply,
        handler=handle_reply,
        producer=producer,
        before_commit=state.flush,
    )
    return create_app(
        settings,
        # Stopped in reverse: consumers first, then the last state snapshot, then the producer.
        [producer, state, refresher, routed_processor, replies_processor],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM KPIs",
        description=(
            "Windowed KPIs of `social.routed.v1` and `social.replies.v1` on `/metrics` and "
            "`kpi.snapshots.v1`; viral spikes on `alerts.v1`."
        ),
    )
