"""The traffic of bench/paging.py: the steady demo stream (its history replayed first), the
viral negative burst, and the watch on kpi's spike gauge and Prometheus' alert."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

import httpx

from socialcrm_bench.load import request_headers
from socialcrm_bench.metrics import kpi_total, sample_values
from socialcrm_bench.paging_figures import PAGE_ALERT, Options, Timeline
from socialcrm_devstack.demo_stream import Delivery, DemoStream
from socialcrm_devstack.observability import Observability

# kpi's spike bucket (SPIKE_BUCKET_SECONDS, 60 s by default): history starts on a bucket's
# first second, so that its first bucket, the baseline's first value, is a full one.
BUCKET_SECONDS = 60
CATCH_UP_BATCH = 10
# Posts per X call of the burst, as the demo sends it.
BURST_BATCH = 50
PROBE_SECONDS = 0.5
# Longest wait for kpi to count a replayed bucket before the next one is sent.
BARRIER_SECONDS = 60
# kpi's spike gauge, for the demo stream's brand (ingest's default one).
SPIKE_GAUGE = "socialcrm_viral_spike_active"
SPIKE_LABELS = {"brand": "acme", "topic": "negative"}


class Sender:
    """POSTs signed deliveries to ingest and keeps count."""

    def __init__(self, client: httpx.AsyncClient, secrets: dict[str, str], timeline: Timeline):
        self.client = client
        self.secrets = secrets
        self.timeline = timeline

    async def post(self, delivery: Delivery) -> int:
        """Interactions ingest accepted (0 when it refused the call)."""
        headers = request_headers(delivery, self.secrets)
        try:
            response = await self.client.post(delivery.path, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            self.failed(type(exc).__name__)
            return 0
        if response.status_code != 200:
            self.failed(f"HTTP {response.status_code}")
            return 0
        return len(response.json()["event_ids"])

    def failed(self, reason: str) -> None:
        self.timeline.failed_calls[reason] = self.timeline.failed_calls.get(reason, 0) + 1


async def steady(
    sender: Sender,
    stream: DemoStream,
    options: Options,
    kpi_url: str,
    caught_up: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """The demo stream at ``options.rate`` per second of event time, from the start of the
    history (a bucket boundary) on; faster than the clock until it catches up with it.

    While replaying, each bucket's interactions are counted by kpi before the next bucket's
    are sent: kpi drops an event older than its series' open bucket, and the stages'
    partitions do not keep event time in order across them. Without this barrier, a first
    run lost part of every replayed bucket: the baseline learned too little, and live
    steady traffic then fired spikes on every series."""
    timeline = sender.timeline
    timeline.catch_up_started = time.time()
    event_time: float = (
        math.floor((time.time() - options.history_minutes * 60) / BUCKET_SECONDS) * BUCKET_SECONDS
    )
    sent = accepted = 0
    while not stop.is_set():
        now = time.time()
        if event_time > now:
            if timeline.live_started is None:
                timeline.live_started = now
                caught_up.set()
            await asyncio.sleep(event_time - now)
        else:
            due = timeline.catch_up_started + sent / options.catch_up_rate
            await asyncio.sleep(max(0.0, due - now))
        # One interaction a call live, as the demo sends; up to CATCH_UP_BATCH while
        # replaying: one a call, a loaded machine answers ~10 calls/s, and at 5/s of event
        # time 16 minutes of history would take 16 minutes to replay.
        batch = 1 if timeline.live_started is not None else CATCH_UP_BATCH
        delivery = stream.delivery(batch, now=datetime.fromtimestamp(event_time, UTC))
        accepted += await sender.post(delivery)
        sent += delivery.events
        if timeline.live_started is not None:
            timeline.steady_events += delivery.events
        bucket = event_time // BUCKET_SECONDS
        event_time += delivery.events / options.rate
        if timeline.live_started is None and event_time // BUCKET_SECONDS > bucket:
            await counted_by_kpi(sender.client, kpi_url, accepted)


async def counted_by_kpi(client: httpx.AsyncClient, kpi_url: str, events: int) -> None:
    deadline = time.monotonic() + BARRIER_SECONDS
    while time.monotonic() < deadline:
        if await kpi_total(client, kpi_url) >= events:
            return
        await asyncio.sleep(PROBE_SECONDS)


async def burst(sender: Sender, stream: DemoStream, options: Options) -> None:
    timeline = sender.timeline
    started = time.time()
    timeline.burst_started = started
    total = math.ceil(options.burst_rate * options.burst_seconds)
    while timeline.burst_posts_offered < total:
        due = started + timeline.burst_posts_offered / options.burst_rate
        await asyncio.sleep(max(0.0, due - time.time()))
        behind = math.floor((time.time() - started) * options.burst_rate) + 1
        posts = min(BURST_BATCH, max(1, behind - timeline.burst_posts_offered))
        posts = min(posts, total - timeline.burst_posts_offered)
        delivery = stream.burst_delivery(posts)
        timeline.burst_posts_offered += delivery.events
        timeline.burst_posts_accepted += await sender.post(delivery)


async def watch(
    client: httpx.AsyncClient,
    kpi_url: str,
    observability: Observability,
    timeline: Timeline,
    stop: asyncio.Event,
) -> None:
    """When kpi's spike gauge, then Prometheus' alert, first show the burst."""
    while not stop.is_set():
        try:
            if timeline.burst_started is not None and timeline.spike_seen is None:
                metrics = (await client.get(f"{kpi_url}/metrics")).text
                if 1.0 in sample_values(metrics, SPIKE_GAUGE, **SPIKE_LABELS):
                    timeline.spike_seen = time.time()
            if timeline.burst_started is not None and timeline.alert_firing is None:
                url = f"{observability.prometheus_url}/api/v1/alerts"
                alerts = (await client.get(url)).json()["data"]["alerts"]
                if any(
                    a["labels"].get("alertname") == PAGE_ALERT and a["state"] == "firing"
                    for a in alerts
                ):
                    timeline.alert_firing = time.time()
        except httpx.HTTPError:
            pass
        await asyncio.sleep(PROBE_SECONDS)
