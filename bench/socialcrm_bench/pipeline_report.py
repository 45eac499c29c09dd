"""The printed report and the named figures (``--json``) of bench/pipeline.py."""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass

from socialcrm_bench.ceiling import CEILING_PARTITIONS, CEILING_TOPIC
from socialcrm_bench.lag import GROUP_TOPICS, LAG_SAMPLE_SECONDS
from socialcrm_bench.metrics import KPI_POLL_SECONDS
from socialcrm_bench.pipeline_run import Options, Results
from socialcrm_bench.processes import ProcStat, self_peak_rss_kib
from socialcrm_bench.report import latency_row, percentile, rounded
from socialcrm_devstack.infra import kafka_version

# The processes an event crosses on its way to an alert (replicas are "<service>-<n>").
ALERT_PATH = ("ingest", "sentiment", "router", "kpi", "kafka")


def cpu_ms_per_event(results: Results, accepted: int) -> dict[str, float]:
    """CPU ms each process used over the load and drain window, per accepted event."""
    return {
        name: round(1000 * (after.cpu_seconds - before.cpu_seconds) / accepted, 3)
        for name, after in results.cpu_after.items()
        if (before := results.cpu_before.get(name)) is not None and accepted
    }


def alert_path_ms(per_event: dict[str, float]) -> float:
    return round(sum(ms for n, ms in per_event.items() if n.split("-")[0] in ALERT_PATH), 3)


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


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


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
        # Each stage while it was behind (None: never was): the share of a core its process
        # used, and the share of the time its threads waited for a CPU.
        "busy_while_behind": {g: _share(results.lag.busy_while_behind(g)) for g in GROUP_TOPICS},
        "cpu_wait_while_behind": {
            g: _share(results.lag.waiting_while_behind(g)) for g in GROUP_TOPICS
        },
        "cpu_percent": {
            name: round(100 * (after.cpu_seconds - before.cpu_seconds) / window, 1)
            for name, after in results.cpu_after.items()
            if (before := results.cpu_before.get(name)) is not None and window > 0
        },
        "cpu_ms_per_event": (per_event := cpu_ms_per_event(results, summary.accepted)),
        "alert_path_cpu_ms_per_event": alert_path_ms(per_event),
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
        f"  {'consumer lag (records)':<34}{'max':>10}{'final':>10}"
        f"{'while behind: CPU':>20}{'waiting for CPU':>17}",
    ]
    for group in GROUP_TOPICS:
        top, last = results.lag.max(group), results.lag.last(group)
        busy = results.lag.busy_while_behind(group)
        wait = results.lag.waiting_while_behind(group)
        lines.append(
            f"  {group + ' <- ' + GROUP_TOPICS[group]:<34}"
            f"{'-' if top is None else f'{top:,}':>10}{'-' if last is None else f'{last:,}':>10}"
            f"{'-' if busy is None else f'{busy:.0%} of a core':>20}"
            f"{'-' if wait is None else f'{wait:.0%}':>17}"
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
        f"  {'process (load + drain window)':<34}{'CPU s':>10}{'CPU %':>10}{'ms/event':>10}"
        f"{'peak RSS MiB':>14}",
    ]
    window = results.window_seconds
    per_event = cpu_ms_per_event(results, accepted)
    for name, after in results.cpu_after.items():
        before = results.cpu_before.get(name, ProcStat(0.0, 0))
        cpu = after.cpu_seconds - before.cpu_seconds
        lines.append(
            f"  {name:<34}{cpu:>10.1f}{100 * cpu / window:>10.0f}"
            f"{per_event.get(name, 0.0):>10.2f}{after.peak_rss_kib / 1024:>14.0f}"
        )
    lines.append(
        f"  {'alert path (' + ', '.join(ALERT_PATH) + ')':<54}{alert_path_ms(per_event):>10.2f}"
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
