"""HTTP of the webhooks: routes that read the request and call ``WebhookHandlers``.

A body is read chunk by chunk under MAX_BODY_BYTES before any signature work; the one
exception handler answers each ``WebhookRefused`` with the status on its class, in the
shared error shape, and counts it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import propagate, trace

from socialcrm.errors import ErrorResponse
from socialcrm.labels import require_brand
from socialcrm_ingest.security.x_signatures import CRC_TOKEN, MAX_CRC_TOKEN_LENGTH
from socialcrm_ingest.webhooks import openapi
from socialcrm_ingest.webhooks.errors import BrokerUnavailable, WebhookRefused
from socialcrm_ingest.webhooks.handlers import WebhookHandlers
from socialcrm_ingest.webhooks.metrics import REJECTED, UNAVAILABLE
from socialcrm_ingest.webhooks.publishing import BodyTooLarge, read_capped

tracer = trace.get_tracer(__name__)


async def refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WebhookRefused)
    if isinstance(exc, BrokerUnavailable):
        UNAVAILABLE.labels(exc.channel).inc()
    else:
        REJECTED.labels(exc.channel, exc.reason).inc()
    return JSONResponse(
        ErrorResponse(detail=exc.detail).model_dump(), status_code=exc.status, headers=exc.headers
    )


def add_webhook_routes(app: FastAPI, handlers: WebhookHandlers) -> None:
    """The webhook routes of ``app``, and the answer of their refusals."""
    settings = handlers.settings
    app.add_exception_handler(WebhookRefused, refused)
    # Unsigned and a metric label downstream: only a configured brand (BRANDS).
    brand_query: Any = Query(
        None,
        description=f"Brand of the call, one of BRANDS (default {settings.default_brand})",
        json_schema_extra={"enum": sorted(settings.brand_names())},
    )

    async def read_body(request: Request, channel: str) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise handlers.body_too_large(channel)
        try:
            return await read_capped(request.stream(), limit)
        except BodyTooLarge:
            raise handlers.body_too_large(channel) from None

    async def receive(request: Request, channel: str, brand: str | None) -> dict[str, object]:
        # The trace of an interaction starts here (or continues the caller's traceparent).
        with tracer.start_as_current_span(
            f"POST /v1/webhooks/{channel}",
            context=propagate.extract(dict(request.headers)),
            kind=trace.SpanKind.SERVER,
        ):
            handlers.require_enabled(channel)
            require_brand(brand, settings.brand_names())
            body = await read_body(request, channel)
            return asdict(await handlers.receive(channel, body, request.headers, brand))

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
        return handlers.crc(crc_token)

    @app.post(
        "/v1/webhooks/x",
        tags=["webhooks"],
        summary="X Account Activity events (tweets, replies, quotes, direct messages)",
        openapi_extra=openapi.request_body(openapi.X_ACCOUNT_ACTIVITY),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def x_account_activity(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, "x", brand)

    @app.post(
        "/v1/webhooks/x-stream",
        tags=["webhooks"],
        summary="X API v2 filtered-stream messages (one JSON object, or one per line)",
        openapi_extra=openapi.request_body(
            openapi.X_FILTERED_STREAM, "application/json", "application/x-ndjson"
        ),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def x_filtered_stream(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, "x-stream", brand)

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
        return handlers.meta_handshake(mode, token, challenge)

    @app.post(
        "/v1/webhooks/meta",
        tags=["webhooks"],
        summary="Meta Graph webhooks: Page feed, Messenger, Instagram comments and mentions",
        openapi_extra=openapi.request_body(openapi.META),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def meta_events(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, "meta", brand)

    @app.post(
        "/v1/webhooks/forum",
        tags=["webhooks"],
        summary="Forum / community posts and replies (signed, see the README)",
        openapi_extra=openapi.request_body(openapi.FORUM),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def forum_events(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, "forum", brand)

    @app.post(
        "/v1/webhooks/email",
        tags=["webhooks"],
        summary="Inbound email: one RFC 5322 message",
        openapi_extra=openapi.request_body(openapi.EMAIL, "message/rfc822"),
        response_model=None,
        responses=openapi.webhook_responses(decodes_json=False),
    )
    async def inbound_email(request: Request, brand: str | None = brand_query) -> dict[str, object]:
        return await receive(request, "email", brand)

    @app.post(
        "/v1/webhooks/chat",
        tags=["webhooks"],
        summary="Live-chat transcripts: one interaction per visitor message",
        openapi_extra=openapi.request_body(openapi.CHAT),
        response_model=None,
        responses=openapi.webhook_responses(),
    )
    async def chat_transcript(
        request: Request, brand: str | None = brand_query
    ) -> dict[str, object]:
        return await receive(request, "chat", brand)

    # Undocumented: its path template overlaps every webhook above, whose answers it
    # never gives; a call to an unknown channel gets a 404 naming the known ones.
    @app.post("/v1/webhooks/{channel}", include_in_schema=False)
    async def unknown_channel(channel: str) -> None:
        handlers.unknown_channel(channel)
