"""The local stack's pager: receives Alertmanager's webhook notifications and keeps the pages.

Alertmanager POSTs one JSON object per notification (webhook payload version 4): the
group's ``status`` and a list of ``alerts``, each with ``status`` (firing or resolved),
``labels``, ``annotations``, ``startsAt`` and ``endsAt`` (RFC 3339). Each alert of a
notification is one ``Page``. ``pages_of`` is the pure reading of a payload; ``PageReceiver``
is the HTTP server on 127.0.0.1 that Alertmanager's local configuration points at.

Anyone on the machine can post to the receiver, and its pages are printed on the demo's
terminal: every text of a page is ``printable`` (control and format characters escaped,
length bounded), and a body is read only with a valid Content-Length under the cap.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/alerts"
# A notification carries a group's alerts; Alertmanager caps none, but a local group is a
# handful of alerts of a few hundred bytes each.
MAX_BODY_BYTES = 1 << 20
# A page's texts are one line of the demo's summary each.
MAX_TEXT_LENGTH = 500


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook notification."""


@dataclass(frozen=True)
class Page:
    alertname: str
    severity: str
    summary: str
    runbook_url: str
    # "firing" or "resolved".
    status: str
    # When the alert began (Alertmanager's startsAt) and when the page arrived, epoch seconds.
    starts_at: float
    received_at: float
    # Every label of the alert (brand, topic, job...), sorted by name.
    labels: tuple[tuple[str, str], ...] = ()
    # The notification it came in, numbered from 1 by the receiver: the alerts Alertmanager
    # grouped (one incident) share it, and on-call is paged once per notification.
    notification: int = 0

    @property
    def firing(self) -> bool:
        return self.status == "firing"


def pages_of(payload: Any, received_at: float) -> list[Page]:
    """The pages of one webhook notification."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("alerts"), list):
        raise PayloadError("not an Alertmanager notification: no list of alerts")
    pages = []
    for alert in payload["alerts"]:
        if not isinstance(alert, Mapping):
            raise PayloadError("an alert is not an object")
        labels = _strings(alert.get("labels"))
        annotations = _strings(alert.get("annotations"))
        pages.append(
            Page(
                alertname=labels.get("alertname", ""),
                severity=labels.get("severity", ""),
                summary=annotations.get("summary", ""),
                runbook_url=annotations.get("runbook_url", ""),
                status=printable(str(alert.get("status", payload.get("status", "")))),
                starts_at=_epoch(alert.get("startsAt")),
                received_at=received_at,
                labels=tuple(sorted(labels.items())),
            )
        )
    return pages


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: escape sequences, other control characters and
    format characters (bidirectional overrides) shown escaped, e.g. ``\\x1b``; cut at
    MAX_TEXT_LENGTH characters."""
    cut = text[:MAX_TEXT_LENGTH]
    shown = "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
        for c in cut
    )
    return shown + ("..." if len(text) > MAX_TEXT_LENGTH else "")


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {printable(str(key)): printable(str(item)) for key, item in value.items()}


def _epoch(value: Any) -> float:
    """RFC 3339 as Alertmanager writes it (nanoseconds: Python reads microseconds)."""
    if not isinstance(value, str) or not value:
        return 0.0
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise PayloadError(f"startsAt {value!r} is not RFC 3339") from exc


class PageReceiver:
    """An HTTP server in a thread that keeps every page Alertmanager sends it."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", read_timeout_seconds: float = 10.0
    ) -> None:
        """``read_timeout_seconds``: the longest wait for the next bytes of a request."""
        self.host = host
        self.port = port
        self.read_timeout_seconds = read_timeout_seconds
        self._pages: list[Page] = []
        self._notifications = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where Alertmanager posts its notifications."""
        return f"http://{self.host}:{self.port}{WEBHOOK_PATH}"

    @property
    def pages(self) -> list[Page]:
        """Every page received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._pages)

    def pages_since(self, moment: float) -> list[Page]:
        """Pages received at or after ``moment`` (epoch seconds)."""
        with self._lock:
            return [page for page in self._pages if page.received_at >= moment]

    @property
    def notifications(self) -> list[tuple[Page, ...]]:
        """The pages of each notification received so far, oldest first."""
        with self._lock:
            grouped: dict[int, list[Page]] = {}
            for page in self._pages:
                grouped.setdefault(page.notification, []).append(page)
            return [tuple(pages) for pages in grouped.values()]

    def add(self, pages: list[Page]) -> None:
        """Keep the pages of one notification."""
        with self._lock:
            self._notifications += 1
            self._pages.extend(replace(page, notification=self._notifications) for page in pages)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # Socket timeout of every read: a silent client does not hold a thread for ever.
            timeout = receiver.read_timeout_seconds

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != WEBHOOK_PATH:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                declared = self.headers.get("content-length")
                if declared is None:
                    self.send_error(HTTPStatus.LENGTH_REQUIRED)
                    return
                declared = declared.strip()
                if not (declared.isascii() and declared.isdigit()):
                    # -1 would read until the client closes, past any cap.
                    self.send_error(HTTPStatus.BAD_REQUEST, "Content-Length is not a byte count")
                    return
                length = int(declared)
                if length > MAX_BODY_BYTES:
                    self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    return
                try:
                    body = self.rfile.read(length)
                except TimeoutError:
                    self.close_connection = True
                    return
                try:
                    pages = pages_of(json.loads(body), time.time())
                except (ValueError, UnicodeDecodeError, RecursionError):
                    self.send_error(HTTPStatus.BAD_REQUEST)
                    return
                receiver.add(pages)
                self.send_response(HTTPStatus.OK)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                # Alertmanager's calls are not worth a line on the demo's terminal each.
                return

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="page-receiver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
