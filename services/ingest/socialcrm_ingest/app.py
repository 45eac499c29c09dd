"""HTTP entry points of ingest: network webhooks in, Interaction events out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException, Request
from opentelemetry import propagate, trace
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.settings import IngestSettings
from socialcrm_ingest.x_activity import PayloadError, normalize_account_activity

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

REJECTED = Counter(
    "socialcrm_ingest_rejected_total", "Webhook requests refused with a 4xx.", ["channel", "reason"]
)
ACCEPTED = Counter("socialcrm_ingest_accepted_total", "Interactions accepted.", ["channel"])


def build_app(settings: IngestSettings) -> FastAPI:
    producer = EventProducer(settings)
    app = create_app(
        settings,
        [producer],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM ingest",
        description="Webhooks of the social networks, normalised into `social.interactions.v1`.",
    )

    @app.post("/v1/webhooks/x", tags=["webhooks"], summary="X Account Activity events")
    async def x_account_activity(request: Request, brand: str | None = None) -> dict[str, object]:
        # Signature (x-twitter-webhooks-signature) and CRC checks arrive with issue 3.
        # The trace of an interaction starts here (or continues the caller's traceparent).
        with tracer.start_as_current_span(
            "POST /v1/webhooks/x",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
        ):
            try:
                payload = json.loads(await request.body())
                interactions = normalize_account_activity(
                    payload, brand=brand or settings.default_brand, ingested_at=datetime.now(UTC)
                )
            except json.JSONDecodeError as exc:
                REJECTED.labels("x", "invalid_json").inc()
                raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
            except PayloadError as exc:
                REJECTED.labels("x", "invalid_payload").inc()
                raise HTTPException(422, f"not an X Account Activity payload: {exc}") from exc
            await publish_all(producer, interactions)
        ACCEPTED.labels("x").inc(len(interactions))
        return {
            "accepted": len(interactions),
            "event_ids": [i.header.event_id for i in interactions],
        }

    return app


async def publish_all(
    producer: EventProducer, interactions: list[interaction_pb2.Interaction]
) -> None:
    """Publish and wait for the broker's acknowledgement before answering the network."""
    futures = [await producer.publish(interaction) for interaction in interactions]
    for future in futures:
        await future
