"""The webhook channels: how each one's body is decoded and which format normalizes it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from socialcrm import strict_json


@dataclass(frozen=True)
class Webhook:
    """One webhook endpoint: how its requests are decoded and normalized."""

    channel: str  # label of the metrics and logs
    format: str  # key of formats.registry.NORMALIZERS
    shape: str  # what the body must be, for 422 answers
    decode: Callable[[bytes], Any] = strict_json.loads


def decode_json_lines(body: bytes) -> Any:
    """One JSON value, or one per line (newline-delimited JSON, as the stream delivers it)."""
    try:
        return strict_json.loads(body)
    except strict_json.StrictJsonError:
        # Not UTF-8, or a repeated key: no way of cutting it into lines makes it JSON.
        raise
    except json.JSONDecodeError:
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        return [strict_json.loads(line) for line in lines]


def decode_raw(body: bytes) -> Any:
    return body


WEBHOOKS: Mapping[str, Webhook] = {
    webhook.channel: webhook
    for webhook in (
        Webhook("x", "x-account-activity", "an X Account Activity payload"),
        Webhook(
            "x-stream", "x-filtered-stream", "X API v2 filtered-stream JSON", decode_json_lines
        ),
        Webhook("meta", "meta", "a Meta Graph webhook payload"),
        Webhook("forum", "forum", "a forum webhook payload"),
        Webhook("email", "email", "an RFC 5322 message", decode_raw),
        Webhook("chat", "chat", "a chat transcript"),
    )
}
