"""A contact's sentiment over time (pure), shown on the contact 360."""

from __future__ import annotations

from typing import Any

# The newest timeline entries the trend reads.
TREND_ENTRIES = 200


def sentiment_trend(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean sentiment score per day, oldest first."""
    days: dict[str, list[float]] = {}
    for entry in entries:
        days.setdefault(entry["occurred_at"].date().isoformat(), []).append(
            float(entry.get("sentiment_score", 0.0))
        )
    return [
        {"day": day, "mean_score": round(sum(v) / len(v), 4), "interactions": len(v)}
        for day, v in sorted(days.items())
    ]
