"""Ingest alone: concurrent signed webhook calls on every channel, against the broker's ceiling.

Starts an Apache Kafka broker and the ingest service on free ports in a temporary folder,
with a secret set for every network, so that each request is signed by the sender and
verified by ingest as in production. Then --concurrency senders POST the demo stream's
webhook calls (X, Facebook, Instagram, Messenger, email, chat, community, each in its
network's format, --batch interactions per call where the network batches them) as fast
as ingest answers, for --duration seconds (closed loop: a sender posts again as soon as
it has its answer). An answer 200 means the broker acknowledged every interaction of the
call. In the same run, on the same broker, the raw aiokafka produce rate (acks=all, the
services' producer settings) is measured as the ceiling.

Prints: calls and interactions accepted per second, refused calls by status, latency
percentiles of a call (overall and per channel), CPU of ingest and the broker, and the
ceiling with ingest's ratio to it. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Sequence

from socialcrm_bench.ceiling import measure_ceiling
from socialcrm_bench.load import Calls, drive
from socialcrm_bench.processes import proc_stat
from socialcrm_bench.report import add_json_option, emit, latency_row, percentile, say
from socialcrm_bench.stack_run import exit_status, temporary_stack

from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.stack import LocalStack


def figures(calls: Calls, ceiling_per_s: float, cpu_seconds: dict[str, float]) -> dict[str, float]:
    """The named figures of ``--json``: one ingest process, so per process = in all."""
    every = [ms for values in calls.latency_ms.values() for ms in values]
    per_s = calls.interactions / calls.seconds if calls.seconds else 0.0
    ingest_cpu = cpu_seconds.get("ingest", 0.0)
    return {
        "calls_per_s": round(calls.accepted / calls.seconds, 1) if calls.seconds else 0.0,
        "interactions_per_s": round(per_s, 1),
        "interactions_per_s_per_process": round(per_s, 1),
        "ingest_cpu_ms_per_interaction": round(1000 * ingest_cpu / calls.interactions, 3)
        if calls.interactions
        else 0.0,
        "refused_calls": float(sum(calls.refused.values())),
        "call_p50_ms": round(percentile(every, 0.5), 1),
        "call_p99_ms": round(percentile(every, 0.99), 1),
        "ceiling_produced_per_s": round(ceiling_per_s),
        "ratio_to_ceiling": round(per_s / ceiling_per_s, 4) if ceiling_per_s else 0.0,
    }


def report(options: argparse.Namespace, calls: Calls, ceiling_per_s: float, cpu: str) -> str:
    every = [ms for values in calls.latency_ms.values() for ms in values]
    per_s = calls.interactions / calls.seconds if calls.seconds else 0.0
    lines = [
        "",
        "== Social CRM ingest benchmark ==",
        f"machine        {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Kafka {kafka_version()}",
        f"load           {options.concurrency} concurrent senders for {options.duration:g} s, "
        f"up to {options.batch} interactions per call, every request signed and verified",
        "",
        f"  {'calls accepted (200)':<34}{calls.accepted:>12,}",
        f"  {'calls accepted per second':<34}{calls.accepted / calls.seconds:>12,.1f}",
        f"  {'interactions accepted':<34}{calls.interactions:>12,}",
        f"  {'interactions accepted per second':<34}{per_s:>12,.1f}  (one ingest process)",
        f"  {'calls refused':<34}{sum(calls.refused.values()):>12,}"
        f"{'  ' + str(calls.refused) if calls.refused else ''}",
        "",
        f"  {'latency of a call (ms)':<34}{'p50':>9}{'p95':>10}{'p99':>10}{'max':>10}{'n':>10}",
        latency_row("all channels", every),
        *(latency_row(channel, values) for channel, values in sorted(calls.latency_ms.items())),
        "",
        cpu,
        "",
        "Ceiling: raw aiokafka produce on the same broker (acks=all, idempotent)",
        f"  {'produced/s':<34}{ceiling_per_s:>12,.0f}",
        f"  {'ingest / ceiling':<34}{per_s / ceiling_per_s if ceiling_per_s else 0:>12.4f}",
    ]
    return "\n".join(lines)


async def run(options: argparse.Namespace, stack: LocalStack) -> tuple[str, dict[str, float]]:
    pids = {
        name: managed.process.pid
        for name, managed in (("ingest", stack.services["ingest"]), ("kafka", stack.kafka.process))
        if managed is not None and managed.process is not None
    }
    before = {name: proc_stat(pid) for name, pid in pids.items()}
    calls = await drive(
        stack.url("ingest"),
        stack.webhook_secrets(),
        options.duration,
        options.batch,
        options.concurrency,
        options.seed,
    )
    after = {name: proc_stat(pid) for name, pid in pids.items()}
    cpu_lines = [f"  {'process CPU during the load':<34}{'CPU s':>12}{'CPU %':>10}"]
    cpu_seconds: dict[str, float] = {}
    for name, first in before.items():
        last = after.get(name)
        if first and last:
            used = cpu_seconds[name] = last.cpu_seconds - first.cpu_seconds
            cpu_lines.append(f"  {name:<34}{used:>12.1f}{100 * used / calls.seconds:>10.0f}")
    say("[bench] measuring the ceiling (raw aiokafka produce) on the same broker")
    ceiling = await measure_ceiling(stack.kafka.bootstrap, options.ceiling_messages, options.seed)
    text = report(options, calls, ceiling.produced_per_s, "\n".join(cpu_lines))
    return text, figures(calls, ceiling.produced_per_s, cpu_seconds)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load [15]")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="senders posting at the same time [16]"
    )
    parser.add_argument(
        "--batch", type=int, default=10, help="interactions per call where batched [10]"
    )
    parser.add_argument(
        "--ceiling-messages", type=int, default=50_000, help="messages of the ceiling [50000]"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the demo stream [7]")
    add_json_option(parser)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    # The local stack sets a secret for every channel: every call is signed and checked.
    with temporary_stack("socialcrm-bench-ingest-") as stack:

        def bench() -> None:
            say(f"[bench] starting Kafka {kafka_version()} on {stack.kafka.bootstrap}")
            stack.kafka.start()
            say("[bench] starting ingest")
            stack.start_service("ingest")
            say(f"[bench] {options.concurrency} senders for {options.duration:g} s")
            text, named = asyncio.run(run(options, stack))
            emit(text, named, options.json)

        def stop() -> None:
            say("[bench] stopping ingest and the broker")
            stack.stop()
            say(f"[bench] stopped; {time.monotonic() - started:.1f} s in all")

        return exit_status("bench", bench, stop)


if __name__ == "__main__":
    sys.exit(main())
