"""Security round two (issue 25): the pollers and the dead-letter replay as an attacker sees them.

Finding 8: every YouTube and TripAdvisor poll logged its URL, API key included, at INFO.
Finding 10 (pollers): a hostile API was unbounded: a 200 MB page was read whole, a dripping
body held a 15-second-timeout poll for minutes, and a ``Retry-After`` of 3,170 years was obeyed.
Finding 11 (replay): ``socialcrm-dlq replay`` sent a dead letter to whatever topic its envelope
named, so a record planted on a DLQ reached ``router.sla-commands.v1``.

The pollers run for real (broker, cursor store) against a hostile API on 127.0.0.1 whose
every loop is bounded in count and stops with the test.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from socialcrm import contract
from socialcrm.dlq import replay
from socialcrm.kafka.admin import ensure_topics
from socialcrm.logs import JsonFormatter
from socialcrm.settings import ServiceSettings
from socialcrm_ingest.poller.app import build_app
from socialcrm_ingest.poller.settings import PollerSettings
from tests.conftest import Infra
from tests.fixtures.kafka import publish_raw, read_to_end
from tests.fixtures.metrics import metric_value
from tests.fixtures.waiting import eventually

pytestmark = [pytest.mark.security, pytest.mark.integration]

YOUTUBE_KEY = "AIzaSyYouTubeKeyNeverLogged0123456789"
TRIPADVISOR_KEY = "TA5ecretKeyNeverLogged9876"
GOOGLE_TOKEN = "ya29.GoogleTokenNeverLogged-abcdef"
SECRETS = (YOUTUBE_KEY, TRIPADVISOR_KEY, GOOGLE_TOKEN)

MIB = 1024 * 1024
# The pollers' cap in these tests, and what the hostile API offers: far more.
MAX_RESPONSE_BYTES = 1 * MIB
HUGE_BODY_BYTES = 64 * MIB
# What may be in flight (socket buffers) when the poller hangs up: far below the whole body.
IN_FLIGHT_BYTES = 24 * MIB
CHUNK = 64 * 1024
DRIP_BYTES = 4000  # one byte every DRIP_EVERY seconds: 1000 s to send it all
DRIP_EVERY = 0.25
REQUEST_DEADLINE = 1.5
RETRY_AFTER_CEILING = 1.0
THREE_THOUSAND_YEARS = str(100_000_000_000)


class HostileApi:
    """An API on 127.0.0.1 that misbehaves by the first segment of the path."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.most_sent: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, mode: str) -> int:
        with self.lock:
            self.requests[mode] += 1
            return self.requests[mode]

    def sent(self, mode: str, size: int) -> None:
        with self.lock:
            self.most_sent[mode] = max(self.most_sent[mode], size)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mode = urlsplit(self.path).path.split("/")[1]
                nth = api.count(mode)
                if mode == "ok":
                    self.answer(200, {"items": [], "data": [], "reviews": []})
                elif mode == "echo":
                    # An upstream quoting the request back, key and all, in its error.
                    self.answer(400, {"error": {"message": f"bad request {self.path}"}})
                elif mode.startswith("rate-limited"):
                    if nth == 1:
                        retry_after = (
                            THREE_THOUSAND_YEARS
                            if mode == "rate-limited-seconds"
                            else "Fri, 31 Dec 9999 23:59:59 GMT"
                        )
                        self.answer(429, {}, {"Retry-After": retry_after})
                    else:
                        self.answer(200, {"items": []})
                elif mode in ("huge-declared", "huge-undeclared"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    if mode == "huge-declared":
                        self.send_header("Content-Length", str(HUGE_BODY_BYTES))
                    self.end_headers()
                    self.stream(mode, b" " * CHUNK, HUGE_BODY_BYTES // CHUNK, every=0.0)
                elif mode == "drip":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(DRIP_BYTES))
                    self.end_headers()
                    self.stream(mode, b" ", DRIP_BYTES, every=DRIP_EVERY)
                else:
                    self.answer(404, {})

            def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**(headers or {}), "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def stream(self, mode: str, chunk: bytes, chunks: int, every: float) -> None:
                """At most ``chunks`` writes; stops when the client hangs up or the test ends."""
                sent = 0
                for _ in range(chunks):
                    if api.stopping.wait(every) if every else api.stopping.is_set():
                        break
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        break
                    sent += len(chunk)
                    api.sent(mode, sent)
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@pytest.fixture
def hostile() -> Iterator[HostileApi]:
    api = HostileApi()
    api.thread.start()
    yield api
    api.stopping.set()
    api.server.shutdown()
    api.server.server_close()


def settings_for(infra: Infra, sources: list[dict[str, Any]]) -> PollerSettings:
    marker = uuid.uuid4().hex[:8]
    return PollerSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        default_brand=f"round2-{marker}",
        poll_sources=json.dumps(sources),
        poll_state_topic=f"ingest.poll-state.test-round2-{marker}",
        poll_interval_seconds=0.2,
        poll_backoff_initial_seconds=0.05,
        poll_backoff_max_seconds=0.2,
        poll_max_requests_per_minute=6000,
        poll_request_timeout_seconds=REQUEST_DEADLINE,
        poll_max_response_bytes=MAX_RESPONSE_BYTES,
        poll_retry_after_max_seconds=RETRY_AFTER_CEILING,
        shutdown_timeout_seconds=5,
        youtube_api_key=YOUTUBE_KEY,
        tripadvisor_api_key=TRIPADVISOR_KEY,
        google_business_access_token=GOOGLE_TOKEN,
    )


def source(name: str, kind: str, base: str) -> dict[str, Any]:
    target = {"youtube": "dQw4w9WgXcQ", "tripadvisor": "187147"}.get(kind, "accounts/1/locations/2")
    return {"name": name, "kind": kind, "target": target, "base_url": base}


def polls(client: TestClient, source_name: str, outcome: str) -> float:
    metrics = client.get("/metrics").text
    return metric_value(
        metrics, "socialcrm_ingest_polls_total", source=source_name, outcome=outcome
    )


def await_polls(client: TestClient, source_name: str, outcome: str, wait_seconds: float) -> None:
    """Until two polls of the source had ``outcome``: the loop went on after the first."""
    eventually(
        lambda: polls(client, source_name, outcome) >= 2,
        wait_seconds,
        what=f"two polls of {source_name} with outcome {outcome}",
    )


# Finding 8 ---------------------------------------------------------------------------------


def test_no_api_key_or_token_reaches_any_log_line_even_at_debug(
    infra: Infra, hostile: HostileApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for client_logger in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=client_logger)
    marker = uuid.uuid4().hex[:8]
    sources = [
        source(f"yt-ok-{marker}", "youtube", f"{hostile.base}/ok"),
        source(f"ta-ok-{marker}", "tripadvisor", f"{hostile.base}/ok"),
        source(f"gbp-ok-{marker}", "google_reviews", f"{hostile.base}/ok"),
        source(f"yt-echo-{marker}", "youtube", f"{hostile.base}/echo"),
        source(f"ta-echo-{marker}", "tripadvisor", f"{hostile.base}/echo"),
    ]
    with TestClient(build_app(settings_for(infra, sources))) as client:
        for name, outcome in [
            (f"yt-ok-{marker}", "ok"),
            (f"ta-ok-{marker}", "ok"),
            (f"gbp-ok-{marker}", "ok"),
            (f"yt-echo-{marker}", "client_error"),
            (f"ta-echo-{marker}", "client_error"),
        ]:
            await_polls(client, name, outcome, 60)

    # The probe saw what it meant to: the HTTP client's request lines and the failures.
    client_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/ok/commentThreads" in line for line in client_lines), client_lines[:5]
    assert any(
        r.getMessage() == "poll failed, retrying later" and "HTTP 400" in str(vars(r))
        for r in caplog.records
    )
    formatter = JsonFormatter("ingest-poller")
    for record in caplog.records:
        printed = formatter.format(record)
        for secret in SECRETS:
            assert secret not in printed, printed
    for secret in SECRETS:
        assert secret not in caplog.text


# Finding 10 --------------------------------------------------------------------------------


def test_a_huge_page_fails_the_poll_without_being_read_whole(
    infra: Infra, hostile: HostileApi
) -> None:
    marker = uuid.uuid4().hex[:8]
    names = {mode: f"{mode}-{marker}" for mode in ("huge-declared", "huge-undeclared")}
    sources = [source(name, "youtube", f"{hostile.base}/{mode}") for mode, name in names.items()]
    with TestClient(build_app(settings_for(infra, sources))) as client:
        for name in names.values():
            await_polls(client, name, "response_too_large", 30)
        assert client.get("/healthz").status_code == 200
    with hostile.lock:
        most_sent = dict(hostile.most_sent)
    # Declared too large: refused on its headers. Undeclared: read up to the cap, then cut.
    assert most_sent.get("huge-declared", 0) < IN_FLIGHT_BYTES, most_sent
    assert most_sent.get("huge-undeclared", 0) < IN_FLIGHT_BYTES, most_sent


def test_a_dripping_body_ends_the_poll_at_its_deadline(infra: Infra, hostile: HostileApi) -> None:
    name = f"drip-{uuid.uuid4().hex[:8]}"
    settings = settings_for(infra, [source(name, "tripadvisor", f"{hostile.base}/drip")])
    started = time.monotonic()
    with TestClient(build_app(settings)) as client:
        # Each byte comes well within the read timeout; only a deadline on the whole
        # request ends the poll. Two timeouts: the loop lives on and polls again.
        await_polls(client, name, "timeout", 60)
    assert time.monotonic() - started < 120  # generous: the drip alone lasts 1000 s
    with hostile.lock:
        assert hostile.most_sent["drip"] < DRIP_BYTES


def test_a_retry_after_of_millennia_is_capped(infra: Infra, hostile: HostileApi) -> None:
    marker = uuid.uuid4().hex[:8]
    names = {mode: f"{mode}-{marker}" for mode in ("rate-limited-seconds", "rate-limited-date")}
    sources = [source(name, "youtube", f"{hostile.base}/{mode}") for mode, name in names.items()]
    with TestClient(build_app(settings_for(infra, sources))) as client:
        for mode, name in names.items():
            # Asked to wait 3,170 years (or until 9999): polled again after the ceiling.
            await_polls(client, name, "ok", 60)
            assert polls(client, name, "rate_limited") == 1
            with hostile.lock:
                assert hostile.requests[mode] >= 3


# Finding 11: dead-letter replay --------------------------------------------------------------


async def test_a_planted_dead_letter_is_not_replayed_outside_its_source_topic(
    infra: Infra, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = uuid.uuid4().hex[:8]
    source_topic = f"test.round2-replay-{marker}.v1"
    dlq = contract.dlq_topic(source_topic)
    # Stands for router.sla-commands.v1: a topic that is not this DLQ's source.
    victim = f"test.round2-victim-{marker}.v1"
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap, topic_partitions=1)
    await ensure_topics(settings, [source_topic, dlq, victim])
    genuine = contract.DeadLetter(
        source_topic=source_topic,
        original_key=b"genuine",
        original_value=b"genuine value",
        error_type="handler_error",
    )
    planted = contract.DeadLetter(
        source_topic=victim,
        original_key=b"planted",
        original_value=b"erase the interaction",
        error_type="handler_error",
    )
    await publish_raw(
        infra.kafka.bootstrap,
        dlq,
        [(b"genuine", genuine.SerializeToString()), (b"planted", planted.SerializeToString())],
    )

    counts = await replay(infra.kafka.bootstrap, dlq, error_type=None, dry_run=False)

    assert await read_to_end(infra.kafka.bootstrap, victim) == []
    replayed = await read_to_end(infra.kafka.bootstrap, source_topic)
    assert [(r.key, r.value) for r in replayed] == [(b"genuine", b"genuine value")]
    assert counts.replayed == 1
    assert counts.refused == 1
    err = capsys.readouterr().err
    assert f"refused 1 dead letters naming another topic than {source_topic}" in err
    assert victim in err
