"""The router's metrics (the stream processor's and the state store's are shared)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SLA_ESCALATIONS = Counter(
    "socialcrm_router_sla_escalations_total", "SLA escalations fired, by level.", ["level"]
)
SLA_TIMERS = Gauge(
    "socialcrm_router_sla_timers",
    "Timers (escalation levels to come, markers to expire) of the partitions this replica owns.",
)
SLA_COMMANDS = Counter(
    "socialcrm_router_sla_commands_total",
    "Commands and replies applied (or refused) by the owner of an interaction's SLA state,"
    " by kind and outcome.",
    ["kind", "outcome"],
)
STATE_KEYS = Gauge(
    "socialcrm_router_state_keys",
    "Live keys of the SLA state this replica owns, by kind (open, answered,"
    " awaiting_interaction, marker, erased_author).",
    ["kind"],
)
