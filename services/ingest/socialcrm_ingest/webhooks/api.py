"""HTTP of the webhooks: routes that read the request and call ``WebhookHandlers``.

One POST route per row of ``socialcrm_ingest.channels.WEBHOOKS``, documented from it, and
the handshakes of X and Meta. A body is read chunk by chunk under MAX_BODY_BYTES before any
signature work; the one exception handler answers each ``WebhookRefused`` with the status
on its class, in the shared error shape, and counts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from opentelemetry import propagate, trace

from socialcrm.errors import ErrorResponse
from socialcrm.labels import require_brand
from socialcrm_ingest.channels import WEBHOOKS
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

    def webhook_endpoint(channel: str) -> Callable[..., Awaitable[dict[str, object]]]:
        async def endpoint(request: Request, brand: str | None = brand_query) -> dict[str, object]:
            return await receive(request, channel, brand)

        return endpoint

    for webhook in WEBHOOKS.values():
        app.add_api_route(
            f"/v1/webhooks/{webhook.channel}",
            webhook_endpoint(webhook.channel),
            methods=["POST"],
            name=webhook.route,
            tags=["webhooks"],
            summary=webhook.summary,
            openapi_extra=openapi.request_body(webhook.schema, *webhook.body.media_types),
            response_model=None,
            responses=openapi.webhook_responses(decodes_json=webhook.body.is_json),
        )

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

    # Undocumented: its path template overlaps every webhook above, whose answers it
    # never gives; a call to an unknown channel gets a 404 naming the known ones.
    @app.post("/v1/webhooks/{channel}", include_in_schema=False)
    async def unknown_channel(channel: str) -> None:
        handlers.unknown_channel(channel)
