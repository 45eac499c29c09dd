"""OpenAPI documentation of the webhooks' answers (and of their fuzz tests).

The answers are every status a route really gives, errors in the shared shape
(``socialcrm.errors``), the 503 with its ``Retry-After`` header. The bodies' schemas are
in ``socialcrm_ingest.bodies``, named by each channel's row.
"""

from __future__ import annotations

from typing import Any

from socialcrm.errors import error_responses
from socialcrm_ingest.bodies import Schema, object_schema

Responses = dict[int | str, dict[str, Any]]


ACCEPTED: Schema = object_schema(
    ["accepted", "duplicates", "event_ids"],
    accepted={"type": "integer", "minimum": 0, "description": "Interactions published."},
    duplicates={
        "type": "integer",
        "minimum": 0,
        "description": "Interactions already published recently, not published again.",
    },
    event_ids={
        "type": "array",
        "items": {"type": "string"},
        "description": "Event id of every interaction of the call, duplicates included.",
    },
)
CRC_RESPONSE: Schema = object_schema(
    ["response_token"],
    response_token={"type": "string", "pattern": "^sha256=[A-Za-z0-9+/=]+$"},
)
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same call again.",
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
    }
}


def request_body(schema: Schema, *media_types: str) -> dict[str, Any]:
    """OpenAPI of a body the route reads raw (to check its signature before parsing it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {m: {"schema": schema} for m in media_types or ("application/json",)},
        }
    }


def _answers(ok: tuple[str, Schema] | None, errors: dict[int, str]) -> Responses:
    """OpenAPI ``responses``: 200 with ``ok`` (description and JSON schema; None: the
    route's own), then ``errors`` in the shared shape."""
    responses = error_responses(*errors)
    for status, description in errors.items():
        responses[status]["description"] = description
    if ok is not None:
        description, schema = ok
        responses[200] = {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    return responses


def webhook_responses(decodes_json: bool = True) -> Responses:
    """Answers of a webhook POST (``WebhookHandlers.receive`` and the body's reading)."""
    errors = {
        401: "Signature missing or not matching the body, timestamp outside the replay "
        "window, or a replayed call",
        404: "The channel is not enabled (INGEST_CHANNELS)",
        413: "Body over max_body_bytes, more interactions than max_items_per_call, or an "
        "event over the broker's record limit",
        422: "The body is not the network's format, a field is out of bounds (named), "
        "parsing took too long, or ?brand= is not a configured brand",
        503: "The broker did not acknowledge every event in time: retry after Retry-After",
    }
    if decodes_json:
        errors[400] = "The body is not JSON"
    responses = _answers(("Accepted (published, or recently published)", ACCEPTED), errors)
    responses[503]["headers"] = RETRY_AFTER
    return responses


X_CRC_RESPONSES = _answers(
    ("The CRC response token", CRC_RESPONSE),
    {
        400: "crc_token is not a plain token (letters, digits, -_+/=) or too long",
        404: "X is not enabled, or X_CONSUMER_SECRET is not configured",
        422: "crc_token is missing",
    },
)
META_HANDSHAKE_RESPONSES = _answers(
    None,
    {
        400: "hub.mode is not subscribe, or hub.challenge is missing",
        403: "hub.verify_token does not match META_VERIFY_TOKEN",
        404: "Meta is not enabled (INGEST_CHANNELS)",
    },
)
