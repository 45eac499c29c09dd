"""Load on ingest: the demo stream's signed webhook calls on every channel, each in its
network's format, paced (open loop), as fast as ingest answers (closed loop), or until a
number of interactions is accepted."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from socialcrm_devstack.demo_stream import Delivery, DemoStream
from socialcrm_devstack.webhook_signing import signed_headers

FILL_CONCURRENCY = 8
FILL_BATCH = 10


def request_headers(delivery: Delivery, secrets: dict[str, str]) -> dict[str, str]:
    """The signature headers each network (or our own webhook spec) puts on the call,
    signed when it is sent (our own webhooks sign the time of the call)."""
    return {
        "content-type": delivery.content_type,
        **signed_headers(delivery.path, delivery.body, secrets),
    }


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

    def failed(self, reason: str, events: int) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1
        self.failed_requests += 1
        self.failed_events += events


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
    # The calls' bodies are made before the clock starts: on this machine the services
    # share the cores with this process, and the networks' webhooks come from elsewhere.
    deliveries = prepared(DemoStream(seed=seed), batch, math.ceil(rate * duration))
    senders = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()

    async def post(client: httpx.AsyncClient, delivery: Delivery) -> None:
        started = time.perf_counter()
        try:
            response = await client.post(
                delivery.path, content=delivery.body, headers=request_headers(delivery, secrets)
            )
            if response.status_code == 200:
                load.accept_ms.append((time.perf_counter() - started) * 1000)
                accepted_ids = response.json()["event_ids"]
                load.event_ids.extend(accepted_ids)
                load.accepted_at.extend([time.monotonic()] * len(accepted_ids))
            else:
                load.failed(f"HTTP {response.status_code}", delivery.events)
        except httpx.HTTPError as exc:
            load.failed(type(exc).__name__, delivery.events)
        finally:
            load.last_answer = datetime.now(UTC)
            senders.release()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        start = loop.time()
        due = start
        for delivery in deliveries:
            if due - start >= duration:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await senders.acquire()
            load.max_behind_s = max(load.max_behind_s, loop.time() - due)
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


def prepared(stream: DemoStream, batch: int, events: int) -> list[Delivery]:
    """The stream's next calls, ``batch`` interactions per call where the network batches
    them, until they hold ``events`` interactions."""
    deliveries: list[Delivery] = []
    held = 0
    while held < events:
        deliveries.append(stream.delivery(batch))
        held += deliveries[-1].events
    return deliveries


@dataclass
class Calls:
    accepted: int = 0
    interactions: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


async def drive(
    url: str, secrets: dict[str, str], duration: float, batch: int, concurrency: int, seed: int
) -> Calls:
    """``concurrency`` senders, each posting again as soon as it has its answer."""
    calls = Calls()
    stream = DemoStream(seed=seed)
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        started = loop.time()

        async def sender() -> None:
            while loop.time() - started < duration:
                delivery = stream.delivery(batch)
                headers = request_headers(delivery, secrets)
                began = time.perf_counter()
                try:
                    response = await client.post(
                        delivery.path, content=delivery.body, headers=headers
                    )
                    outcome = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                    response = None
                elapsed_ms = (time.perf_counter() - began) * 1000
                if response is not None and response.status_code == 200:
                    calls.accepted += 1
                    calls.interactions += len(response.json()["event_ids"])
                    calls.latency_ms.setdefault(delivery.channel, []).append(elapsed_ms)
                else:
                    calls.refused[outcome] = calls.refused.get(outcome, 0) + 1

        await asyncio.gather(*(sender() for _ in range(concurrency)))
        calls.seconds = loop.time() - started
    return calls


async def fill_interactions(url: str, secrets: dict[str, str], count: int, seed: int) -> int:
    """POST the demo stream's signed webhooks to ingest until ``count`` are accepted."""
    stream = DemoStream(seed=seed)
    accepted = 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:

        async def sender() -> None:
            nonlocal accepted
            while accepted < count:
                delivery = stream.delivery(FILL_BATCH)
                headers = request_headers(delivery, secrets)
                response = await client.post(delivery.path, content=delivery.body, headers=headers)
                if response.status_code == 200:
                    accepted += len(response.json()["event_ids"])

        await asyncio.gather(*(sender() for _ in range(FILL_CONCURRENCY)))
    return accepted
