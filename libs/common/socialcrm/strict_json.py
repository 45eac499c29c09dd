"""Strict JSON for request bodies: UTF-8 only, each key once per object.

``json.loads`` on bytes also reads UTF-16 and UTF-32 (and a UTF-8 byte order mark), and
keeps the last of repeated keys: two readers of one body (a proxy, a signature check, a
log) could then see different documents. RFC 8259 asks for UTF-8 between systems and
unique names; a body that breaks either is refused, its problem named (never its content).

``loads`` is the one decoder of every body a service parses itself (ingest's webhooks);
``StrictJsonRoute`` makes FastAPI's own body parsing use it, so a model body that breaks
the rules gets the usual 422 ``json_invalid`` answer naming the problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

ENCODING = "utf-8"


class StrictJsonError(json.JSONDecodeError):
    """A body that is not strict JSON; ``msg`` names the problem, ``pos`` where it is."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        # Named by its position only: a key is the caller's text, never echoed back.
        raise ValueError("duplicate key in a JSON object")
    return document


def loads(body: bytes | str) -> Any:
    """The JSON value of ``body``; raises ``StrictJsonError`` (a ``ValueError``) naming
    the problem: not UTF-8, a duplicate key, or any error ``json.loads`` finds."""
    if isinstance(body, bytes):
        encoding = json.detect_encoding(body)
        if encoding != ENCODING:
            raise StrictJsonError(f"JSON bodies must be UTF-8 without a BOM, not {encoding}", "", 0)
        try:
            text = body.decode(ENCODING)
        except UnicodeDecodeError as exc:
            raise StrictJsonError(f"not valid UTF-8 at byte {exc.start}", "", 0) from None
    else:
        text = body
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        # The hook's refusal, or an integer over Python's digit limit.
        raise StrictJsonError(str(exc), text, 0) from None


class StrictJsonRequest(Request):
    """A request whose ``json()`` is ``loads``."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An API route whose JSON body is read by ``loads`` (``APIRouter(route_class=...)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
