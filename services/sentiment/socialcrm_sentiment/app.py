"""Wiring of the sentiment service: social.interactions.v1 in, social.enriched.v1 out."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message

from socialcrm.http import create_stream_app
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2
from socialcrm_sentiment.enrich import enrich


class SentimentSettings(ServiceSettings):
    service_name: str = "sentiment"
    http_port: int = 8002


async def handle(
    interaction: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
) -> Sequence[Message]:
    return [enrich(interaction)]


def build_app(settings: SentimentSettings) -> FastAPI:
    return create_stream_app(
        settings,
        input_type=interaction_pb2.Interaction,
        handler=handle,
        title="Social CRM sentiment",
        description="Enriches `social.interactions.v1` into `social.enriched.v1`.",
    )
