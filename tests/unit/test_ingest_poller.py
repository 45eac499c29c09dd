from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from socialcrm_ingest.poller.fetch import FetchLimits, PollFailure, fetch_json
from socialcrm_ingest.poller.schedule import (
    Cursor,
    Entry,
    RequestPacer,
    advance,
    backoff_delay,
    cursor_from_json,
    cursor_to_json,
    retry_after_seconds,
)
from socialcrm_ingest.poller.settings import PollerSettings
from socialcrm_ingest.poller.sources import (
    PageRequest,
    PollSource,
    page_request,
    parse_sources,
    split_page,
)

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_first_poll_walks_every_page_then_sets_the_watermark() -> None:
    first = advance(
        Cursor(), [Entry("c", at(3)), Entry("b", at(2))], "p2", pages_left=5, max_seen=10
    )
    assert first.fresh == ("c", "b")
    assert not first.walk_done
    assert first.cursor.page_token == "p2"
    last = advance(first.cursor, [Entry("a", at(1))], "", pages_left=4, max_seen=10)
    assert last.fresh == ("a",)
    assert last.walk_done
    assert last.cursor == Cursor(watermark=at(3), seen=("c", "b", "a"))


def test_an_overlapping_poll_publishes_only_what_is_new() -> None:
    cursor = Cursor(watermark=at(3), seen=("c", "b", "a"))
    step = advance(
        cursor,
        [Entry("d", at(4)), Entry("c", at(3)), Entry("b", at(2))],
        "p2",
        pages_left=5,
        max_seen=10,
    )
    assert step.fresh == ("d",)
    # "d" was new, so the next page may hold more: the walk goes on.
    assert step.cursor.page_token == "p2"
    end = advance(step.cursor, [Entry("a", at(1))], "p3", pages_left=4, max_seen=10)
    assert end.fresh == ()
    assert end.walk_done  # a page without anything new ends the walk
    assert end.cursor.watermark == at(4)
    assert end.cursor.page_token == ""


def test_a_late_reply_in_an_old_thread_is_new_but_the_old_comment_is_not() -> None:
    cursor = Cursor(watermark=at(3), seen=("old-reply",))
    step = advance(
        cursor, [Entry("old-top", at(1)), Entry("new-reply", at(5))], "", pages_left=5, max_seen=10
    )
    assert step.fresh == ("new-reply",)


def test_items_older_than_the_watermark_are_not_new_even_when_forgotten() -> None:
    cursor = Cursor(watermark=at(3), seen=())
    step = advance(cursor, [Entry("x", at(2))], "", pages_left=5, max_seen=10)
    assert step.fresh == ()


def test_a_walk_out_of_page_budget_resumes_at_the_next_poll() -> None:
    step = advance(Cursor(), [Entry("c", at(3))], "p2", pages_left=0, max_seen=10)
    assert step.walk_done
    assert step.cursor.walking
    assert step.cursor.watermark is None  # the walk is not over: nothing older is skipped yet


def test_unreadable_items_are_new_once() -> None:
    first = advance(Cursor(), [Entry("invalid:1", None)], "", pages_left=5, max_seen=10)
    assert first.fresh == ("invalid:1",)
    again = advance(first.cursor, [Entry("invalid:1", None)], "", pages_left=5, max_seen=10)
    assert again.fresh == ()


def test_the_seen_ids_are_bounded() -> None:
    step = advance(
        Cursor(seen=("a", "b")),
        [Entry("c", at(1)), Entry("d", at(2))],
        "",
        pages_left=1,
        max_seen=3,
    )
    assert step.cursor.seen == ("b", "c", "d")


def test_cursors_survive_their_json_record() -> None:
    cursor = Cursor(watermark=at(3), page_token="tok", walk_newest=at(9), seen=("a", "b"))
    assert cursor_from_json(cursor_to_json(cursor)) == cursor
    assert cursor_from_json(cursor_to_json(Cursor())) == Cursor()
    with pytest.raises(ValueError, match="not a poll cursor"):
        cursor_from_json(b"[1, 2]")


def test_backoff_doubles_up_to_the_maximum_with_jitter() -> None:
    delays = [backoff_delay(n, initial=1, maximum=30, jitter=0.0) for n in range(1, 8)]
    assert delays == [0.5, 1, 2, 4, 8, 15, 15]
    assert backoff_delay(3, initial=1, maximum=30, jitter=0.999) == pytest.approx(4, rel=1e-3)
    assert backoff_delay(20, initial=1, maximum=30, jitter=0.5) == 22.5


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now, maximum=3600) == 7
    assert retry_after_seconds("Mon, 16 Nov 2026 09:00:30 GMT", now, maximum=3600) == 30
    assert retry_after_seconds("Mon, 16 Nov 2026 08:00:00 GMT", now, maximum=3600) == 0
    assert retry_after_seconds(None, now, maximum=3600) is None
    assert retry_after_seconds("soon", now, maximum=3600) is None


def test_retry_after_is_capped_however_far_it_points() -> None:
    now = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    assert retry_after_seconds("100000000000", now, maximum=3600) == 3600  # 3,170 years
    assert retry_after_seconds("9" * 5000, now, maximum=3600) == 3600
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 GMT", now, maximum=60) == 60


def test_the_pacer_spaces_requests_and_holds_off_after_a_429() -> None:
    pacer = RequestPacer(per_minute=120)
    assert [pacer.reserve(100.0) for _ in range(3)] == [0.0, 0.5, 1.0]
    assert pacer.reserve(200.0) == 0.0
    pacer.hold_off(210.0)
    assert pacer.reserve(201.0) == 9.0


def test_sources_are_read_from_json_or_yaml_and_checked() -> None:
    [source] = parse_sources('[{"name": "v", "kind": "youtube", "target": "dQw4w9WgXcQ"}]')
    assert source.kind == "youtube"
    [yaml_source] = parse_sources("- name: t\n  kind: tripadvisor\n  target: '187147'\n")
    assert yaml_source.target == "187147"
    with pytest.raises(ValueError, match="kind"):
        parse_sources('[{"name": "v", "kind": "myspace", "target": "x"}]')
    with pytest.raises(ValueError, match="unique"):
        parse_sources(
            '[{"name": "v", "kind": "youtube", "target": "a"},'
            ' {"name": "v", "kind": "youtube", "target": "b"}]'
        )


def test_requests_follow_each_api() -> None:
    youtube = PollSource(name="v", kind="youtube", target="channel:UC1")
    request = page_request(youtube, "https://yt.example/v3/", "tok", "key1")
    assert request.url == "https://yt.example/v3/commentThreads"
    assert request.params["allThreadsRelatedToChannelId"] == "UC1"
    assert request.params["pageToken"] == "tok"
    assert request.params["key"] == "key1"
    google = PollSource(name="g", kind="google_reviews", target="accounts/1/locations/2")
    request = page_request(google, "https://gbp.example/v4", "", "token")
    assert request.url == "https://gbp.example/v4/accounts/1/locations/2/reviews"
    assert request.headers["Authorization"] == "Bearer token"
    assert "pageToken" not in request.params
    trip = PollSource(name="t", kind="tripadvisor", target="187147")
    request = page_request(trip, "https://ta.example/api/v1", "5", "k")
    assert request.url == "https://ta.example/api/v1/location/187147/reviews"
    assert request.params["offset"] == "5"


def test_pages_are_split_into_items_and_the_next_token() -> None:
    google = PollSource(name="g", kind="google_reviews", target="accounts/1/locations/2")
    assert split_page(google, {"reviews": [1], "nextPageToken": "n"}, "") == ([1], "n")
    assert split_page(google, {"averageRating": 4}, "") == ([], "")
    trip = PollSource(name="t", kind="tripadvisor", target="1")
    assert split_page(trip, {"data": [1, 2, 3, 4, 5]}, "5") == ([1, 2, 3, 4, 5], "10")
    assert split_page(trip, {"data": [1]}, "5") == ([1], "")


def test_poll_sources_may_be_a_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("sources") / "sources.yaml"
    path.write_text("- name: v\n  kind: youtube\n  target: abc\n")
    settings = PollerSettings(poll_sources=str(path))
    [source] = settings.sources()
    assert settings.base_url(source) == "https://www.googleapis.com/youtube/v3"


LIMITS = FetchLimits(deadline_seconds=5, max_response_bytes=1000, max_retry_after_seconds=60)
REQUEST = PageRequest("http://api.test/page", {"key": "k"}, {})


class Upstream:
    """An API answering from a handler, with its body as a counted stream of chunks."""

    def __init__(self) -> None:
        self.chunks_sent = 0

    async def body(self, chunk: bytes, count: int, pause: float = 0.0) -> AsyncIterator[bytes]:
        for _ in range(count):
            if pause:
                await asyncio.sleep(pause)
            self.chunks_sent += 1
            yield chunk

    async def fetch(self, response: httpx.Response, limits: FetchLimits = LIMITS) -> object:
        transport = httpx.MockTransport(lambda _: response)
        async with httpx.AsyncClient(transport=transport) as client:
            return await fetch_json(client, REQUEST, limits)


async def failure_of(upstream: Upstream, response: httpx.Response, **limits: float) -> PollFailure:
    with pytest.raises(PollFailure) as caught:
        await upstream.fetch(response, FetchLimits(**{**vars(LIMITS), **limits}))
    return caught.value


async def test_a_page_is_read_and_decoded_under_the_cap() -> None:
    upstream = Upstream()
    response = httpx.Response(200, content=upstream.body(b'{"items": []}', 1))
    assert await upstream.fetch(response) == {"items": []}


async def test_a_body_over_the_cap_is_cut_off_while_streaming() -> None:
    upstream = Upstream()
    response = httpx.Response(200, content=upstream.body(b" " * 100, 1_000_000))
    failure = await failure_of(upstream, response)
    assert failure.outcome == "response_too_large"
    assert upstream.chunks_sent <= 11


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    upstream = Upstream()
    for declared in ("1001", "9" * 5000):
        response = httpx.Response(
            200, headers={"content-length": declared}, content=upstream.body(b" ", 10)
        )
        assert (await failure_of(upstream, response)).outcome == "response_too_large"
    assert upstream.chunks_sent == 0


async def test_a_dripping_body_ends_at_the_request_deadline() -> None:
    upstream = Upstream()
    response = httpx.Response(200, content=upstream.body(b" ", 10_000, pause=0.05))
    failure = await failure_of(upstream, response, deadline_seconds=0.3)
    assert failure.outcome == "timeout"
    assert upstream.chunks_sent < 10_000


async def test_an_error_answer_is_quoted_in_part() -> None:
    upstream = Upstream()
    response = httpx.Response(403, content=upstream.body(b"x" * 100, 1_000_000))
    failure = await failure_of(upstream, response)
    assert failure.outcome == "client_error"
    assert str(failure) == "HTTP 403: " + "x" * 300
    assert upstream.chunks_sent <= 11


async def test_a_rate_limit_asks_for_at_most_the_ceiling() -> None:
    response = httpx.Response(429, headers={"retry-after": "100000000000"})
    failure = await failure_of(Upstream(), response)
    assert (failure.outcome, failure.retry_after) == ("rate_limited", 60)


async def test_deeply_nested_json_is_an_invalid_payload() -> None:
    upstream = Upstream()
    response = httpx.Response(200, content=upstream.body(b"[" * 100_000 + b"]" * 100_000, 1))
    failure = await failure_of(upstream, response, max_response_bytes=300_000)
    assert failure.outcome == "invalid_payload"
