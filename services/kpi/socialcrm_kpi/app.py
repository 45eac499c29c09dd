"""Wiring of the kpi service: social.routed.v1 in, Prometheus metrics out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from prometheus_client import Counter

from socialcrm.http import create_stream_app
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import routed_pb2
from socialcrm_kpi.counting import RecentEvents, dimensions_of

INTERACTIONS = Counter(
    "socialcrm_interactions_total",
    "Interactions routed, by brand, channel, language, sentiment polarity and queue.",
    ["brand", "channel", "language", "polarity", "queue"],
)
ESCALATIONS = Counter(
    "socialcrm_escalations_total", "Interactions escalated at routing time.", ["queue"]
)


class KpiSettings(ServiceSettings):
    service_name: str = "kpi"
    http_port: int = 8005


def build_app(settings: KpiSettings) -> FastAPI:
    recent = RecentEvents()

    async def handle(
        routed: routed_pb2.RoutedInteraction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        if recent.first_time(routed.header.event_id):
            dimensions = dimensions_of(routed)
            INTERACTIONS.labels(**asdict(dimensions)).inc()
            if routed.routing.escalated:
                ESCALATIONS.labels(dimensions.queue).inc()
        return []

    return create_stream_app(
        settings,
        input_type=routed_pb2.RoutedInteraction,
        handler=handle,
        title="Social CRM KPIs",
        description="Counts `social.routed.v1` into KPIs exposed on `/metrics`.",
    )
