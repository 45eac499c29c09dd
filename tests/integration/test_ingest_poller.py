"""The pollers against the real broker and a local fake of the APIs: every comment and
review published exactly once across overlapping polls and a restart, with backoff on a
429 and a 500."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from socialcrm import contract
from socialcrm_ingest.dead_letters import DLQ_TOPIC
from socialcrm_ingest.poller.app import build_app
from socialcrm_ingest.poller.schedule import cursor_from_json
from socialcrm_ingest.poller.settings import PollerSettings
from tests.conftest import Infra
from tests.fixtures.kafka import read_to_end
from tests.fixtures.waiting import eventually
from tests.integration.test_ingest_backfill import interactions_of_brand

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


class FakeApis:
    """YouTube, Google Business Profile and TripAdvisor pages served from the fixtures."""

    def __init__(self) -> None:
        youtube_page1 = load("youtube/comment_threads_page1.json")
        self.youtube = {
            "": youtube_page1,
            youtube_page1["nextPageToken"]: load("youtube/comment_threads_page2.json"),
        }
        google_page1 = load("google_reviews/reviews_page1.json")
        self.google = {
            "": google_page1,
            google_page1["nextPageToken"]: load("google_reviews/reviews_page2.json"),
        }
        self.tripadvisor = load("tripadvisor/location_reviews.json")
        # An item out of shape: dead-lettered once, whatever the number of polls.
        self.tripadvisor["data"].append({"id": 1034500000, "rating": 9})
        # Scripted failures of the YouTube API, served before its pages.
        self.youtube_failures: list[tuple[int, dict[str, str]]] = [
            (429, {"Retry-After": "1"}),
            (500, {}),
        ]
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_youtube_thread(self, thread_id: str) -> None:
        thread = copy.deepcopy(self.youtube[""]["items"][1])
        thread["id"] = thread["snippet"]["topLevelComment"]["id"] = thread_id
        thread["snippet"]["topLevelComment"]["snippet"]["publishedAt"] = "2026-11-16T12:00:00Z"
        with self.lock:
            self.youtube[""]["items"].insert(0, thread)

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if path == "/youtube/v3/commentThreads":
                if self.youtube_failures:
                    status, headers = self.youtube_failures.pop(0)
                    self.calls[f"youtube {status}"] += 1
                    return status, headers, {"error": {"code": status}}
                token = query.get("pageToken", "")
                self.calls[f"youtube page {token or 'first'}"] += 1
                return 200, {}, self.youtube[token]
            if path == "/gbp/v4/accounts/1/locations/2/reviews":
                token = query.get("pageToken", "")
                self.calls["google"] += 1
                return 200, {}, self.google[token]
            if path == "/ta/api/v1/location/187147/reviews":
                self.calls["tripadvisor"] += 1
                offset = int(query.get("offset", "0"))
                return 200, {}, {"data": self.tripadvisor["data"][offset : offset + 5]}
        return 404, {}, {"error": "not found"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        answer = self._answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, headers, body = answer(url.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler

    def first_pages(self) -> int:
        with self.lock:
            return self.calls["youtube page first"]


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    fake = FakeApis()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def settings_for(infra: Infra, apis: FakeApis, brand: str, state_topic: str) -> PollerSettings:
    suffix = brand
    sources = [
        {"name": f"yt-{suffix}", "kind": "youtube", "target": "dQw4w9WgXcQ", "brand": brand},
        {
            "name": f"google-{suffix}",
            "kind": "google_reviews",
            "target": "accounts/1/locations/2",
            "brand": brand,
        },
        {"name": f"ta-{suffix}", "kind": "tripadvisor", "target": "187147", "brand": brand},
    ]
    return PollerSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        poll_sources=json.dumps(sources),
        poll_state_topic=state_topic,
        poll_interval_seconds=0.2,
        poll_backoff_initial_seconds=0.05,
        poll_backoff_max_seconds=0.2,
        poll_max_requests_per_minute=6000,
        youtube_api_base_url=f"{apis.base}/youtube/v3",
        google_business_api_base_url=f"{apis.base}/gbp/v4",
        tripadvisor_api_base_url=f"{apis.base}/ta/api/v1",
        youtube_api_key="test-key",
    )


def published_ids(infra: Infra, brand: str) -> Counter[str]:
    interactions = asyncio.run(interactions_of_brand(infra.kafka.bootstrap, brand))
    return Counter(i.header.external_id for i in interactions)


EXPECTED = {
    "UgzDE2tasfmrYLyNkGt4AaABAg",
    "UgzDE2tasfmrYLyNkGt4AaABAg.9xKb0QxM2aZ9xKb1pRtV3q",
    "Ugw8kPq3xN1vR7tY5zA4AaABAg",
    "UgxR4tY7uI0oP3aS6dF9gH2jAaABAg",
    "AbFvOqlLkK8Zr1Zq2Xy3Wv4Ut5Sr6Qp",
    "AbFvOqmN3pR5tV7xZ9bD1fH3jL5nP7r",
    "AbFvOqpQ2rS4tU6vW8xY0zA2bC4dE6f",
    "1034567891",
    "1034512345",
}


def test_pollers_publish_each_item_once_across_overlapping_polls_and_a_restart(
    infra: Infra, apis: FakeApis
) -> None:
    brand = f"poll-{uuid.uuid4().hex[:8]}"
    state_topic = f"ingest.poll-state.test-{brand}"
    settings = settings_for(infra, apis, brand, state_topic)

    with TestClient(build_app(settings)) as client:
        eventually(lambda: apis.first_pages() >= 2, 20)  # two overlapping polls of the first page
        apis.add_youtube_thread("UgzNEWthreadAfterFirstPolls")
        seen_before = apis.first_pages()
        eventually(lambda: apis.first_pages() >= seen_before + 2, 20)
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text

    assert apis.calls["youtube 429"] == apis.calls["youtube 500"] == 1
    source = f"yt-{brand}"
    assert (
        f'socialcrm_ingest_polls_total{{outcome="rate_limited",source="{source}"}} 1.0' in metrics
    )
    assert (
        f'socialcrm_ingest_polls_total{{outcome="server_error",source="{source}"}} 1.0' in metrics
    )
    assert f'socialcrm_ingest_poll_interactions_total{{source="{source}"}} 5.0' in metrics
    first_run = published_ids(infra, brand)
    assert set(first_run) == EXPECTED | {"UgzNEWthreadAfterFirstPolls"}
    assert set(first_run.values()) == {1}

    # The cursors are in the compacted topic, keyed by source.
    records = asyncio.run(read_to_end(infra.kafka.bootstrap, state_topic))
    latest = {r.key: r.value for r in records if r.key and r.value}
    assert cursor_from_json(latest[source.encode()]).watermark is not None

    # A new poller instance restores the cursors: nothing already published comes again.
    apis.add_youtube_thread("UgzNEWthreadAfterRestart")
    with TestClient(build_app(settings)) as client:
        seen_before = apis.first_pages()
        eventually(lambda: apis.first_pages() >= seen_before + 2, 20)
        assert client.get("/healthz").json()["status"] == "ok"
    after_restart = published_ids(infra, brand)
    assert set(after_restart) == set(first_run) | {"UgzNEWthreadAfterRestart"}
    assert set(after_restart.values()) == {1}

    dead = [
        letter
        for letter in asyncio.run(dead_letters(infra))
        if letter.reason.startswith(f"poll ta-{brand}:")
    ]
    assert len(dead) == 1
    assert "item 2: review.rating 9 is not a whole number from 1 to 5" in dead[0].reason
    assert json.loads(dead[0].original_value) == {"id": 1034500000, "rating": 9}


async def dead_letters(infra: Infra) -> list[contract.DeadLetter]:
    letters = []
    for record in await read_to_end(infra.kafka.bootstrap, DLQ_TOPIC):
        letter = contract.DeadLetter()
        letter.ParseFromString(record.value or b"")
        letters.append(letter)
    return letters
