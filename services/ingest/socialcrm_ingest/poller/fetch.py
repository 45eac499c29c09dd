"""One API request of a poller, bounded whatever the upstream does.

An upstream may be hostile or broken: a page of hundreds of megabytes, a body dripping one
byte at a time (each read within its timeout, the whole never done), a ``Retry-After`` of
millennia. So the body is streamed and refused past a size cap, the whole request (connect,
headers, body) runs under one deadline, and the wait an upstream asks for is capped.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from socialcrm_ingest.poller.schedule import retry_after_seconds
from socialcrm_ingest.poller.sources import PageRequest

# An error answer is quoted in the failure's detail: no need to read more of it.
_ERROR_BODY_BYTES = 1024
_ERROR_QUOTE_CHARS = 300
# More digits than any size we would take: refused without converting the header.
_MAX_LENGTH_DIGITS = 18


class PollFailure(Exception):
    def __init__(self, outcome: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchLimits:
    deadline_seconds: float
    max_response_bytes: int
    max_retry_after_seconds: float


async def fetch_json(client: httpx.AsyncClient, request: PageRequest, limits: FetchLimits) -> Any:
    """The JSON document of one page; PollFailure naming the outcome otherwise."""
    try:
        async with asyncio.timeout(limits.deadline_seconds):
            return await _fetch(client, request, limits)
    except TimeoutError as exc:
        raise PollFailure(
            "timeout", f"no complete answer within {limits.deadline_seconds:g} s"
        ) from exc
    except httpx.TimeoutException as exc:
        raise PollFailure("timeout", f"{type(exc).__name__}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise PollFailure("network_error", f"{type(exc).__name__}: {exc}") from exc


async def _fetch(client: httpx.AsyncClient, request: PageRequest, limits: FetchLimits) -> Any:
    async with client.stream(
        "GET", request.url, params=dict(request.params), headers=dict(request.headers)
    ) as response:
        status = response.status_code
        if status == 429:
            retry_after = retry_after_seconds(
                response.headers.get("retry-after"),
                datetime.now(UTC),
                maximum=limits.max_retry_after_seconds,
            )
            raise PollFailure("rate_limited", "HTTP 429 Too Many Requests", retry_after)
        if status >= 500:
            raise PollFailure("server_error", f"HTTP {status}")
        if status >= 400:
            quoted = await _read(response, _ERROR_BODY_BYTES, truncate=True)
            text = quoted.decode("utf-8", "replace")[:_ERROR_QUOTE_CHARS]
            raise PollFailure("client_error", f"HTTP {status}: {text}")
        body = await _read(response, limits.max_response_bytes, truncate=False)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PollFailure("invalid_payload", f"response is not JSON: {exc}") from exc


async def _read(response: httpx.Response, limit: int, *, truncate: bool) -> bytes:
    """At most ``limit`` bytes of the (decoded) body: the first ones when ``truncate``,
    otherwise PollFailure once the body proves larger, declared or streamed."""
    declared = response.headers.get("content-length", "")
    if (
        not truncate
        and declared.isdigit()
        and (len(declared) > _MAX_LENGTH_DIGITS or int(declared) > limit)
    ):
        raise PollFailure(
            "response_too_large", f"answer of {declared} bytes, over the {limit}-byte limit"
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise PollFailure("response_too_large", f"answer over the {limit}-byte limit")
    return bytes(body)
