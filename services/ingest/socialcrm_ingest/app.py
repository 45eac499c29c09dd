"""HTTP entry points of ingest: network webhooks in, Interaction events out.

Every webhook goes through ``receive``: body size limit, signature, decoding, the
channel's pure normaliser (``channels.NORMALIZERS``), deduplication of recent event ids,
then publication acknowledged by the broker before the network gets its 200.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from opentelemetry import propagate, trace
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest import openapi
from socialcrm_ingest.channels import NORMALIZERS
from socialcrm_ingest.dedup import RecentIds
from socialcrm_ingest.payload import PayloadError
from socialcrm_ingest.settings import IngestSettings
from socialcrm_ingest.signatures import hex_signature_problem
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
DUPLICATES = Counter(
    "socialcrm_ingest_duplicates_total",
    "Interactions redelivered recently, answered without publishing them again.",
    ["channel"],
)

# Why a request's signature is refused (None: valid), from its raw body and headers.
Verifier = Callable[[bytes, Mapping[str, str]], str | None]


@dataclass(frozen=True)
class Webhook:
    """One webhook endpoint: how its requests are checked, decoded and normalised."""

    channel: str  # label of the metrics and logs
    format: str  # key of channels.NORMALIZERS
    shape: str  # what the body must be, for 422 answers
    verify: Verifier | None
    decode: Callable[[bytes], Any] = json.loads


def decode_json_lines(body: bytes) -> Any:
    """One JSON value, or one per line (newline-delimited JSON, as the stream delivers it)."""
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [json.loads(line) for line in lines]


def decode_raw(body: bytes) -> Any:
    return body


def request_body(schema: openapi.Schema, *media_types: str) -> dict[str, Any]:
    """OpenAPI of a body the route reads raw (to check its signature before parsing it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {m: {"schema": schema} for m in media_types or ("application/json",)},
        }
    }


def hex_verifier(secret: str, header: str) -> Verifier | None:
    if not secret:
        return None
    return lambda body, headers: hex_signature_problem(secret, body, headers.get(header), header)


def x_verifier(secret: str) -> Verifier | None:
    if not secret:
        return None
    return lambda body, headers: signature_problem(
        secret, body, headers.get("x-twitter-webhooks-signature")
    )


def build_app(settings: IngestSettings) -> FastAPI:
    producer = EventProducer(settings)
    app = create_app(
        settings,
        [producer],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM ingest",
        description="Webhooks of the social networks, normalised into `social.interactions.v1`.",
    )
    recent = RecentIds(settings.dedup_cache_size)
    own = "x-signature-256"  # header of the webhooks we specify ourselves
    webhooks = {
        webhook.channel: webhook
        for webhook in (
            Webhook(
                channel="x",
                format="x-account-activity",
                shape="an X Account Activity payload",
                verify=x_verifier(settings.x_consumer_secret),
            ),
            Webhook(
                channel="x-stream",
                format="x-filtered-stream",
                shape="X API v2 filtered-stream JSON",
                verify=hex_verifier(settings.x_stream_webhook_secret, own),
                decode=decode_json_lines,
            ),
            Webhook(
                channel="meta",
                format="meta",
                shape="a Meta Graph webhook payload",
                verify=hex_verifier(settings.meta_app_secret, "x-hub-signature-256"),
            ),
            Webhook(
                channel="forum",
                format="forum",
                shape="a forum webhook payload",
                verify=hex_verifier(settings.forum_webhook_secret, own),
            ),
            Webhook(
                channel="email",
                format="email",
                shape="an RFC 5322 message",
                verify=hex_verifier(settings.email_webhook_secret, own),
                decode=decode_raw,
            ),
            Webhook(
                channel="chat",
                format="chat",
                shape="a chat transcript",
                verify=hex_verifier(settings.chat_webhook_secret, own),
            ),
        )
    }
    unverified = [name for name, webhook in webhooks.items() if webhook.verify is None]
    if unverified:
        log.warning(
            "webhook signatures are not verified for %s: set their secrets in production",
            ", ".join(unverified),
            extra={"unverified_channels": unverified},
        )

    async def read_body(request: Request, channel: str) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise refuse(channel, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise refuse(channel, 413, "too_large", f"body over {settings.max_body_bytes} bytes")
        return body

    def normalise(webhook: Webhook, body: bytes, brand: str) -> list[interaction_pb2.Interaction]:
        try:
            payload = webhook.decode(body)
        except (ValueError, RecursionError) as exc:
            raise refuse(
                webhook.channel, 400, "invalid_json", f"body is not valid JSON: {exc}"
            ) from exc
        try:
            return NORMALIZERS[webhook.format](payload, brand, datetime.now(UTC))
        except PayloadError as exc:
            raise refuse(
                webhook.channel, 422, "invalid_payload", f"not {webhook.shape}: {exc}"
            ) from exc
        except UnicodeEncodeError as exc:
            # JSON may escape lone surrogates, which no UTF-8 text field can hold.
            raise refuse(
                webhook.channel, 422, "invalid_payload", f"not {webhook.shape}: invalid text: {exc}"
            ) from exc

    async def receive(request: Request, webhook: Webhook, brand: str | None) -> dict[str, object]:
        # The trace of an interaction starts here (or continues the caller's traceparent).
        with tracer.start_as_current_span(
            f"POST /v1/webhooks/{webhook.channel}",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
        ):
            body = await read_body(request, webhook.channel)
            if webhook.verify is not None:
                problem = webhook.verify(body, request.headers)
                if problem:
                    raise refuse(webhook.channel, 401, "bad_signature", problem)
            interactions = normalise(webhook, body, brand or settings.default_brand)
            unique = not_seen_recently(recent, interactions)
            try:
                await asyncio.wait_for(
                    publish_all(producer, unique), settings.publish_timeout_seconds
                )
            except (KafkaError, TimeoutError) as exc:
                # Not acknowledged by the broker: the network must retry; ids make it idempotent.
                UNAVAILABLE.labels(webhook.channel).inc()
                log.warning(
                    "broker unavailable, webhook refused",
                    extra={"channel": webhook.channel, "error": repr(exc)},
                )
                raise HTTPException(
                    503,
                    "the event broker did not acknowledge the events; retry later",
                    headers={"Retry-After": str(settings.retry_after_seconds)},
                ) from exc
            recent.remember(i.header.event_id for i in unique)
        duplicates = len(interactions) - len(unique)
        ACCEPTED.labels(webhook.channel).inc(len(unique))
        if duplicates:
            DUPLICATES.labels(webhook.channel).inc(duplicates)
        return {
            "accepted": len(unique),
            "duplicates": duplicates,
            "event_ids": [i.header.event_id for i in interactions],
        }

    @app.get("/v1/webhooks/x", tags=["webhooks"], summary="X CRC challenge")
    async def x_crc_challenge(crc_token: str) -> dict[str, str]:
        if not settings.x_consumer_secret:
            raise refuse("x", 404, "crc_unconfigured", "X_CONSUMER_SECRET is not configured")
        return crc_response(settings.x_consumer_secret, crc_token)

    @app.post(
        "/v1/webhooks/x",
        tags=["webhooks"],
        summary="X Account Activity events (tweets, replies, quotes, direct messages)",
        openapi_extra=request_body(openapi.X_ACCOUNT_ACTIVITY),
    )
    async def x_account_activity(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["x"], brand)

    @app.post(
        "/v1/webhooks/x-stream",
        tags=["webhooks"],
        summary="X API v2 filtered-stream messages (one JSON object, or one per line)",
        openapi_extra=request_body(
            openapi.X_FILTERED_STREAM, "application/json", "application/x-ndjson"
        ),
    )
    async def x_filtered_stream(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["x-stream"], brand)

    @app.get(
        "/v1/webhooks/meta",
        tags=["webhooks"],
        summary="Meta subscription handshake (hub.challenge)",
        response_class=PlainTextResponse,
    )
    async def meta_verification(
        mode: str | None = Query(None, alias="hub.mode"),
        token: str | None = Query(None, alias="hub.verify_token"),
        challenge: str | None = Query(None, alias="hub.challenge"),
    ) -> str:
        if mode != "subscribe" or challenge is None:
            raise refuse(
                "meta", 400, "bad_handshake", "expected hub.mode=subscribe and hub.challenge"
            )
        expected = settings.meta_verify_token
        if not expected or not hmac.compare_digest((token or "").encode(), expected.encode()):
            raise refuse("meta", 403, "bad_verify_token", "hub.verify_token does not match")
        return challenge

    @app.post(
        "/v1/webhooks/meta",
        tags=["webhooks"],
        summary="Meta Graph webhooks: Page feed, Messenger, Instagram comments and mentions",
        openapi_extra=request_body(openapi.META),
    )
    async def meta_events(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["meta"], brand)

    @app.post(
        "/v1/webhooks/forum",
        tags=["webhooks"],
        summary="Forum / community posts and replies (signed, see the README)",
        openapi_extra=request_body(openapi.FORUM),
    )
    async def forum_events(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["forum"], brand)

    @app.post(
        "/v1/webhooks/email",
        tags=["webhooks"],
        summary="Inbound email: one RFC 5322 message",
        openapi_extra=request_body(openapi.EMAIL, "message/rfc822"),
    )
    async def inbound_email(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["email"], brand)

    @app.post(
        "/v1/webhooks/chat",
        tags=["webhooks"],
        summary="Live-chat transcripts: one interaction per visitor message",
        openapi_extra=request_body(openapi.CHAT),
    )
    async def chat_transcript(request: Request, brand: str | None = None) -> dict[str, object]:
        return await receive(request, webhooks["chat"], brand)

    @app.post("/v1/webhooks/{channel}", tags=["webhooks"], summary="Unknown channels")
    async def unknown_channel(channel: str) -> None:
        raise refuse(
            "unknown",
            404,
            "unknown_channel",
            f"unknown channel {channel!r}; known: {', '.join(webhooks)}",
        )

    return app


def not_seen_recently(
    recent: RecentIds, interactions: list[interaction_pb2.Interaction]
) -> list[interaction_pb2.Interaction]:
    """Interactions to publish: not published recently, and each id once."""
    first: dict[str, interaction_pb2.Interaction] = {}
    for interaction in interactions:
        first.setdefault(interaction.header.event_id, interaction)
    return [first[event_id] for event_id in recent.unseen(first)]


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
