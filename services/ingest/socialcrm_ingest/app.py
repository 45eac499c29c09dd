"""HTTP entry points of ingest: network webhooks in, Interaction events out."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

from aiokafka.errors import KafkaError
from fastapi import FastAPI, HTTPException, Request
from opentelemetry import propagate, trace
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.payload import PayloadError
from socialcrm_ingest.settings import IngestSettings
from socialcrm_ingest.x_activity import normalize_account_activity
from socialcrm_ingest.x_security import crc_response, signature_problem

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

REJECTED = Counter(
    "socialcrm_ingest_rejected_total", "Webhook requests refused with a 4xx.", ["channel", "reason"]
)
UNAVAILABLE = Counter(
    "socialcrm_ingest_unavailable_total",
    "Webhook requests answered 503 because the broker did not acknowledge in time.",
    ["channel"],
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
    if not settings.x_consumer_secret:
        log.warning("X_CONSUMER_SECRET is not set: X webhook signatures are not verified")

    async def read_body(request: Request, channel: str) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise refuse(channel, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise refuse(channel, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
        return body

    @app.get("/v1/webhooks/x", tags=["webhooks"], summary="X CRC challenge")
    async def x_crc_challenge(crc_token: str) -> dict[str, str]:
        if not settings.x_consumer_secret:
            raise refuse("x", 404, "crc_unconfigured", "X_CONSUMER_SECRET is not configured")
        return crc_response(settings.x_consumer_secret, crc_token)

    @app.post("/v1/webhooks/x", tags=["webhooks"], summary="X Account Activity events")
    async def x_account_activity(request: Request, brand: str | None = None) -> dict[str, object]:
        # The trace of an interaction starts here (or continues the caller's traceparent).
        with tracer.start_as_current_span(
            "POST /v1/webhooks/x",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
        ):
            body = await read_body(request, "x")
            if settings.x_consumer_secret:
                problem = signature_problem(
                    settings.x_consumer_secret,
                    body,
                    request.headers.get("x-twitter-webhooks-signature"),
                )
                if problem:
                    raise refuse("x", 401, "bad_signature", problem)
            try:
                payload = json.loads(body)
                interactions = normalize_account_activity(
                    payload, brand=brand or settings.default_brand, ingested_at=datetime.now(UTC)
                )
            except json.JSONDecodeError as exc:
                raise refuse("x", 400, "invalid_json", f"body is not valid JSON: {exc}") from exc
            except PayloadError as exc:
                raise refuse(
                    "x", 422, "invalid_payload", f"not an X Account Activity payload: {exc}"
                ) from exc
            try:
                await asyncio.wait_for(
                    publish_all(producer, interactions), settings.publish_timeout_seconds
                )
            except (KafkaError, TimeoutError) as exc:
                # Not acknowledged by the broker: the network must retry; ids make it idempotent.
                UNAVAILABLE.labels("x").inc()
                log.warning("broker unavailable, webhook refused", extra={"error": repr(exc)})
                raise HTTPException(
                    503,
                    "the event broker did not acknowledge the events; retry later",
                    headers={"Retry-After": str(settings.retry_after_seconds)},
                ) from exc
        ACCEPTED.labels("x").inc(len(interactions))
        return {
            "accepted": len(interactions),
            "event_ids": [i.header.event_id for i in interactions],
        }

    @app.post("/v1/webhooks/{channel}", tags=["webhooks"], summary="Unknown channels")
    async def unknown_channel(channel: str) -> None:
        raise refuse("unknown", 404, "unknown_channel", f"unknown channel {channel!r}; known: x")

    return app


def refuse(channel: str, status: int, reason: str, detail: str) -> HTTPException:
    REJECTED.labels(channel, reason).inc()
    return HTTPException(status, detail)


async def publish_all(
    producer: EventProducer, interactions: list[interaction_pb2.Interaction]
) -> None:
    """Publish and wait for the broker's acknowledgement before answering the network."""
    futures = [await producer.publish(interaction) for interaction in interactions]
    for future in futures:
        await future
