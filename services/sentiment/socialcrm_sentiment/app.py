"""Wiring of the sentiment service: social.interactions.v1 in, social.enriched.v1 out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from pydantic import Field

from socialcrm.http import create_stream_app
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import enrich


class SentimentSettings(ServiceSettings):
    service_name: str = "sentiment"
    http_port: int = 8002
    sentiment_accurate_for: Literal["none", "influential", "all"] = Field(
        "influential",
        description="Posts scored by the accurate model (e5 embeddings, about 30 posts/s/core) "
        "on top of the lexicons: none, influential authors, or all.",
    )
    sentiment_accurate_min_reach: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Author reach from which a post counts as influential (0.6: about "
        "16,000 followers, or 1,000 and verified).",
    )


def build_app(settings: SentimentSettings) -> FastAPI:
    accurate = AccurateSentiment() if settings.sentiment_accurate_for != "none" else None
    min_reach = (
        settings.sentiment_accurate_min_reach
        if settings.sentiment_accurate_for == "influential"
        else 0.0
    )

    async def handle(
        interaction: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return [enrich(interaction, accurate, min_reach)]

    return create_stream_app(
        settings,
        input_type=interaction_pb2.Interaction,
        handler=handle,
        title="Social CRM sentiment",
        description="Enriches `social.interactions.v1` into `social.enriched.v1`.",
    )
