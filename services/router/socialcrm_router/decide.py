"""Routing decision for an enriched interaction (pure logic).

Placeholder rules for the walking skeleton; issue 5 brings the declarative YAML
rules, business hours, SLA tables and escalation timers behind the same ``route``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, routed_pb2

RULES_VERSION = "skeleton-0"
SLA_BY_PRIORITY = {
    common_pb2.PRIORITY_URGENT: timedelta(minutes=30),
    common_pb2.PRIORITY_HIGH: timedelta(hours=1),
    common_pb2.PRIORITY_NORMAL: timedelta(hours=4),
    common_pb2.PRIORITY_LOW: timedelta(hours=24),
}
INFLUENTIAL_REACH = 0.6


def route(enriched: enriched_pb2.EnrichedInteraction) -> routed_pb2.RoutedInteraction:
    enrichment = enriched.enrichment
    negative = enrichment.polarity == common_pb2.POLARITY_NEGATIVE
    language = enrichment.language if enrichment.language in ("fr", "en") else "en"
    if negative:
        queue, rule_id = f"customer-service-{language}", "negative-to-customer-service"
        influential = enrichment.reach >= INFLUENTIAL_REACH
        priority = common_pb2.PRIORITY_URGENT if influential else common_pb2.PRIORITY_HIGH
    else:
        queue, rule_id = "community", "default-to-community"
        priority, influential = common_pb2.PRIORITY_NORMAL, False
    occurred_at: datetime = enriched.interaction.header.occurred_at.ToDatetime(tzinfo=UTC)
    header = common_pb2.EventHeader()
    header.CopyFrom(enriched.header)
    header.producer = "router"
    header.schema_version = contract.SCHEMA_VERSION
    return routed_pb2.RoutedInteraction(
        header=header,
        enriched=enriched,
        routing=routed_pb2.Routing(
            queue=queue,
            priority=priority,
            sla_deadline=contract.timestamp(occurred_at + SLA_BY_PRIORITY[priority]),
            needs_response=True,
            escalated=influential,
            escalation_reason="influential author, negative sentiment" if influential else "",
            next_best_channel="private_message"
            if negative and enriched.interaction.is_public
            else "",
            rule_id=rule_id,
            rules_version=RULES_VERSION,
        ),
    )
