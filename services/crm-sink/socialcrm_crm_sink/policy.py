"""Rules of the CRM API (pure): case status transitions (API keys: socialcrm.auth)."""

from __future__ import annotations

from collections.abc import Mapping

# Where a case may go from each status; "closed" is final.
CASE_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "new": frozenset({"open"}),
    "open": frozenset({"pending_customer", "resolved"}),
    "pending_customer": frozenset({"open", "resolved"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
}


def can_move(current: str, target: str) -> bool:
    return target == current or target in CASE_TRANSITIONS.get(current, frozenset())
