"""The kpi service's Prometheus metrics, and the refresher of those that follow the clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

from socialcrm_kpi.engine import KpiEngine

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
WINDOW_LATE_EVENTS = Counter(
    "socialcrm_kpi_window_late_events_total",
    "Events refused by a window that had already closed, once per window that refused them "
    "(a hopping window's event may be refused by some windows and counted by others).",
    ["topic", "window"],
)
WATERMARK = Gauge(
    "socialcrm_kpi_watermark_seconds",
    "Event time (Unix seconds) the KPI windows have advanced to.",
)
ALERTS = Counter("socialcrm_alerts_total", "Alerts published.", ["kind", "severity"])
SPIKE_ACTIVE = Gauge(
    "socialcrm_viral_spike_active",
    "1 while a viral spike is under way for the brand and topic, else 0.",
    ["brand", "topic"],
)


class MetricsRefresher:
    """Refreshes the gauges that depend on the clock (backlog age, active spikes)."""

    name = "metrics-refresher"

    def __init__(self, engine: Callable[[], KpiEngine], interval_seconds: float = 5.0) -> None:
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
        engine = self.engine()
        backlog = engine.backlog_by_queue(time.time())
        for queue in self._queues | set(backlog):
            figures = backlog.get(queue)
            BACKLOG_ITEMS.labels(queue).set(figures.items if figures else 0)
            BACKLOG_OLDEST_AGE.labels(queue).set(figures.oldest_age_seconds if figures else 0)
        self._queues |= set(backlog)
        active = set(engine.spikes.active_series())
        for brand, topic in engine.spikes.series:
            SPIKE_ACTIVE.labels(brand, topic).set(1 if (brand, topic) in active else 0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            self.refresh()
