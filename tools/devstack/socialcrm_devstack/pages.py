"""The local stack's pager: receives Alertmanager's webhook notifications and keeps the pages.

Alertmanager POSTs one JSON object per notification (webhook payload version 4): the
group's ``status`` and a list of ``alerts``, each with ``status`` (firing or resolved),
``labels``, ``annotations``, ``startsAt`` and ``endsAt`` (RFC 3339). Each alert of a
notification is one ``Page``. ``pages_of`` is the pure reading of a payload; ``PageReceiver``
is the HTTP server on 127.0.0.1 that Alertmanager's local configuration points at.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/alerts"
# A notification carries a group's alerts; Alertmanager caps none, but a local group is a
# handful of alerts of a few hundred bytes each.
MAX_BODY_BYTES = 1 << 20


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
                status=str(alert.get("status", payload.get("status", ""))),
                starts_at=_epoch(alert.get("startsAt")),
                received_at=received_at,
                labels=tuple(sorted(labels.items())),
            )
        )
    return pages


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): str(item) for key, item in value.items()}


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

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._pages: list[Page] = []
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

    def add(self, pages: list[Page]) -> None:
        with self._lock:
            self._pages.extend(pages)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != WEBHOOK_PATH:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    return
                try:
                    pages = pages_of(json.loads(self.rfile.read(length)), time.time())
                except (ValueError, UnicodeDecodeError):
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
