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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from opentelemetry import propagate, trace
from prometheus_client import Counter

from socialcrm import contract
from socialcrm.http import TopicsReady, create_app
from socialcrm.kafka import EventProducer
from socialcrm.labels import require_brand
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest import openapi
from socialcrm_ingest.channels import NORMALIZERS
from socialcrm_ingest.dedup import RecentIds
from socialcrm_ingest.doors import Doors
from socialcrm_ingest.payload import PayloadError
from socialcrm_ingest.publishing import (
    BodyTooLarge,
    NotAcknowledged,
    publish_all,
    read_capped,
    record_size_problem,
)
from socialcrm_ingest.settings import IngestSettings
from socialcrm_ingest.x_security import (
    CRC_TOKEN,
    MAX_CRC_TOKEN_LENGTH,
    crc_response,
    crc_token_problem,
)

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


@dataclass(frozen=True)
class Webhook:
    """One webhook endpoint: how its requests are checked, decoded and normalised."""

    channel: str  # label of the metrics and logs
    format: str  # key of channels.NORMALIZERS
    shape: str  # what the body must be, for 422 answers
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


def build_app(settings: IngestSettings) -> FastAPI:
    # First, so that a missing secret stops the start-up before anything else.
    doors = Doors(settings)
    producer = EventProducer(settings)
    app = create_app(
        settings,
        [producer],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM ingest",
        description="Webhooks of the social networks, normalised into `social.interactions.v1`.",
    )
    recent = RecentIds(settings.dedup_cache_size)
    webhooks = {
        webhook.channel: webhook
        for webhook in (
            Webhook(
                channel="x",
                format="x-account-activity",
                shape="an X Account Activity payload",
            ),
            Webhook(
                channel="x-stream",
                format="x-filtered-stream",
                shape="X API v2 filtered-stream JSON",
                decode=decode_json_lines,
            ),
            Webhook(
                channel="meta",
                format="meta",
                shape="a Meta Graph webhook payload",
            ),
            Webhook(
                channel="forum",
                format="forum",
                shape="a forum webhook payload",
            ),
            Webhook(
                channel="email",
                format="email",
                shape="an RFC 5322 message",
                decode=decode_raw,
            ),
            Webhook(
                channel="chat",
                format="chat",
                shape="a chat transcript",
            ),
        )
    }
    # Unsigned and a metric label downstream: only a configured brand (BRANDS).
    brand_query: Any = Query(
        None,
        description=f"Brand of the call, one of BRANDS (default {settings.default_brand})",
        json_schema_extra={"enum": sorted(settings.brand_names())},
    )
    unverified = doors.unverified()
    if unverified:
        log.error(
            "INSECURE: WEBHOOKS_INSECURE_LOCAL is on and %s accept unsigned calls from anyone; "
            "for local development only, never in production",
            ", ".join(unverified),
            extra={"unverified_channels": unverified},
        )

    def enabled(channel: str) -> None:
        if channel not in doors.enabled:
            raise refuse(
                channel, 404, "disabled_channel", f"channel {channel!r} is not in INGEST_CHANNELS"
            )

    async def read_body(request: Request, channel: str) -> bytes:
        limit = settings.max_body_bytes
        too_large = f"body over {limit} bytes (max_body_bytes)"
        # The rest of a refused body is not read: the connection is closed after the answer.
        close = {"Connection": "close"}
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise refuse(channel, 413, "too_large", too_large, headers=close)
        try:
            return await read_capped(request.stream(), limit)
        except BodyTooLarge:
            raise refuse(channel, 413, "too_large", too_large, headers=close) from None

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
            enabled(webhook.channel)
            # Unsigned and a metric label downstream: only a configured brand (BRANDS).
            require_brand(brand, settings.brand_names())
            body = await read_body(request, webhook.channel)
            problem = doors.problem(webhook.channel, body, request.headers, time.time())
            if problem:
                raise refuse(webhook.channel, 401, "bad_signature", problem)
            try:
                return await accept(webhook, body, brand)
            except BaseException:
                # The call failed: its sender may retry it as it is, within the window.
                doors.release(webhook.channel, request.headers)
                raise

    async def parse(webhook: Webhook, body: bytes, brand: str) -> list[interaction_pb2.Interaction]:
        """``normalise`` off the event loop (an email's MIME tree can be slow to parse)."""
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(normalise, webhook, body, brand),
                settings.parse_timeout_seconds,
            )
        except TimeoutError:
            raise refuse(
                webhook.channel,
                422,
                "parse_timeout",
                f"not {webhook.shape}: parsing took over {settings.parse_timeout_seconds} s "
                "(parse_timeout_seconds)",
            ) from None

    async def accept(webhook: Webhook, body: bytes, brand: str | None) -> dict[str, object]:
        """Normalise a verified body, publish what was not published recently, answer."""
        interactions = await parse(webhook, body, brand or settings.default_brand)
        # Every refusal happens here, before the first record is sent (see publishing).
        if len(interactions) > settings.max_items_per_call:
            raise refuse(
                webhook.channel,
                413,
                "too_many_items",
                f"{len(interactions)} interactions in one call, over the limit of "
                f"{settings.max_items_per_call} (max_items_per_call)",
            )
        problem = record_size_problem(interactions, settings.kafka_max_message_bytes)
        if problem:
            raise refuse(webhook.channel, 413, "too_large", problem)
        unique = not_seen_recently(recent, interactions)
        try:
            await publish_all(producer, unique, settings.publish_timeout_seconds)
        except NotAcknowledged as exc:
            # The network must retry; what was acknowledged is not published again then.
            recent.remember(exc.acknowledged)
            UNAVAILABLE.labels(webhook.channel).inc()
            log.warning(
                "broker unavailable, webhook refused",
                extra={"channel": webhook.channel, "error": repr(exc.__cause__ or exc)},
            )
            raise HTTPException(
                503,
                f"the event broker acknowledged {len(exc.acknowledged)} of {exc.total} events; "
                "retry later",
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

    @app.get(
        "/v1/webhooks/x",
        tags=["webhooks"],
        summary="X CRC challenge",
        response_model=None,
        responses=openapi.X_CRC_RESPONSES,
    )
    async def x_crc_challenge(
        crc_token: str = Query(
            description="X's challenge: a plain token of letters, digits and -_+/=, "
            f"at most {MAX_CRC_TOKEN_LENGTH} characters",
            # Documented, not validated here: crc_token_problem answers 400 naming the rule.
            json_schema_extra={
                "pattern": f"^{CRC_TOKEN.pattern}$",
                "minLength": 1,
                "maxLength": MAX_CRC_TOKEN_LENGTH,
            },
        ),
    ) -> dict[str, str]:
        enabled("x")
        if not settings.x_consumer_secret:
            raise refuse("x", 404, "crc_unconfigured", "X_CONSUMER_SECRET is not configured")
        # Answering any token would sign any body (the same HMAC signs X's POSTs).
        problem = crc_token_problem(crc_token)
        if problem:
            raise refuse("x", 400, "bad_crc_token", problem)
        return crc_response(settings.x_consumer_secret, crc_token)

    @app.post(
        "/v1/webhooks/x",
        tags=["webhooks"],
        summary="X Account Activity events (tweets, replies, quotes, direct messages)",
        openapi_extra=request_body(openapi.X_ACCOUNT_ACTIVITY),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def x_account_activity(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, webhooks["x"], brand)

    @app.post(
        "/v1/webhooks/x-stream",
        tags=["webhooks"],
        summary="X API v2 filtered-stream messages (one JSON object, or one per line)",
        openapi_extra=request_body(
            openapi.X_FILTERED_STREAM, "application/json", "application/x-ndjson"
        ),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def x_filtered_stream(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, webhooks["x-stream"], brand)

    @app.get(
        "/v1/webhooks/meta",
        tags=["webhooks"],
        summary="Meta subscription handshake (hub.challenge)",
        response_class=PlainTextResponse,
        responses=openapi.META_HANDSHAKE_RESPONSES,
    )
    async def meta_verification(
        mode: str | None = Query(None, alias="hub.mode", json_schema_extra={"enum": ["subscribe"]}),
        token: str | None = Query(None, alias="hub.verify_token"),
        challenge: str | None = Query(None, alias="hub.challenge"),
    ) -> str:
        enabled("meta")
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
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def meta_events(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, webhooks["meta"], brand)

    @app.post(
        "/v1/webhooks/forum",
        tags=["webhooks"],
        summary="Forum / community posts and replies (signed, see the README)",
        openapi_extra=request_body(openapi.FORUM),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def forum_events(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, webhooks["forum"], brand)

    @app.post(
        "/v1/webhooks/email",
        tags=["webhooks"],
        summary="Inbound email: one RFC 5322 message",
        openapi_extra=request_body(openapi.EMAIL, "message/rfc822"),
        response_model=None,
        responses=openapi.webhook_responses(decodes_json=False),
    )
    async def inbound_email(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, webhooks["email"], brand)

    @app.post(
        "/v1/webhooks/chat",
        tags=["webhooks"],
        summary="Live-chat transcripts: one interaction per visitor message",
        openapi_extra=request_body(openapi.CHAT),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def chat_transcript(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, webhooks["chat"], brand)

    # Undocumented: its path template overlaps every webhook above, whose answers it
    # never gives; a call to an unknown channel gets a 404 naming the known ones.
    @app.post("/v1/webhooks/{channel}", include_in_schema=False)
    async def unknown_channel(channel: str) -> None:
        raise refuse(
            "unknown",
            404,
            "unknown_channel",
            f"unknown channel {channel!r}; known: {', '.join(webhooks)}",
        )

    openapi.document_retry_after(app)
    return app


def not_seen_recently(
    recent: RecentIds, interactions: list[interaction_pb2.Interaction]
) -> list[interaction_pb2.Interaction]:
    """Interactions to publish: not published recently, and each id once."""
    first: dict[str, interaction_pb2.Interaction] = {}
    for interaction in interactions:
        first.setdefault(interaction.header.event_id, interaction)
    return [first[event_id] for event_id in recent.unseen(first)]


def refuse(
    channel: str, status: int, reason: str, detail: str, headers: dict[str, str] | None = None
) -> HTTPException:
    REJECTED.labels(channel, reason).inc()
    return HTTPException(status, detail, headers=headers)
