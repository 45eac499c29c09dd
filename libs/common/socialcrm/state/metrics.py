"""Metrics of the state stores, by store name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RESTORE_SECONDS = Gauge(
    "socialcrm_state_restore_seconds",
    "Duration of the store's last restore (at start-up and at each partition assignment).",
    ["store"],
)
RESTORED_RECORDS = Counter(
    "socialcrm_state_restored_records_total",
    "Changelog records read back while restoring.",
    ["store"],
)
KEYS = Gauge("socialcrm_state_keys", "Keys held by this replica.", ["store"])
OWNED_PARTITIONS = Gauge(
    "socialcrm_state_owned_partitions", "Partitions whose state this replica owns.", ["store"]
)
CHANGELOG_WRITES = Counter(
    "socialcrm_state_changelog_writes_total",
    "Records written to the store's changelog (tombstones included).",
    ["store"],
)
