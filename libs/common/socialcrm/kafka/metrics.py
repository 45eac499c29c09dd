"""The Kafka plumbing's metrics: what every stream service exports."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PRODUCED = Counter("socialcrm_events_produced_total", "Events published.", ["topic"])
DEAD_LETTERED = Counter(
    "socialcrm_events_dead_lettered_total",
    "Records sent to a dead-letter topic.",
    ["topic", "error_type"],
)
CONSUMED = Counter("socialcrm_events_consumed_total", "Records consumed.", ["topic"])
PROCESSING_SECONDS = Histogram(
    "socialcrm_event_processing_seconds",
    "Time to handle one record, outputs acknowledged included.",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
TRANSIENT_RETRIES = Counter(
    "socialcrm_transient_retries_total",
    "Attempts retried after a transient failure (database or broker unavailable).",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "socialcrm_consumer_lag_records",
    "Records of a partition not yet consumed by this member (high watermark - position).",
    ["group", "topic", "partition"],
)
TRANSACTIONS = Counter(
    "socialcrm_transactions_total",
    "Transactions of the exactly-once processors, by outcome (committed, aborted).",
    ["group", "outcome"],
)
ACTIVE_OWNER = Gauge(
    "socialcrm_stream_active_owner",
    "1 while this member holds partitions of its group (active), 0 as a standby.",
    ["group"],
)
