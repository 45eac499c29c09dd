"""One run of bench/pipeline.py: the ceiling, then the load on ingest and the wait for the
CRM and kpi, while lag, kpi's count and the processes' CPU are sampled."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from socialcrm_bench.ceiling import CEILING_TOPIC, Ceiling, measure_ceiling
from socialcrm_bench.crm import Drain, wait_for_crm
from socialcrm_bench.lag import LagProbe, LagSamples
from socialcrm_bench.load import Load, send_load
from socialcrm_bench.metrics import KpiSamples, poll_kpi, stage_seconds
from socialcrm_bench.processes import ProcStat, proc_stat, self_cpu_seconds, watched_processes
from socialcrm_bench.replicas import Replicas
from socialcrm_bench.report import say
from socialcrm_devstack.stack import LocalStack


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
    probe = LagProbe(stack.kafka.bootstrap, pids=pids)
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
