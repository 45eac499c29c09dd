"""The CRM sink's own Prometheus metrics (the shared runtime declares the stream's)."""

from __future__ import annotations

from prometheus_client import Counter

EXTERNAL_CRM_REQUESTS = Counter(
    "socialcrm_external_crm_requests_total",
    "Webhook calls to the external CRM by outcome (delivered, retried, refused, gave_up).",
    ["outcome"],
)
