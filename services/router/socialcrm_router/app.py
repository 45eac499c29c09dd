"""Wiring of the router: social.enriched.v1 in, social.routed.v1 out."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message

from socialcrm.http import create_stream_app
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import enriched_pb2
from socialcrm_router.decide import route


class RouterSettings(ServiceSettings):
    service_name: str = "router"
    http_port: int = 8003


async def handle(
    enriched: enriched_pb2.EnrichedInteraction, _: ConsumerRecord[bytes, bytes]
) -> Sequence[Message]:
    return [route(enriched)]


def build_app(settings: RouterSettings) -> FastAPI:
    return create_stream_app(
        settings,
        input_type=enriched_pb2.EnrichedInteraction,
        handler=handle,
        title="Social CRM router",
        description="Routes `social.enriched.v1` into `social.routed.v1`.",
    )
