"""Figures read from the services' Prometheus /metrics pages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from socialcrm_bench.lag import GROUP_TOPICS
from socialcrm_bench.replicas import Replicas
from socialcrm_devstack import metrics_page
from socialcrm_devstack.stack import LocalStack

KPI_POLL_SECONDS = 0.25


def sample_values(text: str, name: str, /, **labels: str) -> list[float]:
    """The values of the samples ``name`` carrying ``labels`` (and maybe others) in an
    exposition text; empty when the page has none."""
    return metrics_page.values(metrics_page.parse(text), name, **labels)


async def scrape(client: httpx.AsyncClient, url: str) -> str:
    """The /metrics page of the service at ``url``; empty when it does not answer."""
    try:
        return (await client.get(f"{url}/metrics", timeout=5)).text
    except httpx.HTTPError:
        return ""


async def kpi_total(client: httpx.AsyncClient, url: str) -> float:
    return sum(sample_values(await scrape(client, url), "socialcrm_interactions_total"))


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
                samples = metrics_page.parse(await scrape(client, url))
                count += sum(
                    metrics_page.values(samples, "socialcrm_event_processing_seconds_count")
                )
                total += sum(metrics_page.values(samples, "socialcrm_event_processing_seconds_sum"))
            stages[service] = (count, total)
    return stages
