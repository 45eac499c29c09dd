"""Metrics of the webhooks (the shared producer's metrics are declared in ``socialcrm``)."""

from prometheus_client import Counter

REJECTED = Counter(
    "socialcrm_ingest_rejected_total", "Webhook requests refused with a 4xx.", ["channel", "reason"]
)
UNAVAILABLE = Counter(
    "socialcrm_ingest_unavailable_total",
    "Webhook requests answered 503 because the broker did not acknowledge in time.",
    ["channel"],
)
ACCEPTED = Counter("socialcrm_ingest_accepted_total", "Interactions accepted.", ["channel"])
DUPLICATES = Counter(
    "socialcrm_ingest_duplicates_total",
    "Interactions redelivered recently, answered without publishing them again.",
    ["channel"],
)
