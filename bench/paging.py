"""The page path: steady traffic, then a viral negative burst, until on-call is paged.

Starts its own stack (Kafka, the MongoDB-protocol server, the five services with their
production settings) and, over it, Prometheus and Alertmanager paging a local receiver
(``socialcrm_devstack.observability``), all on free ports in a temporary folder. Then:

 1. history: kpi's spike detector alerts only on a series with 15 one-minute buckets of
    history, learned from event time, and its baseline learns a steady rate in about 50
    (see --history-minutes). The demo stream (every channel, each in its network's
    format) is replayed at --rate events per second of event time over the last
    --history-minutes, sent --catch-up-rate per second of wall time until it catches up
    with the clock, so that the detector is armed with a baseline of the steady rate.
 2. steady: the same stream, live at --rate, for --steady-minutes: every page received
    then is a false alarm.
 3. burst: on top of the steady stream, the demo's viral negative burst on one subject
    (many authors, one influential) at --burst-rate posts per second for --burst-seconds,
    in X calls of up to 50 posts; the steady stream goes on until the page arrives or
    --page-timeout seconds pass.

Prints the time from the burst's first post to kpi's spike gauge, to Prometheus' firing
alert and to the page at the receiver, and the pages of each phase. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
from paging_figures import PAGE_ALERT, Options, Timeline, figures, page_after_burst, report
from pipeline import interrupt_on_sigterm, kpi_total, say, start_stack

from socialcrm_devstack.demo_stream import Delivery, DemoStream
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack
from socialcrm_devstack.webhook_signing import signed_headers

# kpi's spike bucket (SPIKE_BUCKET_SECONDS, 60 s by default): history starts on a bucket's
# first second, so that its first bucket, the baseline's first value, is a full one.
BUCKET_SECONDS = 60
CATCH_UP_BATCH = 10
# Posts per X call of the burst, as the demo sends it.
BURST_BATCH = 50
PROBE_SECONDS = 0.5
# Longest wait for kpi to count a replayed bucket before the next one is sent.
BARRIER_SECONDS = 60
# The demo stream's brand is ingest's default one.
SPIKE_SAMPLE = 'socialcrm_viral_spike_active{brand="acme",topic="negative"} 1.0'


class Sender:
    """POSTs signed deliveries to ingest and keeps count."""

    def __init__(self, client: httpx.AsyncClient, secrets: dict[str, str], timeline: Timeline):
        self.client = client
        self.secrets = secrets
        self.timeline = timeline

    async def post(self, delivery: Delivery) -> int:
        """Interactions ingest accepted (0 when it refused the call)."""
        headers = {
            "content-type": delivery.content_type,
            **signed_headers(delivery.path, delivery.body, self.secrets),
        }
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
                if SPIKE_SAMPLE in metrics:
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


async def run(options: Options, stack: LocalStack, observability: Observability) -> Timeline:
    timeline = Timeline()
    stream = DemoStream(seed=options.seed)
    stop, caught_up = asyncio.Event(), asyncio.Event()
    receiver = observability.receiver
    async with (
        httpx.AsyncClient(base_url=stack.url("ingest"), timeout=30) as ingest,
        httpx.AsyncClient(timeout=5) as probes,
    ):
        sender = Sender(ingest, stack.webhook_secrets(), timeline)
        tasks = [
            asyncio.create_task(steady(sender, stream, options, stack.url("kpi"), caught_up, stop)),
            asyncio.create_task(watch(probes, stack.url("kpi"), observability, timeline, stop)),
        ]
        try:
            say(f"[paging] replaying {options.history_minutes:g} minutes of history ...")
            await caught_up.wait()
            assert timeline.live_started is not None
            say(
                f"[paging] caught up after {timeline.live_started - timeline.catch_up_started:.0f}"
                f" s; steady traffic at {options.rate:g}/s for {options.steady_minutes:g} min"
            )
            await asyncio.sleep(options.steady_minutes * 60)
            say(f"[paging] burst: {options.burst_rate:g} posts/s for {options.burst_seconds:g} s")
            burst_task = asyncio.create_task(burst(sender, stream, options))
            deadline = time.time() + options.page_timeout
            while time.time() < deadline:
                if page_after_burst(receiver.pages, timeline):
                    break
                await asyncio.sleep(PROBE_SECONDS)
            await burst_task
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return timeline


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/paging.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=5.0, help="steady events/s [5]")
    parser.add_argument(
        "--steady-minutes", type=float, default=10.0, help="minutes of live steady traffic [10]"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 minutes of steady traffic (overrides the above)"
    )
    parser.add_argument(
        "--burst-rate", type=float, default=300.0, help="burst posts/s offered [300]"
    )
    parser.add_argument("--burst-seconds", type=float, default=20.0, help="burst length [20]")
    parser.add_argument(
        "--history-minutes",
        type=float,
        default=60.0,
        help="event-time history replayed first [60]: kpi alerts after 15 one-minute "
        "buckets, but a new series' baseline learns each bucket capped at its alert "
        "threshold, from 20 on: it takes ~50 buckets to reach 300 a bucket (5/s), and "
        "steady traffic alerts until then (measured: 68 after 16 buckets of 300)",
    )
    parser.add_argument(
        "--catch-up-rate",
        type=float,
        default=100.0,
        help="events/s (wall time) of the history replay; kpi counts each replayed "
        "minute before the next is sent [100]",
    )
    parser.add_argument(
        "--page-timeout",
        type=float,
        default=180.0,
        help="seconds after the burst's first post to wait for the page [180]",
    )
    parser.add_argument("--seed", type=int, default=18, help="seed of the demo stream [18]")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    options = Options(
        rate=args.rate,
        steady_minutes=2.0 if args.quick else args.steady_minutes,
        burst_rate=args.burst_rate,
        burst_seconds=args.burst_seconds,
        history_minutes=args.history_minutes,
        catch_up_rate=args.catch_up_rate,
        page_timeout=args.page_timeout,
        seed=args.seed,
        json=args.json,
    )
    for name in ("rate", "burst_rate", "burst_seconds", "catch_up_rate", "page_timeout"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if options.catch_up_rate <= options.rate:
        parser.error("--catch-up-rate must be above --rate, or the history never catches up")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="socialcrm-paging-") as work_dir:
        stack = LocalStack(Path(work_dir), ephemeral_ports=True)
        observability = Observability(stack, Path(work_dir))
        try:
            start_stack(stack)
            observability.start()
            say(
                f"[paging] Prometheus {observability.prometheus_url}, "
                f"Alertmanager {observability.alertmanager_url}"
            )
            timeline = asyncio.run(run(options, stack, observability))
            named = figures(options, timeline, observability.receiver.pages)
            print(report(named), flush=True)
            if options.json:
                print(json.dumps(named), flush=True)
            return 0
        except KeyboardInterrupt:
            say("[paging] interrupted")
            return 130
        except Exception:
            traceback.print_exc()
            say("[paging] failed (see above)")
            return 1
        finally:
            say("[paging] stopping Prometheus, Alertmanager and the stack")
            observability.stop()
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
