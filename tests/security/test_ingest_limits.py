"""Bounded input at ingest's door, on the running platform (issue 16).

Finding 6: chunked uploads were read whole before the 413 (memory exhaustion).
Finding 7: 1,000 nested multipart parts blocked the event loop, then answered 500.
Finding 11: a call's items were published in part before a 503, and a record too large for
Kafka got 503 with Retry-After, though no retry can succeed.
Finding 12 (ingest): far-future dates, NaN/infinite/negative counts, a blank handle and
texts over the network's own maximum were accepted.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from socialcrm_devstack.stack import LocalStack
from tests.fixtures.metrics import metric_value
from tests.fixtures.payloads import FIXTURES
from tests.fixtures.webhooks import post_webhook

pytestmark = [pytest.mark.security, pytest.mark.e2e]

# Ingest's default MAX_BODY_BYTES, which the local stack keeps.
MAX_BODY_BYTES = 1_048_576
CHUNK = 64 * 1024
# What may be in flight (socket buffers) when ingest answers: far below a body read whole.
IN_FLIGHT = 8 * 1024 * 1024
NOMINAL_UPLOAD = 300 * 1024 * 1024


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def forum_post(**overrides: Any) -> dict[str, Any]:
    """A forum post of our own webhook's format, with a fresh id."""
    marker = uuid.uuid4().hex[:12]
    post: dict[str, Any] = {
        "type": "post",
        "id": f"p-{marker}",
        "thread_id": f"t-{marker}",
        "author": {"id": f"u-{marker}", "username": f"user_{marker}", "followers": 3},
        "text": "La livraison a trois jours de retard.",
        "created_at": now_iso(),
        "language": "fr",
    }
    post.update(overrides)
    return post


def chat_transcript(messages: int) -> dict[str, Any]:
    marker = uuid.uuid4().hex[:12]
    return {
        "conversation_id": f"c-{marker}",
        "visitor": {"id": f"v-{marker}", "name": "Client Test"},
        "messages": [
            {"id": str(i), "from": "visitor", "text": "allo ?", "created_at": now_iso()}
            for i in range(messages)
        ],
    }


def produced(stack: LocalStack) -> float:
    """Events ingest has published so far, from its /metrics."""
    metrics = httpx.get(stack.url("ingest") + "/metrics", timeout=10).text
    return metric_value(metrics, "socialcrm_events_produced_total", topic="social.interactions.v1")


def chunked_upload(stack: LocalStack, path: str) -> tuple[int, bytes]:
    """Stream a chunked body (no Content-Length) of nominally 300 MB, never allocated.

    Stops sending as soon as ingest answers (or closes), and in any case after
    ``MAX_BODY_BYTES + IN_FLIGHT``: ingest must have answered by then. Returns the bytes
    sent before the answer and the raw answer.
    """
    with socket.create_connection(("127.0.0.1", stack.ports["ingest"]), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHUNK)
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        frame = b"%x\r\n" % CHUNK + b" " * CHUNK + b"\r\n"
        sent = 0
        while sent < min(NOMINAL_UPLOAD, MAX_BODY_BYTES + IN_FLIGHT):
            readable, _, _ = select.select([sock], [], [], 0.01)
            if readable:
                break
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            # The status line and headers are enough; the body is the JSON detail.
            answer += sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            pass
        return sent, answer


def test_finding_6_chunked_bodies_are_refused_at_the_cap_while_streaming(
    platform: LocalStack,
) -> None:
    with ThreadPoolExecutor(4) as pool:
        uploads = list(pool.map(lambda _: chunked_upload(platform, "/v1/webhooks/forum"), range(4)))
    for sent, answer in uploads:
        assert answer.startswith(b"HTTP/1.1 413"), (sent, answer[:200])
        assert b"max_body_bytes" in answer
        assert sent <= MAX_BODY_BYTES + IN_FLIGHT
    # A declared length over the cap is refused before a byte of the body is read.
    with socket.create_connection(("127.0.0.1", platform.ports["ingest"]), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/webhooks/forum HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {NOMINAL_UPLOAD}\r\n\r\n".encode()
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
    assert httpx.get(platform.url("ingest") + "/healthz", timeout=10).status_code == 200


def nested_multipart(levels: int) -> bytes:
    marker = uuid.uuid4().hex
    head = (
        f"From: Client <client-{marker}@example.fr>\r\nMessage-ID: <{marker}@example.fr>\r\n"
        "Subject: commande\r\nMIME-Version: 1.0\r\n"
    ).encode()
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(levels)
    )
    return head + opening + b"Content-Type: text/plain\r\n\r\nBonjour\r\n"


def while_polling_health(stack: LocalStack, call: Callable[[], httpx.Response]) -> httpx.Response:
    """``call``'s answer, with /healthz asked all along: it must answer each time."""
    done = threading.Event()
    health: list[int] = []

    def poll() -> None:
        while True:
            health.append(httpx.get(stack.url("ingest") + "/healthz", timeout=2).status_code)
            if done.is_set():
                return

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        answer = call()
    finally:
        done.set()
        poller.join()
    assert set(health) == {200}
    return answer


def post_email(stack: LocalStack, message: bytes) -> httpx.Response:
    return post_webhook(
        stack, "/v1/webhooks/email", message, headers={"content-type": "message/rfc822"}
    )


def test_finding_7_nested_email_parts_are_refused_without_blocking(platform: LocalStack) -> None:
    answer = while_polling_health(platform, lambda: post_email(platform, nested_multipart(1000)))
    assert answer.status_code == 422, answer.text
    assert "over the limit of 32" in answer.json()["detail"]
    # Within the container count but nested too deep.
    deep = post_email(platform, nested_multipart(12))
    assert deep.status_code == 422, deep.text
    assert "nested more than 10 levels" in deep.json()["detail"]
    # One level with many parts: counted before parsing.
    marker = uuid.uuid4().hex
    flat = (
        f"From: c-{marker}@example.fr\r\nMessage-ID: <{marker}@example.fr>\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    ).encode() + b"--b\r\n\r\nx\r\n" * 50_000
    many = post_email(platform, flat)
    assert many.status_code == 422, many.text
    assert "more than 100 MIME parts" in many.json()["detail"]


def test_finding_11_nothing_is_published_from_a_call_over_the_item_cap(
    platform: LocalStack,
) -> None:
    before = produced(platform)
    answer = post_webhook(platform, "/v1/webhooks/chat", chat_transcript(10_000))
    assert answer.status_code == 413, answer.text
    assert "max_items_per_call" in answer.json()["detail"]
    assert "retry-after" not in answer.headers
    assert produced(platform) == before


def test_finding_11_a_record_too_large_for_kafka_is_refused_not_retried(
    platform: LocalStack,
) -> None:
    # The body is under MAX_BODY_BYTES, the event over the broker's record limit.
    post = forum_post(text="x" * (MAX_BODY_BYTES - 1_000))
    answer = post_webhook(platform, "/v1/webhooks/forum", post)
    assert answer.status_code in (413, 422), answer.text
    assert "retry-after" not in answer.headers
    assert "maximum of" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "payload", "named"),
    [
        ("/v1/webhooks/forum", lambda: forum_post(created_at="9999-12-31T00:00:00Z"), "created_at"),
        ("/v1/webhooks/forum", lambda: forum_post(created_at="1970-01-01T00:00:00Z"), "created_at"),
        (
            "/v1/webhooks/forum",
            lambda: forum_post(author={"username": "camille", "followers": float("nan")}),
            "author.followers",
        ),
        (
            "/v1/webhooks/forum",
            lambda: forum_post(author={"username": "camille", "followers": float("inf")}),
            "author.followers",
        ),
        (
            "/v1/webhooks/forum",
            lambda: forum_post(author={"username": "camille", "followers": -5}),
            "author.followers",
        ),
        (
            "/v1/webhooks/forum",
            lambda: forum_post(author={"username": "  @  "}),
            "author handle",
        ),
        ("/v1/webhooks/forum", lambda: forum_post(id="p" * 300), "external id"),
        ("/v1/webhooks/forum", lambda: forum_post(text="x" * 40_000), "maximum of 32300"),
        ("/v1/webhooks/meta", lambda: facebook_comment("x" * 8_001), "maximum of 8000"),
    ],
    ids=[
        "far-future",
        "before-2000",
        "nan-followers",
        "infinite-followers",
        "negative-followers",
        "blank-handle",
        "long-id",
        "forum-text",
        "facebook-comment",
    ],
)
def test_finding_12_fields_out_of_range_are_refused_naming_them(
    platform: LocalStack, path: str, payload: Callable[[], dict[str, Any]], named: str
) -> None:
    answer = post_webhook(platform, path, payload())
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["detail"]


def facebook_comment(text: str) -> dict[str, Any]:
    """A Page feed comment (Meta's published format) of ``text``, with fresh ids."""
    payload: dict[str, Any] = json.loads((FIXTURES / "meta" / "page_feed_comment.json").read_text())
    value = payload["entry"][0]["changes"][0]["value"]
    value["comment_id"] = f"912345678901234_{uuid.uuid4().int % 10**16}"
    value["created_time"] = int(datetime.now(UTC).timestamp())
    value["message"] = text
    return payload
