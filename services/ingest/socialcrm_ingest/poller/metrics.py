"""Metrics of the pollers (the shared producer's metrics are declared in ``socialcrm``)."""

from prometheus_client import Counter

POLLS = Counter(
    "socialcrm_ingest_polls_total",
    "Polls of a source by outcome (ok, rate_limited, server_error, client_error, "
    "network_error, timeout, response_too_large, invalid_payload, broker_error, error).",
    ["source", "outcome"],
)
POLL_INTERACTIONS = Counter(
    "socialcrm_ingest_poll_interactions_total", "Interactions published by pollers.", ["source"]
)
