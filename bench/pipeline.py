"""End-to-end throughput and latency of the whole platform, next to the broker's own ceiling.

Starts its own local stack (Kafka, the MongoDB-protocol server and the five services, on
free ports, in a temporary directory), measures how fast raw aiokafka moves contract
messages through that broker (the ceiling), then sends X webhooks to ingest at a paced
rate, waits until every accepted event is in the CRM timeline and counted by kpi, and
prints the figures. It asserts nothing: it reports. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from replicas import Replicas

from socialcrm import contract
from socialcrm.v1 import enriched_pb2, interaction_pb2, routed_pb2
from socialcrm_devstack.demo_stream import Delivery, DemoStream
from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.stack import SERVICES, LocalStack
from socialcrm_devstack.webhook_signing import signed_headers
from socialcrm_ingest.x_activity import normalize_account_activity

CEILING_TOPIC = "bench.ceiling"
CEILING_PARTITIONS = 6
LAG_SAMPLE_SECONDS = 2.0
POLL_SECONDS = 1.0
KPI_POLL_SECONDS = 0.25
KPI_SAMPLE = "socialcrm_interactions_total{"

# The input topic of each stream service's consumer group (the group id is the service name).
GROUP_TOPICS: dict[str, str] = {
    "sentiment": contract.topic_of(interaction_pb2.Interaction),
    "router": contract.topic_of(enriched_pb2.EnrichedInteraction),
    "crm-sink": contract.topic_of(routed_pb2.RoutedInteraction),
    "kpi": contract.topic_of(routed_pb2.RoutedInteraction),
}


@dataclass(frozen=True)
class ModeDefaults:
    rate: float
    duration: float
    messages: int
    drain: float


MODES = {
    "quick": ModeDefaults(rate=300, duration=15, messages=50_000, drain=20),
    "long": ModeDefaults(rate=300, duration=180, messages=200_000, drain=120),
}

DESCRIPTION = """\
Benchmark of the Social CRM pipeline on this machine; prints figures, asserts nothing.

It starts its own stack in a temporary directory, on free ports (so it can run next to
bin/demo): an Apache Kafka broker, the SecantusDB MongoDB-protocol server and the five
services (ingest, sentiment, router, crm-sink, kpi), and stops it all at the end, also on
Ctrl-C or an error. Then:

 1. ceiling: raw aiokafka on the same broker. N encoded Interaction messages of realistic
    size (normalised DemoStream tweets) are produced to the topic bench.ceiling
    (6 partitions) with acks=all and the services' producer settings, then consumed by a
    fresh consumer group. Reports produced/s and consumed/s.
 2. pipeline: the demo stream's webhooks are POSTed to ingest on every channel in each
    network's format (X, Facebook, Instagram, Messenger, email, chat, community), --batch
    interactions per call where the network batches them (emails: one), paced to --rate
    events/s for --duration seconds by at most --concurrency concurrent HTTP requests
    (open loop while the senders keep up; the achieved rate is reported).
    Then it waits, at most --drain-timeout seconds, until every accepted event is in the
    CRM timeline (MongoDB socialcrm.timeline: its count is polled every second, then the
    documents are read and matched by event_id) and kpi's socialcrm_interactions_total
    has counted them all. Consumer lag of the groups
    sentiment, router, crm-sink and kpi is sampled every 2 s meanwhile.

Figures printed (bench/README.md explains each): events offered/accepted/recorded/lost,
achieved send rate, sustained end-to-end events/s, ingest->CRM latency and HTTP accept
latency percentiles, max and final consumer lag per group, CPU seconds and peak RSS of
each service, the broker, the database and this process, and the ceiling with the ratio
pipeline events/s / ceiling consumed/s.
"""

EPILOG = """\
modes (each value can be overridden by its option):
  quick   300 events/s for 15 s, 50,000 ceiling messages, 20 s drain bound: under a minute
  long    300 events/s for 180 s, 200,000 ceiling messages, 120 s drain bound

examples:
  .cache/venv/bin/python bench/pipeline.py                       # quick
  .cache/venv/bin/python bench/pipeline.py --mode long --rate 500
  .cache/venv/bin/python bench/pipeline.py --rate 1000 --batch 50 --concurrency 16

Needs bin/setup to have installed Kafka, SecantusDB and the virtual environment.
Exit status: 0 when the run completed (whatever the figures), 1 when the stack could not
start or the run failed, 130 when interrupted (Ctrl-C or SIGTERM).
"""


def say(message: str) -> None:
    """Progress, on stderr: stdout carries the report (or the JSON object with --json)."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def latency_row(label: str, values_ms: Sequence[float]) -> str:
    cells = [percentile(values_ms, f) for f in (0.5, 0.95, 0.99)]
    cells.append(max(values_ms) if values_ms else float("nan"))
    return f"  {label:<34}" + "".join(f"{c:>10.1f}" for c in cells) + f"{len(values_ms):>10}"


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class ProcStat:
    cpu_seconds: float
    peak_rss_kib: int


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _tree(pid: int, children: dict[int, list[int]]) -> Iterator[int]:
    yield pid
    for child in children.get(pid, []):
        yield from _tree(child, children)


def proc_stat(pid: int) -> ProcStat | None:
    """CPU seconds (user+system, with its descendants) and peak RSS (VmHWM, summed over
    the process tree) of a running process; None when it is gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    peak = 0
    try:
        for index, member in enumerate(_tree(pid, _children())):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            # After the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            if index == 0:
                cpu += (int(fields[13]) + int(fields[14])) / ticks
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
    except (OSError, IndexError, ValueError):
        if not Path(f"/proc/{pid}").exists():
            return None
    return ProcStat(cpu, peak)


def watched_processes(stack: LocalStack) -> dict[str, int]:
    """Name -> pid of each service, the broker and the database."""
    pids: dict[str, int] = {}
    for spec in SERVICES:
        managed = stack.services.get(spec.name)
        if managed is not None and managed.process is not None:
            pids[spec.name] = managed.process.pid
    if stack.kafka.process is not None and stack.kafka.process.process is not None:
        pids["kafka"] = stack.kafka.process.process.pid
    if stack.mongo.process is not None and stack.mongo.process.process is not None:
        pids["secantusdb"] = stack.mongo.process.process.pid
    return pids


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# --------------------------------------------------------------------------- ceiling


@dataclass
class Ceiling:
    messages: int = 0
    bytes_total: int = 0
    produce_seconds: float = 0.0
    consumed: int = 0
    join_seconds: float = 0.0
    consume_seconds: float = 0.0

    @property
    def produced_per_s(self) -> float:
        return self.messages / self.produce_seconds if self.produce_seconds else 0.0

    @property
    def consumed_per_s(self) -> float:
        return self.consumed / self.consume_seconds if self.consume_seconds else 0.0


def sample_interactions(count: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` encoded Interactions normalised from DemoStream tweets."""
    stream = DemoStream(seed=seed)
    records = []
    for _ in range(count):
        [interaction] = normalize_account_activity(
            stream.tweet_event(), brand="acme", ingested_at=datetime.now(UTC)
        )
        records.append((contract.key_of(interaction), contract.encode(interaction)))
    return records


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench")
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def measure_ceiling(bootstrap: str, messages: int, seed: int) -> Ceiling:
    await create_topic(bootstrap, CEILING_TOPIC, CEILING_PARTITIONS)
    records = sample_interactions(2000, seed)
    result = Ceiling(messages=messages)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-ceiling",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    try:
        # Warm-up outside the timing: metadata, connections, producer id.
        await (await producer.send(CEILING_TOPIC, records[0][1], key=records[0][0]))
        started = time.perf_counter()
        pending: list[asyncio.Future[Any]] = []
        for index in range(messages):
            key, value = records[index % len(records)]
            result.bytes_total += len(value)
            pending.append(await producer.send(CEILING_TOPIC, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        result.produce_seconds = time.perf_counter() - started
    finally:
        await producer.stop()

    expected = messages + 1  # with the warm-up record
    consumer = AIOKafkaConsumer(
        CEILING_TOPIC,
        bootstrap_servers=bootstrap,
        client_id="bench-ceiling",
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    joined = time.perf_counter()
    await consumer.start()
    try:
        first: float | None = None
        deadline = time.monotonic() + 120
        while result.consumed < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                if batch and first is None:
                    first = time.perf_counter()
                    result.join_seconds = first - joined
                result.consumed += len(batch)
        if first is not None:
            result.consume_seconds = time.perf_counter() - first
    finally:
        await consumer.stop()
    return result


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    requests: int = 0
    events_offered: int = 0
    offered_by_channel: dict[str, int] = field(default_factory=dict)
    failed_requests: int = 0
    failed_events: int = 0
    event_ids: list[str] = field(default_factory=list)
    accept_ms: list[float] = field(default_factory=list)
    # Monotonic time at which each accepted event was acknowledged, in acceptance order.
    accepted_at: list[float] = field(default_factory=list)
    first_send: datetime | None = None
    first_send_monotonic: float = 0.0
    last_answer: datetime | None = None
    max_behind_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def send_seconds(self) -> float:
        if self.first_send is None or self.last_answer is None:
            return 0.0
        return (self.last_answer - self.first_send).total_seconds()


async def send_load(
    url: str,
    secrets: dict[str, str],
    rate: float,
    duration: float,
    batch: int,
    concurrency: int,
    seed: int,
) -> Load:
    """POST the demo stream's webhooks (every channel, ``batch`` interactions per call where
    the network batches them), paced to ``rate`` interactions/s, at most ``concurrency`` in
    flight; a call waiting for a free sender is late, not dropped."""
    load = Load()
    stream = DemoStream(seed=seed)
    senders = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()

    async def post(client: httpx.AsyncClient, delivery: Delivery) -> None:
        size = delivery.events
        started = time.perf_counter()
        try:
            signature = signed_headers(delivery.path, delivery.body, secrets)
            response = await client.post(
                delivery.path,
                content=delivery.body,
                headers={"content-type": delivery.content_type, **signature},
            )
            if response.status_code == 200:
                load.accept_ms.append((time.perf_counter() - started) * 1000)
                accepted_ids = response.json()["event_ids"]
                load.event_ids.extend(accepted_ids)
                load.accepted_at.extend([time.monotonic()] * len(accepted_ids))
            else:
                reason = f"HTTP {response.status_code}"
                load.errors[reason] = load.errors.get(reason, 0) + 1
                load.failed_requests += 1
                load.failed_events += size
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            load.errors[reason] = load.errors.get(reason, 0) + 1
            load.failed_requests += 1
            load.failed_events += size
        finally:
            load.last_answer = datetime.now(UTC)
            senders.release()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        start = loop.time()
        due = start
        while due - start < duration:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await senders.acquire()
            load.max_behind_s = max(load.max_behind_s, loop.time() - due)
            delivery = stream.delivery(batch)
            if load.first_send is None:
                load.first_send = datetime.now(UTC)
                load.first_send_monotonic = time.monotonic()
            task = asyncio.create_task(post(client, delivery))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            load.requests += 1
            load.events_offered += delivery.events
            channel_count = load.offered_by_channel.get(delivery.channel, 0)
            load.offered_by_channel[delivery.channel] = channel_count + delivery.events
            due += delivery.events / rate
        if in_flight:
            await asyncio.gather(*in_flight)
    return load


# --------------------------------------------------------------------------- lag


@dataclass
class LagSamples:
    samples: dict[str, list[int]] = field(default_factory=lambda: {g: [] for g in GROUP_TOPICS})
    errors: int = 0

    def max(self, group: str) -> int | None:
        return max(self.samples[group]) if self.samples[group] else None

    def last(self, group: str) -> int | None:
        return self.samples[group][-1] if self.samples[group] else None


class LagProbe:
    """Lag of a consumer group: end offsets of its input topic minus its committed offsets."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-lag")
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, client_id="bench-lag", enable_auto_commit=False
        )
        self.partitions: dict[str, list[Any]] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        for described in await self.admin.describe_topics(sorted(set(GROUP_TOPICS.values()))):
            self.partitions[described["topic"]] = [
                TopicPartition(described["topic"], p["partition"])
                for p in sorted(described["partitions"], key=lambda p: int(p["partition"]))
            ]

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def sample(self, into: LagSamples) -> None:
        try:
            ends = await self.consumer.end_offsets(
                [tp for parts in self.partitions.values() for tp in parts]
            )
            for group, topic in GROUP_TOPICS.items():
                committed = await self.admin.list_consumer_group_offsets(group)
                lag = 0
                for tp in self.partitions[topic]:
                    meta = committed.get(tp)
                    position = meta.offset if meta is not None and meta.offset >= 0 else 0
                    lag += max(0, ends[tp] - position)
                into.samples[group].append(lag)
        except Exception:
            into.errors += 1

    async def run(self, into: LagSamples, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample(into)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_SAMPLE_SECONDS)
        await self.sample(into)


# --------------------------------------------------------------------------- kpi


@dataclass
class KpiSamples:
    """(monotonic time, socialcrm_interactions_total) polled from kpi during the run."""

    baseline: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)

    def last_rise(self) -> tuple[float, float]:
        """(monotonic time, events counted since the start) of the last sample that
        counted more than the one before it."""
        reached = max((count for _, count in self.samples), default=self.baseline)
        at = next((t for t, count in self.samples if count >= reached), 0.0)
        return at, reached - self.baseline

    def visible_latencies_ms(self, accepted_at: Sequence[float]) -> list[float]:
        """Accepted -> counted by kpi, per event, assuming kpi counts in acceptance order.

        The n-th accepted event is taken as visible at the first sample whose count
        reached n; the resolution is the polling interval.
        """
        latencies: list[float] = []
        sample = 0
        for n, accepted in enumerate(sorted(accepted_at), start=1):
            while sample < len(self.samples) and self.samples[sample][1] - self.baseline < n:
                sample += 1
            if sample == len(self.samples):
                break
            latencies.append(max(0.0, self.samples[sample][0] - accepted) * 1000)
        return latencies


async def poll_kpi(url: str, into: KpiSamples, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient() as client:
        into.baseline = await kpi_total(client, url)
        while not stop.is_set():
            into.samples.append((time.monotonic(), await kpi_total(client, url)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), KPI_POLL_SECONDS)


async def stage_seconds(stack: LocalStack, replicas: Replicas) -> dict[str, tuple[float, float]]:
    """(records handled, seconds spent handling them) per stream service, replicas summed,
    from /metrics."""
    stages: dict[str, tuple[float, float]] = {}
    async with httpx.AsyncClient() as client:
        for service in GROUP_TOPICS:
            count = total = 0.0
            for url in [stack.url(service), *replicas.of(service)]:
                try:
                    text = (await client.get(f"{url}/metrics", timeout=5)).text
                except httpx.HTTPError:
                    continue
                for line in text.splitlines():
                    if line.startswith("socialcrm_event_processing_seconds_count{"):
                        count += float(line.rsplit(" ", 1)[1])
                    elif line.startswith("socialcrm_event_processing_seconds_sum{"):
                        total += float(line.rsplit(" ", 1)[1])
            stages[service] = (count, total)
    return stages


# --------------------------------------------------------------------------- drain


@dataclass
class Drain:
    recorded: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    kpi_count: float = 0.0
    seconds: float = 0.0
    timed_out: bool = False


async def kpi_total(client: httpx.AsyncClient, url: str) -> float:
    try:
        text = (await client.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(KPI_SAMPLE)
    )


async def read_timeline(
    timeline: AsyncCollection[dict[str, Any]], wanted: set[str]
) -> dict[str, tuple[datetime, datetime]]:
    """(ingested_at, recorded_at) of the wanted events found in the timeline.

    One projected scan, matched here: the database is private to the run, and the local
    server evaluates ``$in`` over a long id list far more slowly than it scans.
    """
    found: dict[str, tuple[datetime, datetime]] = {}
    cursor = timeline.find({}, {"_id": 0, "event_id": 1, "ingested_at": 1, "recorded_at": 1})
    async for doc in cursor:
        if doc.get("event_id") in wanted:
            found[doc["event_id"]] = (doc["ingested_at"], doc["recorded_at"])
    return found


async def wait_for_crm(
    mongo_uri: str, kpi_url: str, event_ids: Sequence[str], bound_s: float
) -> Drain:
    """Wait until the timeline holds every event and kpi has counted them all, or until
    ``bound_s`` seconds passed; then read the timeline documents of the events.

    The poll is a cheap document count (the database only holds this run's events);
    the documents are read once the count is reached, or at the bound.
    """
    drain = Drain()
    wanted = set(event_ids)
    expected = len(wanted)
    started = time.monotonic()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        timeline = mongo["socialcrm"]["timeline"]
        async with httpx.AsyncClient() as http:
            while True:
                count = await timeline.estimated_document_count()
                drain.kpi_count = await kpi_total(http, kpi_url)
                out_of_time = time.monotonic() - started >= bound_s
                if count >= expected or out_of_time:
                    drain.recorded = await read_timeline(timeline, wanted)
                    complete = len(drain.recorded) >= expected and drain.kpi_count >= expected
                    if complete or out_of_time:
                        drain.timed_out = not complete
                        break
                await asyncio.sleep(POLL_SECONDS)
    finally:
        await mongo.close()
    drain.seconds = time.monotonic() - started
    return drain


# --------------------------------------------------------------------------- run


@dataclass
class Options:
    mode: str
    rate: float
    duration: float
    batch: int
    concurrency: int
    messages: int
    drain_timeout: float
    seed: int
    skip_ceiling: bool
    replicas: int
    json: bool


@dataclass
class Results:
    ceiling: Ceiling | None
    load: Load
    drain: Drain
    lag: LagSamples
    kpi: KpiSamples
    stages: dict[str, tuple[float, float]]
    cpu_before: dict[str, ProcStat]
    cpu_after: dict[str, ProcStat]
    window_seconds: float
    self_cpu: float
    exited: dict[str, int | None]


async def run(options: Options, stack: LocalStack, replicas: Replicas) -> Results:
    ceiling = None
    if not options.skip_ceiling:
        say(f"[bench] ceiling: producing {options.messages:,} Interactions to {CEILING_TOPIC}")
        ceiling = await measure_ceiling(stack.kafka.bootstrap, options.messages, options.seed)
        say(
            f"[bench] ceiling: {ceiling.produced_per_s:,.0f} produced/s, "
            f"{ceiling.consumed_per_s:,.0f} consumed/s"
        )

    pids = watched_processes(stack) | replicas.pids()
    probe = LagProbe(stack.kafka.bootstrap)
    await probe.start()
    lag = LagSamples()
    stop_lag = asyncio.Event()
    lag_task = asyncio.create_task(probe.run(lag, stop_lag))
    kpi = KpiSamples()
    kpi_task = asyncio.create_task(poll_kpi(stack.url("kpi"), kpi, stop_lag))
    try:
        cpu_before = {n: s for n, p in pids.items() if (s := proc_stat(p)) is not None}
        self_before = self_cpu_seconds()
        window_start = time.monotonic()
        say(
            f"[bench] pipeline: sending {options.rate:g} events/s for {options.duration:g} s "
            f"(up to {options.batch} per call, {options.concurrency} senders)"
        )
        load = await send_load(
            stack.url("ingest"),
            stack.webhook_secrets(),
            options.rate,
            options.duration,
            options.batch,
            options.concurrency,
            options.seed + 1,
        )
        say(
            f"[bench] pipeline: {len(load.event_ids):,} events accepted in "
            f"{load.send_seconds:.1f} s; waiting up to {options.drain_timeout:g} s for the CRM"
        )
        drain = await wait_for_crm(
            stack.mongo.uri, stack.url("kpi"), load.event_ids, options.drain_timeout
        )
        window = time.monotonic() - window_start
        self_cpu = self_cpu_seconds() - self_before
        cpu_after = {n: s for n, p in pids.items() if (s := proc_stat(p)) is not None}
    finally:
        stop_lag.set()
        await lag_task
        await kpi_task
        await probe.stop()
    stages = await stage_seconds(stack, replicas)
    exited = {
        name: managed.process.poll() if managed.process is not None else None
        for name, managed in [*stack.services.items(), *replicas.processes.items()]
    }
    return Results(
        ceiling, load, drain, lag, kpi, stages, cpu_before, cpu_after, window, self_cpu, exited
    )


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Summary:
    accepted: int
    recorded: int
    missing: int
    queued: int
    lost: int
    sustained: float
    alert_path: float
    send_rate: float
    crm_ms: list[float]
    kpi_visible_ms: list[float]


def summarize(results: Results) -> Summary:
    load, drain = results.load, results.drain
    accepted = len(set(load.event_ids))
    recorded = len(drain.recorded)
    missing = accepted - recorded
    last_recorded = max((r for _, r in drain.recorded.values()), default=None)
    sustained = 0.0
    if load.first_send is not None and last_recorded is not None:
        span = (last_recorded - load.first_send).total_seconds()
        sustained = recorded / span if span > 0 else 0.0
    # The alert path ends at kpi: events it counted / (its last rise - the first call).
    counted_at, counted = results.kpi.last_rise()
    kpi_span = counted_at - load.first_send_monotonic
    # Records still waiting in front of a stage when the wait ended are late, not lost.
    queued = sum(results.lag.last(g) or 0 for g in ("sentiment", "router", "crm-sink"))
    return Summary(
        accepted=accepted,
        recorded=recorded,
        missing=missing,
        queued=queued,
        lost=max(0, missing - queued) if drain.timed_out else missing,
        sustained=sustained,
        alert_path=counted / kpi_span if kpi_span > 0 and load.first_send else 0.0,
        send_rate=accepted / load.send_seconds if load.send_seconds else 0.0,
        crm_ms=[
            (recorded_at - ingested_at).total_seconds() * 1000
            for ingested_at, recorded_at in drain.recorded.values()
        ],
        kpi_visible_ms=results.kpi.visible_latencies_ms(load.accepted_at),
    )


def rounded(value: float) -> float | None:
    """``value`` to 0.1, or None (JSON null) when there is none (NaN)."""
    return None if math.isnan(value) else round(value, 1)


def figures(options: Options, results: Results) -> dict[str, object]:
    """The named figures of ``--json``."""
    summary = summarize(results)
    ceiling = results.ceiling
    window = results.window_seconds
    return {
        "mode": options.mode,
        "rate": options.rate,
        "duration_s": options.duration,
        "replicas": options.replicas,
        "offered": results.load.events_offered,
        "accepted": summary.accepted,
        "recorded": summary.recorded,
        "queued": min(summary.queued, summary.missing),
        "lost": summary.lost,
        "sustained_events_per_s": round(summary.sustained, 1),
        "alert_path_events_per_s": round(summary.alert_path, 1),
        "kpi_visible_p99_ms": rounded(percentile(summary.kpi_visible_ms, 0.99)),
        "crm_p50_ms": rounded(percentile(summary.crm_ms, 0.5)),
        "crm_p99_ms": rounded(percentile(summary.crm_ms, 0.99)),
        "accept_p99_ms": rounded(percentile(results.load.accept_ms, 0.99)),
        "max_lag": {group: results.lag.max(group) for group in GROUP_TOPICS},
        "cpu_percent": {
            name: round(100 * (after.cpu_seconds - before.cpu_seconds) / window, 1)
            for name, after in results.cpu_after.items()
            if (before := results.cpu_before.get(name)) is not None and window > 0
        },
        "ceiling_consumed_per_s": round(ceiling.consumed_per_s) if ceiling else None,
        "ceiling_produced_per_s": round(ceiling.produced_per_s) if ceiling else None,
    }


def report(options: Options, results: Results, started_wall: float) -> str:
    load, drain = results.load, results.drain
    summary = summarize(results)
    accepted, recorded, missing = summary.accepted, summary.recorded, summary.missing
    queued, lost, sustained = summary.queued, summary.lost, summary.sustained
    latencies, send_rate = summary.crm_ms, summary.send_rate

    lines = [
        "",
        f"== Social CRM pipeline benchmark ({options.mode}) ==",
        f"machine        {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Kafka {kafka_version()}, SecantusDB (MongoDB protocol)",
        f"load           target {options.rate:g} events/s for {options.duration:g} s, "
        f"up to {options.batch} interactions per call, {options.concurrency} concurrent senders",
        f"replicas       {options.replicas} process(es) of each stream service",
        "channel mix    "
        + "  ".join(f"{c}={n:,}" for c, n in sorted(load.offered_by_channel.items())),
        "",
        "Pipeline",
        f"  {'events offered':<34}{load.events_offered:>12,}",
        f"  {'events accepted by ingest':<34}{accepted:>12,}",
        f"  {'failed calls (events in them)':<34}{load.failed_requests:>12,}"
        f"  ({load.failed_events:,}){'  ' + str(load.errors) if load.errors else ''}",
        f"  {'achieved send rate (events/s)':<34}{send_rate:>12,.1f}",
        f"  {'max lateness of a call (s)':<34}{load.max_behind_s:>12.2f}",
        f"  {'events recorded in CRM':<34}{recorded:>12,}",
        f"  {'not in CRM when the wait ended':<34}{missing:>12,}"
        + (f"  (bound of {options.drain_timeout:g} s reached)" if drain.timed_out else ""),
        f"  {'  of which still queued in Kafka':<34}{min(queued, missing):>12,}"
        "  (final lag of sentiment + router + crm-sink)",
        f"  {'lost (not in CRM, not queued)':<34}{lost:>12,}"
        + ("  (upper bound)" if drain.timed_out else ""),
        f"  {'kpi socialcrm_interactions_total':<34}{drain.kpi_count:>12,.0f}",
        f"  {'sustained end-to-end (events/s)':<34}{sustained:>12,.1f}",
        f"  {'alert path, counted by kpi (ev/s)':<34}{summary.alert_path:>12,.1f}",
        f"  {'drain after the last call (s)':<34}{drain.seconds:>12.1f}",
        "",
        f"  {'latency (ms)':<34}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}{'n':>10}",
        latency_row("ingest -> CRM (recorded-ingested)", latencies),
        latency_row(f"accepted -> KPI visible (~{KPI_POLL_SECONDS:g} s)", summary.kpi_visible_ms),
        latency_row(f"HTTP accept (<= {options.batch}/call)", load.accept_ms),
        "",
        f"  {'consumer lag (records)':<34}{'max':>10}{'final':>10}",
    ]
    for group in GROUP_TOPICS:
        top, last = results.lag.max(group), results.lag.last(group)
        lines.append(
            f"  {group + ' <- ' + GROUP_TOPICS[group]:<34}"
            f"{'-' if top is None else f'{top:,}':>10}{'-' if last is None else f'{last:,}':>10}"
        )
    if results.lag.errors:
        lines.append(f"  ({results.lag.errors} lag samples failed)")
    lines.append(f"  lag over time (a sample every {LAG_SAMPLE_SECONDS:g} s, at most 20 shown)")
    for group in GROUP_TOPICS:
        series = results.lag.samples[group]
        step = max(1, math.ceil(len(series) / 20))
        lines.append(f"  {group:<12}" + " ".join(f"{value:,}" for value in series[::step]))
    lines += [
        "",
        "  where the time goes (handling one record, outputs acknowledged)",
        f"  {'stage':<34}{'records':>10}{'busy s':>10}{'ms/record':>10}",
    ]
    for service, (count, seconds) in results.stages.items():
        per_record = 1000 * seconds / count if count else 0.0
        lines.append(f"  {service:<34}{count:>10,.0f}{seconds:>10.1f}{per_record:>10.2f}")
    lines += [
        "",
        f"  {'process (load + drain window)':<34}{'CPU s':>10}{'CPU %':>10}{'peak RSS MiB':>14}",
    ]
    window = results.window_seconds
    for name, after in results.cpu_after.items():
        before = results.cpu_before.get(name, ProcStat(0.0, 0))
        cpu = after.cpu_seconds - before.cpu_seconds
        lines.append(
            f"  {name:<34}{cpu:>10.1f}{100 * cpu / window:>10.0f}{after.peak_rss_kib / 1024:>14.0f}"
        )
    lines.append(
        f"  {'bench (this process)':<34}{results.self_cpu:>10.1f}"
        f"{100 * results.self_cpu / window:>10.0f}{self_peak_rss_kib() / 1024:>14.0f}"
    )
    gone = {n: rc for n, rc in results.exited.items() if rc is not None}
    if gone:
        lines.append(f"  services that exited during the run: {gone}")
    ceiling = results.ceiling
    if ceiling is not None:
        average = ceiling.bytes_total / ceiling.messages if ceiling.messages else 0
        lines += [
            "",
            f"Ceiling: raw aiokafka on the same broker ({CEILING_TOPIC}, "
            f"{CEILING_PARTITIONS} partitions, acks=all)",
            f"  {'messages x average size':<34}{ceiling.messages:>12,} x {average:.0f} B",
            f"  {'produced/s':<34}{ceiling.produced_per_s:>12,.0f}"
            f"  ({ceiling.bytes_total / ceiling.produce_seconds / 2**20:.1f} MiB/s)"
            if ceiling.produce_seconds
            else f"  {'produced/s':<34}{'-':>12}",
            f"  {'consumed/s':<34}{ceiling.consumed_per_s:>12,.0f}"
            f"  ({ceiling.consumed:,} records, first after {ceiling.join_seconds:.1f} s)",
            f"  {'pipeline / ceiling consumed':<34}"
            + (
                f"{sustained / ceiling.consumed_per_s:>12.6f}"
                f"  ({100 * sustained / ceiling.consumed_per_s:.3f} % of the ceiling)"
                if ceiling.consumed_per_s
                else f"{'-':>12}"
            ),
        ]
    lines += ["", f"wall time {time.monotonic() - started_wall:.1f} s", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def start_stack(stack: LocalStack) -> None:
    began = time.monotonic()
    say(f"[bench] starting Kafka {kafka_version()} on {stack.kafka.bootstrap}")
    stack.kafka.start()
    say(f"[bench] Kafka ready after {time.monotonic() - began:.1f} s; starting SecantusDB")
    stack.mongo.start()
    say(f"[bench] SecantusDB ready after {time.monotonic() - began:.1f} s; starting services")
    # Each service creates the missing topics and tolerates another one doing so too,
    # so they can start side by side.
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        futures = {spec.name: pool.submit(stack.start_service, spec.name) for spec in SERVICES}
        for name, future in futures.items():
            future.result()
            say(f"[bench]   {name} ready at {stack.url(name)}")
    say(f"[bench] stack ready after {time.monotonic() - began:.1f} s")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/pipeline.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mode",
        choices=sorted(MODES),
        default="quick",
        help="quick (about a minute in all) or long (a few minutes); sets the defaults "
        "of the options below [quick]",
    )
    parser.add_argument(
        "--rate", type=float, help="target interactions per second sent to ingest [300]"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds of load [quick: 15, long: 180]",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=10,
        help="interactions per webhook call where the network batches them [10]",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="maximum concurrent HTTP calls to ingest; when all are busy the next call "
        "waits (reported as lateness) [8]",
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="messages produced and consumed for the ceiling [quick: 50000, long: 200000]",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        help="seconds to wait after the load for the CRM and kpi to have every event; "
        "events still missing then are reported as not recorded [quick: 20, long: 120]",
    )
    parser.add_argument("--seed", type=int, default=8, help="seed of the demo streams [8]")
    parser.add_argument(
        "--skip-ceiling", action="store_true", help="do not measure the raw Kafka ceiling"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of each stream service (sentiment, router, crm-sink, kpi), each in "
        "its service's consumer group [1]",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object of named figures on stdout (the report goes to stderr)",
    )
    args = parser.parse_args(argv)
    defaults = MODES[args.mode]
    options = Options(
        mode=args.mode,
        rate=args.rate if args.rate is not None else defaults.rate,
        duration=args.duration if args.duration is not None else defaults.duration,
        batch=args.batch,
        concurrency=args.concurrency,
        messages=args.messages if args.messages is not None else defaults.messages,
        drain_timeout=args.drain_timeout if args.drain_timeout is not None else defaults.drain,
        seed=args.seed,
        skip_ceiling=args.skip_ceiling,
        replicas=args.replicas,
        json=args.json,
    )
    for name in ("rate", "duration", "batch", "concurrency", "messages", "replicas"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name} must be positive")
    if options.drain_timeout < 0:
        parser.error("--drain-timeout must not be negative")
    return options


def interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="socialcrm-bench-") as work_dir:
        stack = LocalStack(Path(work_dir), ephemeral_ports=True)
        replicas = Replicas(stack, options.replicas)
        try:
            start_stack(stack)
            if replicas.processes:
                say(f"[bench] starting {len(replicas.processes)} more stream service processes")
                replicas.start()
            results = asyncio.run(run(options, stack, replicas))
            text = report(options, results, started)
            if options.json:
                say(text)
                print(json.dumps(figures(options, results)), flush=True)
            else:
                print(text, flush=True)
            return 0
        except KeyboardInterrupt:
            say("[bench] interrupted")
            return 130
        except Exception:
            traceback.print_exc()
            say("[bench] failed (see above)")
            return 1
        finally:
            say("[bench] stopping the stack")
            replicas.stop()
            stack.stop()
            say(f"[bench] stopped; {time.monotonic() - started:.1f} s in all")


if __name__ == "__main__":
    sys.exit(main())
