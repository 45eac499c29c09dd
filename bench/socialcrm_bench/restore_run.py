"""One run of bench/restore.py: fill the router's SLA state with interactions waiting for a
response, then restart the router with 1 and with N replicas and read, per replica, the
state store's restore time and keys (its /metrics) and its resident memory (/proc)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_bench.ceiling import bench_producer
from socialcrm_bench.lag import LagProbe
from socialcrm_bench.metrics import sample_values, scrape
from socialcrm_bench.processes import rss_kib
from socialcrm_bench.replicas import Replicas
from socialcrm_bench.report import say
from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_devstack.stack import LocalStack
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_router.expiry import KINDS

ROUTER = "router"
# The router's partition-owned state store, as its /metrics labels it.
ROUTER_STORE = "router-sla"
# Every replica's read view of the whole changelog, which answers the API: memory that
# does not split over replicas.
ROUTER_VIEW = "router-sla-view"
RESTORE_METRIC = "socialcrm_state_restore_seconds"
KEYS_METRIC = "socialcrm_state_keys"
# The owner's live keys per kind of state (open, answered, markers...), each with its expiry.
KIND_KEYS_METRIC = "socialcrm_router_state_keys"
OWNED_METRIC = "socialcrm_state_owned_partitions"
ENRICHED_TOPIC = contract.topic_of(enriched_pb2.EnrichedInteraction)
TEMPLATES = 200
SEND_CHUNK = 5000
POLL_SECONDS = 0.5
# Replicas' figures must hold still this long to count as settled: a rebalance after the
# last replica joined changes keys and restore times again within a few seconds.
SETTLED_SECONDS = 5.0


@dataclass(frozen=True)
class ReplicaFigures:
    name: str
    restore_seconds: float | None  # None: the metric is not exposed
    keys: float | None
    view_keys: float | None
    rss_mib: float | None
    keys_by_kind: Mapping[str, float] = field(default_factory=dict)  # empty: not exposed
    partitions: float | None = None  # partitions it owns (restored by its last restore)


@dataclass
class RestoreResults:
    interactions: int
    publish_seconds: float = 0.0
    handled_seconds: float | None = None  # None: the router had not handled them all
    empty_rss_mib: float | None = None
    ready_seconds: dict[int, float] = field(default_factory=dict)
    replicas: dict[int, list[ReplicaFigures]] = field(default_factory=dict)
    settled: dict[int, bool] = field(default_factory=dict)


def waiting_interactions(count: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``count`` enriched interactions, each in its own conversation, that
    need a response hours from now: English neutral questions from small authors match
    the router's question-en rule (normal priority, 4 h SLA), so no escalation fires."""
    stream = DemoStream(seed=seed)
    now = datetime.now(UTC)
    templates = [
        normalize_account_activity(stream.tweet_event(), brand="acme", ingested_at=now)[0]
        for _ in range(TEMPLATES)
    ]
    enrichment = enriched_pb2.Enrichment(
        language="en",
        language_confidence=1.0,
        polarity=common_pb2.POLARITY_NEUTRAL,
        intent=common_pb2.INTENT_QUESTION,
        reach=0.05,
        model_version="bench-restore",
    )
    for index in range(count):
        interaction = interaction_pb2.Interaction()
        interaction.CopyFrom(templates[index % TEMPLATES])
        external_id = f"bench-restore-{seed}-{index}"
        interaction.conversation_id = external_id
        interaction.header.external_id = external_id
        interaction.header.event_id = contract.event_id_for(interaction.header.channel, external_id)
        interaction.header.occurred_at.CopyFrom(contract.timestamp(now))
        header = common_pb2.EventHeader()
        header.CopyFrom(interaction.header)
        header.producer = "sentiment"
        enriched = enriched_pb2.EnrichedInteraction(
            header=header, interaction=interaction, enrichment=enrichment
        )
        yield contract.key_of(enriched), contract.encode(enriched)


async def publish(bootstrap: str, count: int, seed: int) -> float:
    """Seconds to publish the waiting interactions to social.enriched.v1."""
    producer = bench_producer(bootstrap, "bench-restore")
    await producer.start()
    started = time.monotonic()
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, value in waiting_interactions(count, seed):
            pending.append(await producer.send(ENRICHED_TOPIC, value, key=key))
            if len(pending) >= SEND_CHUNK:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def router_caught_up(bootstrap: str, bound_s: float) -> bool:
    """Whether the router's group committed all of social.enriched.v1 within ``bound_s``."""
    probe = LagProbe(bootstrap, {ROUTER: ENRICHED_TOPIC})
    await probe.start()
    try:
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            with_lag = (await probe.lags())[ROUTER]
            if with_lag == 0:
                return True
            await asyncio.sleep(POLL_SECONDS)
        return False
    finally:
        await probe.stop()


async def read_replica(client: httpx.AsyncClient, name: str, url: str, pid: int) -> ReplicaFigures:
    """A replica's figures; a store may label its samples per partition too: its restore
    time is then the longest, its keys the sum."""
    text = await scrape(client, url)
    restores = sample_values(text, RESTORE_METRIC, store=ROUTER_STORE)
    keys = sample_values(text, KEYS_METRIC, store=ROUTER_STORE)
    view_keys = sample_values(text, KEYS_METRIC, store=ROUTER_VIEW)
    rss = rss_kib(pid)
    by_kind = {kind: sample_values(text, KIND_KEYS_METRIC, kind=kind) for kind in KINDS}
    owned = sample_values(text, OWNED_METRIC, store=ROUTER_STORE)
    return ReplicaFigures(
        name,
        max(restores) if restores else None,
        sum(keys) if keys else None,
        sum(view_keys) if view_keys else None,
        None if rss is None else rss / 1024,
        {kind: sum(values) for kind, values in by_kind.items() if values},
        sum(owned) if owned else None,
    )


async def settled_figures(
    processes: Mapping[str, tuple[str, int]], expected_keys: float, bound_s: float
) -> tuple[list[ReplicaFigures], bool]:
    """Each replica's figures once the group has settled: every replica exposes its restore
    time, together they hold at least ``expected_keys``, and nothing changed for
    SETTLED_SECONDS. Without the metrics, the figures after SETTLED_SECONDS. The second
    value says whether the group settled within ``bound_s``."""
    deadline = time.monotonic() + bound_s
    still_since = time.monotonic()
    previous: list[tuple[float | None, float | None]] = []
    async with httpx.AsyncClient() as client:
        while True:
            figures = [
                await read_replica(client, name, url, pid) for name, (url, pid) in processes.items()
            ]
            now = time.monotonic()
            state = [(f.restore_seconds, f.keys) for f in figures]
            if state != previous:
                previous, still_since = state, now
            exposed = all(f.restore_seconds is not None for f in figures)
            held = sum(f.keys or 0.0 for f in figures)
            if now - still_since >= SETTLED_SECONDS and (not exposed or held >= expected_keys):
                return figures, True
            if now >= deadline:
                return figures, False
            await asyncio.sleep(POLL_SECONDS)


def start_router(stack: LocalStack, replicas: Replicas | None) -> float:
    """Start the router (and its replicas, side by side); seconds until all are ready."""
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(stack.start_service, ROUTER)]
        if replicas is not None:
            futures.append(pool.submit(replicas.start))
        for future in futures:
            future.result()
    return time.monotonic() - started


def router_processes(stack: LocalStack, replicas: Replicas | None) -> dict[str, tuple[str, int]]:
    """Name -> (URL, pid) of the router's processes."""
    managed = stack.services[ROUTER].process
    assert managed is not None
    processes = {ROUTER: (stack.url(ROUTER), managed.pid)}
    if replicas is not None:
        for name, pid in replicas.pids().items():
            processes[name] = (replicas.urls[name], pid)
    return processes


async def measure_replicas(
    stack: LocalStack, count: int, results: RestoreResults, bound_s: float
) -> None:
    """Restart the router as ``count`` replicas; keep their settled figures."""
    await asyncio.to_thread(stack.stop_service, ROUTER)
    replicas = Replicas(stack, count, services=(ROUTER,)) if count > 1 else None
    try:
        say(f"[restore] starting the router: {count} replica(s)")
        results.ready_seconds[count] = await asyncio.to_thread(start_router, stack, replicas)
        single = results.replicas.get(1, [])
        if single:
            expected = sum(f.keys or 0.0 for f in single)
        else:
            expected = results.interactions if results.handled_seconds is not None else 0.0
        figures, settled = await settled_figures(
            router_processes(stack, replicas), expected, bound_s
        )
        results.replicas[count], results.settled[count] = figures, settled
    finally:
        if replicas is not None:
            await asyncio.to_thread(replicas.stop)


async def run(
    stack: LocalStack, interactions: int, replicas: int, seed: int, bound_s: float
) -> RestoreResults:
    results = RestoreResults(interactions)
    bootstrap = stack.kafka.bootstrap
    await asyncio.sleep(SETTLED_SECONDS)
    managed = stack.services[ROUTER].process
    assert managed is not None
    empty = rss_kib(managed.pid)
    results.empty_rss_mib = None if empty is None else empty / 1024
    say(f"[restore] publishing {interactions:,} interactions waiting for a response")
    results.publish_seconds = await publish(bootstrap, interactions, seed)
    began = time.monotonic()
    if await router_caught_up(bootstrap, bound_s):
        results.handled_seconds = time.monotonic() - began
        say(f"[restore] the router handled them in {results.handled_seconds:.1f} s")
    else:
        say(f"[restore] the router had not handled them all after {bound_s:g} s; going on")
    for count in (1, replicas):
        await measure_replicas(stack, count, results, bound_s)
    return results
