"""The HTTP server of every service: uvicorn's h11 protocol with a deadline on each phase
of a connection.

uvicorn bounds only the wait for the next request after an answer (``timeout_keep_alive``),
and offers no header or body timeout: a connection that never sends a byte, or a request
whose headers or body trickle in a byte at a time, held a connection open for ever. Here:

- idle, no request under way (just opened, or answered): closed after
  ``HTTP_IDLE_TIMEOUT_SECONDS``;
- headers, from a request's first byte to the end of its headers: ``HTTP_HEADER_TIMEOUT_SECONDS``,
  then 408 and closed;
- body, from the end of the headers to the end of the body: ``HTTP_BODY_TIMEOUT_SECONDS``,
  then 408 in the shared error shape (unless the app answered already) and closed.

Each deadline is a total from the start of its phase, never renewed by a byte arriving: a
byte a second must not keep a request alive. The size of the headers is bounded by h11
(16 KiB); the size of a body by each API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from socialcrm.settings import ServiceSettings

log = logging.getLogger(__name__)

_HEADERS_LATE = b"request headers not received in time (http_header_timeout_seconds)"
# h11 cannot answer a request whose headers it has not read: this answer is written as is.
HEADERS_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n%s" % (len(_HEADERS_LATE), _HEADERS_LATE)
)


@dataclass(frozen=True)
class HttpTimeouts:
    """Seconds allowed to each phase of a connection."""

    idle: float
    headers: float
    body: float

    @classmethod
    def of(cls, settings: ServiceSettings) -> HttpTimeouts:
        return cls(
            idle=settings.http_idle_timeout_seconds,
            headers=settings.http_header_timeout_seconds,
            body=settings.http_body_timeout_seconds,
        )


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the idle, header and body deadlines of ``timeouts``."""

    timeouts: ClassVar[HttpTimeouts]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn's keep-alive timer is the idle deadline; asyncio takes fractions of seconds.
        self.timeout_keep_alive = self.timeouts.idle  # type: ignore[assignment]
        self._headers_due: asyncio.TimerHandle | None = None
        self._body_due: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer after an answer only: a connection that never
        # sends a byte is idle too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeouts.idle, self.timeout_keep_alive_handler
        )

    def data_received(self, data: bytes) -> None:
        if self._headers_due is None and self.conn.their_state is h11.IDLE:
            self._headers_due = self.loop.call_later(self.timeouts.headers, self._headers_late)
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The answer may have let a pipelined request start.
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadlines()
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Arm or cancel the header and body deadlines after the request's state moved."""
        state = self.conn.their_state
        if state is not h11.IDLE and self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None
        if state is h11.SEND_BODY:
            if self._body_due is None:
                self._body_due = self.loop.call_later(self.timeouts.body, self._body_late)
        elif self._body_due is not None:
            self._body_due.cancel()
            self._body_due = None

    def _cancel_deadlines(self) -> None:
        for handle in (self._headers_due, self._body_due):
            if handle is not None:
                handle.cancel()
        self._headers_due = self._body_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.transport.is_closing():
            return
        log.info(
            "connection closed: request headers not received in time",
            extra={"timeout_seconds": self.timeouts.headers},
        )
        self.transport.write(HEADERS_TIMED_OUT)
        self.transport.close()

    def _body_late(self) -> None:
        self._body_due = None
        if self.transport.is_closing():
            return
        log.info(
            "connection closed: request body not received in time",
            extra={"timeout_seconds": self.timeouts.body},
        )
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The app, still waiting for the body, sees the client gone and answers no one.
            cycle.disconnected = True
            cycle.message_event.set()
            self._answer_408()
        self.transport.close()

    def _answer_408(self) -> None:
        detail = (
            f"request body not received within {self.timeouts.body:g} s (http_body_timeout_seconds)"
        )
        body = json.dumps({"detail": detail, "errors": []}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=408, headers=headers, reason=b"Request Timeout"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            # The connection is closed in any case; the answer was a courtesy.
            pass


def timed_protocol(timeouts: HttpTimeouts) -> type[TimedH11Protocol]:
    """The protocol class uvicorn runs (``uvicorn.run(http=...)``) with these deadlines."""

    class Protocol(TimedH11Protocol):
        pass

    Protocol.timeouts = timeouts
    return Protocol
