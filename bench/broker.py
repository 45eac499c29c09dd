"""What the producer's settings cost the broker, per event, at a paced rate.

Starts Kafka alone on a free port in a temporary folder (the devstack's settings: C1-only
JIT, serial collector), then for each variant of the services' producer settings sends
the same encoded Interactions (normalised DemoStream tweets) to a topic of its own (6
partitions) at ``--rate`` events/s for ``--duration`` s, as a stage publishes: acks=all,
idempotent, keyed by conversation, acknowledgements gathered as they come. Per variant it
prints the broker's CPU ms per event (its process tree, /proc, less what it used idle
for as long), this process's CPU ms per event and the p99 acknowledgement latency.
Asserts nothing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from socialcrm_bench.ceiling import sample_interactions
from socialcrm_bench.processes import proc_stat, self_cpu_seconds
from socialcrm_bench.report import add_json_option, emit, percentile, say
from socialcrm_bench.stack_run import exit_status, temporary_stack
from socialcrm_bench.topics import bench_settings, create_topic

from socialcrm.kafka import connection
from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.stack import LocalStack

# The services' producer (socialcrm.kafka.connection: linger 5 ms, no compression) first.
VARIANTS: dict[str, dict[str, Any]] = {
    "linger 5 ms (services)": {},
    "linger 0 ms": {"linger_ms": 0},
    "linger 20 ms": {"linger_ms": 20},
    "linger 5 ms, gzip": {"compression_type": "gzip"},
    "linger 20 ms, gzip": {"linger_ms": 20, "compression_type": "gzip"},
    # The first variant again: the broker's JIT warms up during the first (C1 only).
    "linger 5 ms, again": {},
}


def broker_cpu(stack: LocalStack) -> float:
    process = stack.kafka.process
    stat = proc_stat(process.process.pid) if process and process.process else None
    return stat.cpu_seconds if stat is not None else 0.0


async def paced_send(
    bootstrap: str, topic: str, options: dict[str, Any], rate: float, duration: float
) -> tuple[int, list[float]]:
    """Events sent and the acknowledgement latency of each (ms)."""
    records = sample_interactions(2000, seed=26)
    producer = connection.producer(bench_settings(bootstrap, "bench-broker"), **options)
    await producer.start()
    latencies: list[float] = []
    pending: list[asyncio.Future[Any]] = []
    try:
        await (await producer.send(topic, records[0][1], key=records[0][0]))  # warm-up
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < duration:
            for _ in range(int(elapsed * rate) - sent):
                key, value = records[sent % len(records)]
                queued_at = time.monotonic()
                future = await producer.send(topic, value, key=key)
                future.add_done_callback(
                    lambda _, at=queued_at: latencies.append(1000 * (time.monotonic() - at))
                )
                pending.append(future)
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, latencies


async def run(stack: LocalStack, options: argparse.Namespace) -> dict[str, dict[str, float]]:
    bootstrap = stack.kafka.bootstrap
    before = broker_cpu(stack)
    await asyncio.sleep(options.duration)
    idle_per_s = (broker_cpu(stack) - before) / options.duration
    say(f"[broker] idle broker: {1000 * idle_per_s:.1f} CPU ms/s")
    results: dict[str, dict[str, float]] = {}
    for index, (name, settings) in enumerate(VARIANTS.items()):
        topic = f"bench.broker.{index}"
        await create_topic(bootstrap, topic, 6)
        broker_before, self_before, began = broker_cpu(stack), self_cpu_seconds(), time.monotonic()
        sent, latencies = await paced_send(
            bootstrap, topic, settings, options.rate, options.duration
        )
        span = time.monotonic() - began
        broker = broker_cpu(stack) - broker_before - idle_per_s * span
        results[name] = {
            "events": sent,
            "broker_cpu_ms_per_event": round(1000 * broker / sent, 3),
            "client_cpu_ms_per_event": round(1000 * (self_cpu_seconds() - self_before) / sent, 3),
            "ack_p99_ms": round(percentile(latencies, 0.99), 1),
        }
        say(f"[broker] {name}: {results[name]}")
    return results


def report(options: argparse.Namespace, results: dict[str, dict[str, float]]) -> str:
    lines = [
        "",
        "== What the producer's settings cost the broker ==",
        f"Kafka {kafka_version()} alone (C1-only JIT, serial GC), 6 partitions, "
        f"{options.rate:g} events/s for {options.duration:g} s a variant (machine may be shared)",
        "",
        f"  {'variant':<26}{'events':>8}{'broker ms/ev':>14}{'client ms/ev':>14}{'ack p99 ms':>12}",
    ]
    for name, f in results.items():
        lines.append(
            f"  {name:<26}{f['events']:>8,.0f}{f['broker_cpu_ms_per_event']:>14.3f}"
            f"{f['client_cpu_ms_per_event']:>14.3f}{f['ack_p99_ms']:>12.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/broker.py", description=__doc__)
    parser.add_argument("--rate", type=float, default=600.0, help="events/s sent [600]")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds a variant [10]")
    add_json_option(parser)
    options = parser.parse_args(argv)
    with temporary_stack("socialcrm-bench-broker-") as stack:

        def bench() -> None:
            say(f"[broker] starting Kafka {kafka_version()}")
            stack.kafka.start()
            results = asyncio.run(run(stack, options))
            emit(
                report(options, results), {"rate": options.rate, "variants": results}, options.json
            )

        return exit_status("broker", bench, stack.stop)


if __name__ == "__main__":
    sys.exit(main())
