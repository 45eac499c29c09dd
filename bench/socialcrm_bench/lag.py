"""Consumer groups' progress: lag sampled over a run, and a group's rate on its input."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from socialcrm import contract
from socialcrm.kafka import connection
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import enriched_pb2, interaction_pb2, routed_pb2
from socialcrm_bench.ceiling import Rate
from socialcrm_bench.processes import proc_stat, runqueue_wait_seconds
from socialcrm_bench.topics import bench_settings

LAG_SAMPLE_SECONDS = 2.0
# A stage at least a fetch behind (CONSUMER_MAX_BATCH, which the bench's stack keeps at its
# default) has work for its whole next interval.
BEHIND_RECORDS: int = ServiceSettings.model_fields["consumer_max_batch"].default
PROGRESS_POLL_SECONDS = 0.1

# The input topic of each stream service's consumer group (the group id is the service name).
GROUP_TOPICS: dict[str, str] = {
    "sentiment": contract.topic_of(interaction_pb2.Interaction),
    "router": contract.topic_of(enriched_pb2.EnrichedInteraction),
    "crm-sink": contract.topic_of(routed_pb2.RoutedInteraction),
    "kpi": contract.topic_of(routed_pb2.RoutedInteraction),
}


@dataclass
class LagSamples:
    """Each group's lag every LAG_SAMPLE_SECONDS and, when its process is watched, the CPU
    seconds that process had used by then (``cpu``, with the sample's time in ``at``)."""

    samples: dict[str, list[int]] = field(default_factory=lambda: {g: [] for g in GROUP_TOPICS})
    at: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    waiting: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def max(self, group: str) -> int | None:
        return max(self.samples[group]) if self.samples[group] else None

    def last(self, group: str) -> int | None:
        return self.samples[group][-1] if self.samples[group] else None

    def busy_while_behind(self, group: str) -> float | None:
        """The share of a core ``group``'s process used over the sample intervals that
        began with a lag of at least a fetch's worth (``BEHIND_RECORDS``), or None when it never
        was that far behind: a stage that is behind and CPU-bound shows close to 1."""
        return self._while_behind(group, self.cpu.get(group, []))

    def waiting_while_behind(self, group: str) -> float | None:
        """Over the same intervals, the share of the time its threads waited for a CPU
        (summed over threads: 0.5 is one thread waiting half the time)."""
        return self._while_behind(group, self.waiting.get(group, []))

    def _while_behind(self, group: str, totals: list[float]) -> float | None:
        lags = self.samples[group]
        spans = [
            (totals[i + 1] - totals[i], self.at[i + 1] - self.at[i])
            for i in range(min(len(lags), len(totals), len(self.at)) - 1)
            if lags[i] >= BEHIND_RECORDS
        ]
        elapsed = sum(seconds for _, seconds in spans)
        return sum(used for used, _ in spans) / elapsed if elapsed > 0 else None


class LagProbe:
    """Lag of consumer groups: end offsets of their input topic minus committed offsets."""

    def __init__(
        self,
        bootstrap: str,
        group_topics: Mapping[str, str] = GROUP_TOPICS,
        pids: Mapping[str, int] | None = None,
    ) -> None:
        self.group_topics = dict(group_topics)
        # The process of each group whose CPU is sampled with its lag (one replica each).
        self.pids = {g: pid for g, pid in (pids or {}).items() if g in self.group_topics}
        self.settings = bench_settings(bootstrap, "bench-lag")
        self.admin = connection.admin(self.settings)
        self.consumer = connection.consumer(self.settings, enable_auto_commit=False)
        self.partitions: dict[str, list[Any]] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        for topic in sorted(set(self.group_topics.values())):
            count = await connection.partitions_of(self.settings, topic)
            self.partitions[topic] = [TopicPartition(topic, n) for n in range(count)]

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def lags(self) -> dict[str, int]:
        """Records not yet committed, per group."""
        ends = await self.consumer.end_offsets(
            [tp for parts in self.partitions.values() for tp in parts]
        )
        lags: dict[str, int] = {}
        for group, topic in self.group_topics.items():
            committed = await self.admin.list_consumer_group_offsets(group)
            lag = 0
            for tp in self.partitions[topic]:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else 0
                lag += max(0, ends[tp] - position)
            lags[group] = lag
        return lags

    async def sample(self, into: LagSamples) -> None:
        try:
            lags = await self.lags()
        except Exception:
            into.errors += 1
            return
        for group, lag in lags.items():
            into.samples[group].append(lag)
        into.at.append(time.monotonic())
        for group, pid in self.pids.items():
            stat = proc_stat(pid)
            into.cpu.setdefault(group, []).append(stat.cpu_seconds if stat else math.nan)
            into.waiting.setdefault(group, []).append(runqueue_wait_seconds(pid))

    async def run(self, into: LagSamples, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample(into)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_SAMPLE_SECONDS)
        await self.sample(into)


async def watch_group(
    bootstrap: str, group: str, ends: dict[TopicPartition, int], pid: int, bound_s: float
) -> Rate:
    """The rate of ``group`` on its input, from its first commit to the end of ``ends``.

    Committed offsets are polled: the records of the first commit and the start-up before
    it are left out, so the rate and the CPU per record (``/proc`` of ``pid``) are those
    of the steady state."""
    admin = connection.admin(bench_settings(bootstrap, "bench-stages"))
    await admin.start()
    target = sum(ends.values())
    first: tuple[float, int, float] | None = None
    last: tuple[float, int, float] | None = None
    try:
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            done = sum(
                meta.offset for tp, meta in committed.items() if tp in ends and meta.offset > 0
            )
            stat = proc_stat(pid)
            if stat is None:
                raise RuntimeError(f"{group} exited during the run")
            now = time.monotonic()
            if done and first is None:
                first = (now, done, stat.cpu_seconds)
            elif first is not None and done > first[1]:
                last = (now, done, stat.cpu_seconds)
            if done >= target:
                break
            await asyncio.sleep(PROGRESS_POLL_SECONDS)
    finally:
        await admin.close()
    if first is None or last is None:
        return Rate(0, 0.0, 0.0)
    return Rate(last[1] - first[1], last[0] - first[0], last[2] - first[2])
