"""What each KPI dashboard shows: its panels, their PromQL queries, legends and units.

The single source of the queries: the Grafana dashboards and the Prometheus console
views are both generated from these definitions, so the two never drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel; ``legend`` is Grafana's legendFormat ({{label}})."""

    expr: str
    legend: str


@dataclass(frozen=True)
class ValueText:
    """A stat panel's text and colour for one exact value (1 -> UP, green)."""

    value: str
    text: str
    color: str


@dataclass(frozen=True)
class Panel:
    """A panel: ``unit`` is Grafana's unit id (short, s, ops, percentunit, none)."""

    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: Literal["timeseries", "stat"] = "timeseries"
    value_texts: tuple[ValueText, ...] = ()


@dataclass(frozen=True)
class Dashboard:
    """A dashboard; ``slug`` names its JSON file, its console view and its uid."""

    slug: str
    title: str
    description: str
    panels: tuple[Panel, ...]

    @property
    def uid(self) -> str:
        return f"socialcrm-{self.slug}"


def per_minute(by: str, selector: str = "") -> Query:
    """Interactions per minute grouped by ``by``, the legend naming each label."""
    legend = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))
    return Query(f"sum by ({by}) (rate(socialcrm_interactions_total{selector}[5m])) * 60", legend)


def quantile(q: str, metric: str, by: str, window: str, legend: str) -> Query:
    return Query(
        f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[{window}])))", legend
    )


NET_SENTIMENT = Query(
    "max by (brand, window) (socialcrm_kpi_net_sentiment_ratio)", "{{brand}} {{window}}"
)
ESCALATIONS_PER_MINUTE = Panel(
    "Escalations per minute by queue",
    "short",
    (Query("sum by (queue) (rate(socialcrm_escalations_total[5m])) * 60", "{{queue}}"),),
)

SOCIAL_OVERVIEW = Dashboard(
    slug="social-overview",
    title="Social CRM / Social overview",
    description=(
        "What customers say: volume, sentiment, share of voice, channels, languages, escalations."
    ),
    panels=(
        Panel("Interactions per minute by brand", "short", (per_minute("brand"),)),
        Panel(
            "Sentiment mix",
            "percentunit",
            (
                Query(
                    "sum by (polarity) (rate(socialcrm_interactions_total[15m]))"
                    " / ignoring (polarity) group_left"
                    " sum(rate(socialcrm_interactions_total[15m]))",
                    "{{polarity}}",
                ),
            ),
        ),
        Panel(
            "Net sentiment by brand (last closed window)",
            "percentunit",
            (NET_SENTIMENT,),
            description=(
                "(positive - negative) / volume, from the kpi service's event-time windows."
            ),
        ),
        Panel(
            "Share of voice (last closed window)",
            "percentunit",
            (
                Query(
                    "max by (brand, window) (socialcrm_kpi_share_of_voice_ratio)",
                    "{{brand}} {{window}}",
                ),
            ),
            description=(
                "A brand's share of the volume of own and competitor brands"
                " (KPI_OWN_BRANDS, KPI_COMPETITOR_BRANDS)."
            ),
        ),
        Panel("Interactions per minute by channel", "short", (per_minute("channel"),)),
        Panel("Interactions per minute by language", "short", (per_minute("language"),)),
        ESCALATIONS_PER_MINUTE,
        Panel(
            "Interactions in the last 24 hours by queue",
            "short",
            (Query("sum by (queue) (increase(socialcrm_interactions_total[24h]))", "{{queue}}"),),
            kind="stat",
        ),
    ),
)

VIRAL_WATCH = Dashboard(
    slug="viral-watch",
    title="Social CRM / Viral watch",
    description="Viral spikes against the learned baseline, negative volume and alerts.",
    panels=(
        Panel(
            "Spikes under way",
            "short",
            (Query("sum(socialcrm_viral_spike_active)", "spikes"),),
            description=(
                "Brand and topic series whose volume is a spike against their baseline"
                " (kpi service)."
            ),
            kind="stat",
        ),
        Panel(
            "Spike state by brand and topic",
            "short",
            (Query("max by (brand, topic) (socialcrm_viral_spike_active)", "{{brand}} {{topic}}"),),
        ),
        Panel(
            "Negative interactions per minute by brand",
            "short",
            (per_minute("brand", '{polarity="negative"}'),),
        ),
        Panel("Interactions per minute by brand and queue", "short", (per_minute("brand, queue"),)),
        Panel(
            "Alerts in the last hour",
            "short",
            (
                Query(
                    "sum by (kind, severity) (increase(socialcrm_alerts_total[1h]))",
                    "{{kind}} {{severity}}",
                ),
            ),
        ),
        Panel("Net sentiment by brand (last closed window)", "percentunit", (NET_SENTIMENT,)),
    ),
)

CUSTOMER_SERVICE_SLA = Dashboard(
    slug="customer-service-sla",
    title="Social CRM / Customer-service SLA",
    description="First response and resolution times, SLA compliance and backlog per queue.",
    panels=(
        Panel(
            "First response time p50 and p90",
            "s",
            tuple(
                quantile(q, "socialcrm_first_response_seconds", "queue", "1h", f"{p} {{{{queue}}}}")
                for q, p in (("0.5", "p50"), ("0.9", "p90"))
            ),
        ),
        Panel(
            "Resolution time p50 and p90",
            "s",
            tuple(
                quantile(q, "socialcrm_resolution_seconds", "queue", "1h", f"{p} {{{{queue}}}}")
                for q, p in (("0.5", "p50"), ("0.9", "p90"))
            ),
        ),
        Panel(
            "SLA compliance (last hour)",
            "percentunit",
            (
                Query(
                    'sum by (queue) (increase(socialcrm_replies_total{sla_status="met"}[1h]))'
                    " / sum by (queue)"
                    ' (increase(socialcrm_replies_total{sla_status=~"met|breached"}[1h]))',
                    "{{queue}}",
                ),
            ),
            description="First responses within their SLA over first responses judged.",
        ),
        Panel(
            "SLA compliance (last closed window)",
            "percentunit",
            (
                Query(
                    "max by (queue, window) (socialcrm_kpi_sla_compliance_ratio)",
                    "{{queue}} {{window}}",
                ),
            ),
        ),
        Panel(
            "Backlog: interactions waiting for a first response",
            "short",
            (Query("sum by (queue) (socialcrm_backlog_items)", "{{queue}}"),),
        ),
        Panel(
            "Age of the oldest unanswered interaction",
            "s",
            (Query("max by (queue) (socialcrm_backlog_oldest_age_seconds)", "{{queue}}"),),
        ),
        Panel(
            "Replies per minute by queue and SLA status",
            "short",
            (
                Query(
                    "sum by (queue, sla_status) (rate(socialcrm_replies_total[5m])) * 60",
                    "{{queue}} {{sla_status}}",
                ),
            ),
        ),
        ESCALATIONS_PER_MINUTE,
    ),
)

PLATFORM_HEALTH = Dashboard(
    slug="platform-health",
    title="Social CRM / Platform health",
    description="Throughput, consumer lag, errors and latency of the five services.",
    panels=(
        Panel(
            "Records consumed per second",
            "ops",
            (
                Query(
                    "sum by (job, topic) (rate(socialcrm_events_consumed_total[1m]))",
                    "{{job}} ← {{topic}}",
                ),
            ),
        ),
        Panel(
            "Events produced per second",
            "ops",
            (
                Query(
                    "sum by (job, topic) (rate(socialcrm_events_produced_total[1m]))",
                    "{{job}} → {{topic}}",
                ),
            ),
        ),
        Panel(
            "Dead-lettered records per second",
            "ops",
            (
                Query(
                    "sum by (job, topic, error_type)"
                    " (rate(socialcrm_events_dead_lettered_total[5m]))",
                    "{{job}} {{topic}} {{error_type}}",
                ),
            ),
        ),
        Panel(
            "Processing time p99",
            "s",
            (quantile("0.99", "socialcrm_event_processing_seconds", "job", "5m", "{{job}}"),),
        ),
        Panel(
            "Interactions per second by polarity",
            "ops",
            (Query("sum by (polarity) (rate(socialcrm_interactions_total[5m]))", "{{polarity}}"),),
        ),
        Panel(
            "Services up",
            "none",
            (Query('up{job=~"ingest|sentiment|router|crm-sink|kpi"}', "{{job}}"),),
            kind="stat",
            value_texts=(ValueText("0", "DOWN", "red"), ValueText("1", "UP", "green")),
        ),
        Panel(
            "Consumer lag (records)",
            "short",
            (
                Query(
                    "sum by (group, topic) (socialcrm_consumer_lag_records)",
                    "{{group}} ← {{topic}}",
                ),
            ),
            description=(
                "Records not yet consumed, per consumer group and topic"
                " (high watermark - position)."
            ),
        ),
        Panel(
            "Webhook interactions accepted per second",
            "ops",
            (Query("sum by (channel) (rate(socialcrm_ingest_accepted_total[1m]))", "{{channel}}"),),
        ),
        Panel(
            "Webhook requests refused per second",
            "ops",
            (
                Query(
                    "sum by (channel, reason) (rate(socialcrm_ingest_rejected_total[5m]))",
                    "{{channel}} {{reason}}",
                ),
            ),
        ),
        Panel(
            "Processing time p50",
            "s",
            (quantile("0.5", "socialcrm_event_processing_seconds", "job", "5m", "{{job}}"),),
        ),
    ),
)

DASHBOARDS = (SOCIAL_OVERVIEW, VIRAL_WATCH, CUSTOMER_SERVICE_SLA, PLATFORM_HEALTH)
