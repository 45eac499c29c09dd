"""The workspace's metrics (its HTTP server's and Kafka clients' are shared)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OPEN_ITEMS = Gauge("socialcrm_workspace_open_items", "Open interactions on the lists.")
HELD_ITEMS = Gauge(
    "socialcrm_workspace_held_items", "Interactions the view holds, open or recently closed."
)
REBUILD_SECONDS = Gauge(
    "socialcrm_workspace_rebuild_seconds",
    "Time the view took to read the three topics from their beginning at start.",
)
REBUILD_RECORDS = Gauge(
    "socialcrm_workspace_rebuild_records", "Records read to rebuild the view at start."
)
RECORDS = Counter(
    "socialcrm_workspace_records_total",
    "Records of the topics read into the view, by topic and outcome (applied, ignored,"
    " undecodable).",
    ["topic", "outcome"],
)
STREAMS = Gauge("socialcrm_workspace_live_streams", "Live-update streams open.")
SESSIONS = Gauge("socialcrm_workspace_sessions", "Sessions held.")
ACTIONS = Counter(
    "socialcrm_workspace_actions_total",
    "Replies and status changes handed to the router, by kind and outcome.",
    ["kind", "outcome"],
)
