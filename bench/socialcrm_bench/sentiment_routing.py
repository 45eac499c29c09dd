"""Routing quality of the understanding, end to end, for bench/sentiment.py: the router's
packaged rules (``socialcrm_router.decide.route``, read-only) decide queue and priority
for each care test post twice, from its gold labels and from the service's enrichment,
and the table counts the posts that reach the queue and priority they should.

The router reads polarity, intent, urgency signals, language and the text (keywords);
the gold side uses the post's labels and language, the predicted side the enrichment.
Both sides are routed at the same moment, inside every queue's business hours (a
Tuesday, 10:00 in Paris), so no post is moved to a fallback queue by the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from socialcrm.v1 import common_pb2, enriched_pb2
from socialcrm_router.decide import route
from socialcrm_router.rules import packaged_rules
from socialcrm_sentiment.understanding import INTENT_VALUES
from socialcrm_sentiment.urgency import urgency_score

ROUTED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLARITIES = {
    "negative": common_pb2.POLARITY_NEGATIVE,
    "neutral": common_pb2.POLARITY_NEUTRAL,
    "positive": common_pb2.POLARITY_POSITIVE,
}
# The rows of the table: the posts whose misrouting costs most, then all posts.
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("complaints", "intent", "complaint"),
    ("churn threats", "intent", "churn_threat"),
    ("fraud", "urgency", "fraud"),
    ("safety", "urgency", "safety"),
    ("legal", "urgency", "legal"),
    ("outage", "urgency", "outage"),
    ("all posts", "", ""),
)


def gold_enrichment(row: dict[str, Any]) -> enriched_pb2.EnrichedInteraction:
    signals = list(row["urgency"])
    return enriched_pb2.EnrichedInteraction(
        enrichment=enriched_pb2.Enrichment(
            language=row["lang"],
            polarity=POLARITIES[row["sentiment"]],
            intent=INTENT_VALUES[row["intent"]],
            urgency=urgency_score(signals),
            urgency_signals=signals,
        )
    )


def decision(enriched: enriched_pb2.EnrichedInteraction, text: str) -> tuple[str, int]:
    routed = enriched_pb2.EnrichedInteraction()
    routed.CopyFrom(enriched)
    routed.interaction.text = text
    routing = route(routed, packaged_rules(), ROUTED_AT).routing
    return routing.queue, int(routing.priority)


def routing_table(
    rows: Sequence[dict[str, Any]],
    readings: Mapping[str, Sequence[enriched_pb2.EnrichedInteraction]],
) -> dict[str, dict[str, Any]]:
    """Per group: its posts, and per reading the posts routed to the gold queue and
    priority (both), to the gold queue, and the gold-urgent posts not routed urgent."""
    gold = [decision(gold_enrichment(row), row["text"]) for row in rows]
    predicted = {
        name: [decision(e, row["text"]) for e, row in zip(enriched, rows, strict=True)]
        for name, enriched in readings.items()
    }
    table: dict[str, dict[str, Any]] = {}
    for name, kind, label in GROUPS:
        members = [
            i
            for i, row in enumerate(rows)
            if not kind
            or (kind == "intent" and row["intent"] == label)
            or (kind == "urgency" and label in row["urgency"])
        ]
        figures: dict[str, Any] = {"posts": len(members)}
        for reading, decisions in predicted.items():
            figures[reading] = {
                "queue_and_priority": sum(decisions[i] == gold[i] for i in members),
                "queue": sum(decisions[i][0] == gold[i][0] for i in members),
                "urgent_missed": sum(
                    gold[i][1] == common_pb2.PRIORITY_URGENT
                    and decisions[i][1] != common_pb2.PRIORITY_URGENT
                    for i in members
                ),
            }
        table[name] = figures
    return table
