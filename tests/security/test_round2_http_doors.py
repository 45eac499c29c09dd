"""Every HTTP door timed and bounded (issue 25, security round two).

Finding 9: idle, header-trickling and body-trickling connections were all still open after
95 s on all five services. Info: UTF-16/32 JSON bodies were accepted and duplicate keys kept
the last value; ``/readyz`` without a key answered component error texts. Low: the demo's
alert receiver printed forged pages raw (escape sequences) and read ``Content-Length: -1``
past its cap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from socialcrm.runtime import create_app
from socialcrm.settings import ServiceSettings
from socialcrm_devstack.pages import MAX_BODY_BYTES, PageReceiver
from socialcrm_devstack.processes import ManagedProcess, free_port
from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_CRM_API_KEY,
    SERVICES,
    LocalStack,
)
from socialcrm_devstack.summary import Story, page_lines
from tests.fixtures.payloads import FIXTURES
from tests.fixtures.webhooks import signed_request_headers

pytestmark = [pytest.mark.security, pytest.mark.e2e]

# The deadlines of the settings' defaults, which the platform keeps (HTTP_*_TIMEOUT_SECONDS).
DEADLINES = {"idle": 5.0, "headers": 10.0, "body": 30.0}
# Room for a loaded 2-core machine between a deadline and the close being seen.
MARGIN = 10.0
# A request the server must still be reading when its deadline comes: one byte at a time.
TRICKLE_EVERY = 0.5
# A path that takes a body on each service; sentiment and kpi answer 405 at once, and their
# server must still stop reading the rest.
BODY_PATHS = {
    "ingest": "/v1/webhooks/chat",
    "sentiment": "/readyz",
    "router": "/v1/interactions/probe/replies",
    "crm-sink": "/v1/cases/probe",
    "kpi": "/readyz",
    "workspace": "/readyz",
}


@dataclass(frozen=True)
class Held:
    """What a held connection saw: when the server closed it (None: still open at the
    end), and what it answered."""

    closed_after: float | None
    answer: bytes

    @property
    def closed(self) -> bool:
        return self.closed_after is not None


def hold(address: tuple[str, int], head: bytes, trickle: bytes, limit: float) -> Held:
    """Connect, send ``head``, then one byte of ``trickle`` every TRICKLE_EVERY seconds,
    until the server closes the connection or ``limit`` seconds pass."""
    answer = b""
    start = time.monotonic()
    with socket.create_connection(address, timeout=5) as sock:
        sock.settimeout(TRICKLE_EVERY)
        if head:
            sock.sendall(head)
        sent = 0
        while time.monotonic() - start < limit:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if sent < len(trickle):
                    try:
                        sock.sendall(trickle[sent : sent + 1])
                    except OSError:
                        return Held(time.monotonic() - start, answer)
                    sent += 1
                continue
            except OSError:  # reset: closed with our unread bytes in its buffer
                return Held(time.monotonic() - start, answer)
            if not chunk:
                return Held(time.monotonic() - start, answer)
            answer += chunk
    return Held(None, answer)


def probes(path: str) -> dict[str, tuple[bytes, bytes]]:
    """Head and trickle of each slow client: silent, trickling its headers, its body."""
    endless = b"a" * 10_000
    return {
        "idle": (b"", b""),
        "headers": (b"GET /healthz HTTP/1.1\r\nHost: probe\r\nX-Slow: ", endless),
        "body": (
            f"POST {path} HTTP/1.1\r\nHost: probe\r\ncontent-type: application/json\r\n"
            f"content-length: {len(endless) + 2}\r\n\r\n".encode(),
            b'"' + endless,
        ),
    }


def test_every_service_closes_idle_and_trickling_connections(platform: LocalStack) -> None:
    """All five services, as the platform runs them (the settings' defaults)."""
    deadlines = DEADLINES
    calls = {
        (spec.name, kind): (("127.0.0.1", platform.ports[spec.name]), head, trickle)
        for spec in SERVICES
        for kind, (head, trickle) in probes(BODY_PATHS[spec.name]).items()
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {
            key: pool.submit(hold, address, head, trickle, deadlines[key[1]] + MARGIN)
            for key, (address, head, trickle) in calls.items()
        }
        held = {key: future.result() for key, future in futures.items()}
    still_open = sorted(f"{name} {kind}" for (name, kind), h in held.items() if not h.closed)
    assert not still_open, f"open after their deadline plus {MARGIN:.0f} s: {still_open}"
    for (name, kind), h in held.items():
        assert h.closed_after is not None
        assert h.closed_after >= deadlines[kind] - 1, f"{name} {kind} closed early: {h}"
    defaults = ServiceSettings()
    assert {
        "idle": defaults.http_idle_timeout_seconds,
        "headers": defaults.http_header_timeout_seconds,
        "body": defaults.http_body_timeout_seconds,
    } == DEADLINES


@pytest.fixture(scope="module")
def quick_ingest(platform: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An ingest of its own with deadlines of 1, 2 and 3 s (set by its environment), on the
    platform's broker: the settings reach the server, and the test takes seconds."""
    port = free_port()
    spec = next(s for s in SERVICES if s.name == "ingest")
    log_path = tmp_path_factory.mktemp("quick-ingest") / "ingest.log"
    process = ManagedProcess(
        "quick-ingest",
        [sys.executable, "-m", spec.module],
        log_path,
        env={
            **platform.service_env(spec),
            "HTTP_PORT": str(port),
            "HTTP_IDLE_TIMEOUT_SECONDS": "1",
            "HTTP_HEADER_TIMEOUT_SECONDS": "2",
            "HTTP_BODY_TIMEOUT_SECONDS": "3",
            "OTEL_TRACES_EXPORTER": "none",
        },
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(
            lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, 90, "ready"
        )
        yield url
    finally:
        process.stop()


def test_the_deadlines_come_from_the_settings_and_spare_a_client_in_time(
    quick_ingest: str,
) -> None:
    address = ("127.0.0.1", int(quick_ingest.rsplit(":", 1)[1]))
    slow = probes("/v1/webhooks/chat")
    with ThreadPoolExecutor(3) as pool:
        futures = {
            kind: pool.submit(hold, address, head, trickle, 3 + MARGIN)
            for kind, (head, trickle) in slow.items()
        }
        held = {kind: future.result() for kind, future in futures.items()}
    for kind, deadline in {"idle": 1, "headers": 2, "body": 3}.items():
        closed = held[kind].closed_after
        assert closed is not None, (kind, held)
        assert deadline - 0.5 <= closed <= deadline + MARGIN, (kind, held)
    assert held["headers"].answer.startswith(b"HTTP/1.1 408 ")
    head, _, body = held["body"].answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(body) == {
        "detail": "request body not received within 3 s (http_body_timeout_seconds)",
        "errors": [],
    }

    # A client slower than a fast one but within each deadline is served as usual, and its
    # kept-alive connection serves a second request.
    with socket.create_connection(address, timeout=10) as sock:
        for piece in (b"POST /v1/webhooks/chat HTTP/1.1\r\n", b"Host: probe\r\n"):
            sock.sendall(piece)
            time.sleep(0.4)
        sock.sendall(b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{")
        time.sleep(0.4)
        sock.sendall(b"}")
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 401 "), first  # read whole, then the signature
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head and Content-Length body): the server may send the
    two in separate segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-body: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def chat_body(*, duplicate_key: bool = False) -> str:
    chat: dict[str, Any] = json.loads((FIXTURES / "chat" / "transcript.json").read_text())
    chat["conversation_id"] = f"c-{uuid.uuid4().hex[:16]}"
    text = json.dumps(chat)
    if duplicate_key:
        # The network signed this text: two readers must not see two conversations.
        text = '{"conversation_id": "c-someone-else", ' + text[1:]
    return text


@pytest.mark.parametrize(
    ("encoding", "duplicate_key", "problem"),
    [
        ("utf-16", False, "UTF-8"),
        ("utf-32", False, "UTF-8"),
        ("utf-16-le", False, "UTF-8"),
        ("utf-8", True, "duplicate key"),
    ],
)
def test_json_bodies_are_utf8_with_each_key_once(
    platform: LocalStack, encoding: str, duplicate_key: bool, problem: str
) -> None:
    reply = '{"text": "bonjour", "text": "forged"}' if duplicate_key else '{"text": "bonjour"}'
    case = '{"note": "a", "note": "b"}' if duplicate_key else '{"note": "a"}'
    json_type = {"content-type": "application/json"}
    answers = {
        "router": httpx.post(
            f"{platform.url('router')}/v1/interactions/{uuid.uuid4()}/replies",
            content=reply.encode(encoding),
            headers={**json_type, "Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"},
        ),
        "crm-sink": httpx.patch(
            f"{platform.url('crm-sink')}/v1/cases/{uuid.uuid4()}",
            content=case.encode(encoding),
            headers={**json_type, "Authorization": f"Bearer {LOCAL_CRM_API_KEY}"},
        ),
    }
    body = chat_body(duplicate_key=duplicate_key).encode(encoding)
    path = "/v1/webhooks/chat"
    answers["ingest"] = httpx.post(
        platform.url("ingest") + path,
        content=body,
        headers=signed_request_headers(platform, path, body),
    )
    for service, answer in answers.items():
        assert 400 <= answer.status_code < 500, (service, answer.status_code, answer.text)
        assert problem in answer.json()["detail"], (service, answer.text)
        assert "forged" not in answer.text
        assert "someone-else" not in answer.text


class Broken:
    """A component whose check fails with a text that must stay in the log."""

    name = "database"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        raise ConnectionError("mongodb://admin:hunter2@db.internal:27017 refused")


def test_readiness_names_states_and_logs_the_reasons(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(ServiceSettings(), [Broken()], title="t", description="d")
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "not ready", "checks": {"database": "unavailable"}}
    assert "hunter2" not in answer.text
    [logged] = [r for r in caplog.records if r.getMessage() == "readiness check failed"]
    assert "hunter2" in logged.__dict__["error"], "the reason is in the log"


def forged_notification() -> bytes:
    escape = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
    return json.dumps(
        {
            "status": "firing",
            "alerts": [
                {
                    "status": f"firing{escape}",
                    "labels": {"alertname": f"Spike{escape}", "severity": "page\r\n\u202e"},
                    "annotations": {"summary": f"run {escape}rm -rf /", "runbook_url": "\x1bP"},
                    "startsAt": "2026-12-06T10:00:00Z",
                }
            ],
        }
    ).encode()


@pytest.fixture
def receiver() -> Iterator[PageReceiver]:
    pages = PageReceiver(free_port(), read_timeout_seconds=1)
    pages.start()
    yield pages
    pages.stop()


def test_the_demo_receiver_prints_forged_pages_harmless(receiver: PageReceiver) -> None:
    answer = httpx.post(receiver.url, content=forged_notification())
    assert answer.status_code == 200
    story = Story(scenario="probe", phase="probe", elapsed=0.0, sent=0, pages=receiver.pages)
    lines = page_lines(story, max_pages=None)
    printed = "\n".join(lines)
    assert len(lines) == 2
    for character in printed:
        assert character == "\n" or character.isprintable(), repr(character)
    assert "\\x1b]0;owned" in printed, "the forged text is shown, escaped"


def raw_post(receiver: PageReceiver, length: str, body: bytes) -> bytes:
    """A POST declaring ``length`` whatever ``body`` holds; the receiver's answer."""
    answer = b""
    with socket.create_connection((receiver.host, receiver.port), timeout=10) as sock:
        head = f"POST /alerts HTTP/1.1\r\nHost: probe\r\nContent-Length: {length}\r\n\r\n"
        with contextlib.suppress(OSError):  # refused before the body: the receiver may close
            sock.sendall(head.encode() + body)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                answer += chunk
    return answer


def test_the_demo_receiver_refuses_a_length_it_cannot_honour(receiver: PageReceiver) -> None:
    # With -1 the body was read until the client closed, whatever its size: past the cap.
    body = forged_notification()
    for length, status in (("-1", b"400"), ("+5", b"400"), (str(MAX_BODY_BYTES + 1), b"413")):
        answer = raw_post(receiver, length, body)
        assert answer.split(b" ", 2)[1:2] == [status], (length, answer[:80])
    assert receiver.pages == []


def test_the_demo_receiver_stops_waiting_for_a_silent_client(receiver: PageReceiver) -> None:
    silent = hold((receiver.host, receiver.port), b"", b"", 1 + MARGIN)
    assert silent.closed, "the receiver kept a silent connection"
