"""The router's state restore with 1 and with N replicas: restore time, keys and memory.

Starts Kafka and the router on free ports in a temporary folder (nothing reads the
router's outputs: the other services are not started), then publishes --interactions
enriched interactions straight to social.enriched.v1, each in its own conversation and
needing a response hours from now (English neutral questions: the question-en rule, a 4 h
SLA), so that the router holds them all in its SLA state and no escalation fires. Once the
router's group has committed them all, the router is restarted alone, then as --replicas
processes started side by side (each in the router's consumer group). For each process it
prints, once the group has settled (every replica exposes its restore time, together they
hold the keys the single replica held, nothing changed for 5 s):

  restore s   socialcrm_state_restore_seconds{store="router-sla"} of its /metrics: how
              long its last restore took (set at start-up and at every assignment)
  keys        socialcrm_state_keys{store="router-sla"}: the keys this replica owns
  view keys   socialcrm_state_keys{store="router-sla-view"}: the keys of its read view
              of the whole changelog (for the API), held by every replica
  RSS MiB     its resident memory (VmRSS from /proc) at that moment
  partition   the restore time of one router partition: its restore s over the partitions
              it owns (socialcrm_state_owned_partitions{store="router-sla"}), exact when
              its last restore took them all (as at start-up)
  by kind     socialcrm_router_state_keys{kind}: the keys it owns per kind of state (open,
              answered, awaiting_interaction, marker, erased_author), each with its expiry
              (ROUTER_STATE_TTL_HOURS, ROUTER_MARKER_RETENTION_HOURS,
              ROUTER_ERASURE_HORIZON_HOURS), so that a restore stays bounded

and the seconds from the start of the processes to every /readyz answering 200. A router
without the partition-owned state store exposes neither metric: its cells then read "not
exposed" (null in JSON). Asserts nothing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence

from socialcrm_bench.report import add_json_option, emit, say
from socialcrm_bench.restore_run import ROUTER, ReplicaFigures, RestoreResults, run
from socialcrm_bench.stack_run import exit_status, temporary_stack

from socialcrm_devstack.infra import kafka_version

NOT_EXPOSED = "not exposed"


def cell(value: float | None, spec: str) -> str:
    return NOT_EXPOSED if value is None else format(value, spec)


def by_kind(keys: Mapping[str, float]) -> str:
    if not keys:
        return NOT_EXPOSED
    return ", ".join(f"{kind} {count:,.0f}" for kind, count in keys.items())


def partition_seconds(replica: ReplicaFigures) -> float | None:
    """The restore time of one router partition: the replica's last restore over the
    partitions it restored (as many as it owns once settled)."""
    if replica.restore_seconds is None or not replica.partitions:
        return None
    return replica.restore_seconds / replica.partitions


def per_partition(replica: ReplicaFigures) -> str:
    seconds = partition_seconds(replica)
    if seconds is None:
        return f"restore of one partition: {NOT_EXPOSED}"
    return f"restore of one partition: {seconds:.3f} s ({replica.partitions:.0f} owned)"


def figures(results: RestoreResults, replicas: int) -> dict[str, object]:
    """The named figures of ``--json`` (null where the router does not expose a figure)."""
    handled = results.handled_seconds
    named: dict[str, object] = {
        "interactions": results.interactions,
        "replicas": replicas,
        "router_handled_seconds": None if handled is None else round(handled, 1),
        "router_rss_mb_empty": round(results.empty_rss_mib, 1) if results.empty_rss_mib else None,
    }
    for count, each in results.replicas.items():
        restores = [f.restore_seconds for f in each if f.restore_seconds is not None]
        rss = [f.rss_mib for f in each if f.rss_mib is not None]
        named[f"router_ready_seconds_{count}"] = round(results.ready_seconds[count], 2)
        named[f"router_restore_seconds_{count}"] = round(max(restores), 3) if restores else None
        named[f"router_rss_mb_{count}"] = round(max(rss), 1) if rss else None
        keys = [None if f.keys is None else round(f.keys) for f in each]
        view_keys = [None if f.view_keys is None else round(f.view_keys) for f in each]
        named[f"router_keys_{count}"] = keys[0] if count == 1 else keys
        named[f"router_view_keys_{count}"] = view_keys[0] if count == 1 else view_keys
        per_part = [None if (v := partition_seconds(f)) is None else round(v, 3) for f in each]
        named[f"router_partition_restore_seconds_{count}"] = max(
            (v for v in per_part if v is not None), default=None
        )
        kinds = [{k: round(v) for k, v in f.keys_by_kind.items()} or None for f in each]
        named[f"router_keys_by_kind_{count}"] = kinds[0] if count == 1 else kinds
        named[f"settled_{count}"] = results.settled[count]
    return named


def report(results: RestoreResults, started: float) -> str:
    handled = results.handled_seconds
    lines = [
        "",
        "== Social CRM router state restore ==",
        f"machine        {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Kafka {kafka_version()}",
        f"state          {results.interactions:,} interactions waiting for a response, "
        f"published in {results.publish_seconds:.1f} s",
        "               handled by the router "
        + (f"in {handled:.1f} s" if handled is not None else "only in part (bound reached)"),
        f"empty router   {cell(results.empty_rss_mib, '.0f')} MiB resident before the state",
        "",
        f"  {'replicas':<10}{'process':<12}{'restore s':>14}{'keys':>14}{'view keys':>14}"
        f"{'RSS MiB':>10}{'ready s':>10}",
    ]
    for count, each in results.replicas.items():
        for index, replica in enumerate(each):
            ready = f"{results.ready_seconds[count]:>10.1f}" if index == 0 else ""
            lines.append(
                f"  {count:<10}{replica.name:<12}{cell(replica.restore_seconds, '.3f'):>14}"
                f"{cell(replica.keys, ',.0f'):>14}{cell(replica.view_keys, ',.0f'):>14}"
                f"{cell(replica.rss_mib, '.0f'):>10}{ready}"
            )
            lines.append(f"  {'':<10}{'':<12}{per_partition(replica)}")
            lines.append(f"  {'':<10}{'':<12}by kind: {by_kind(replica.keys_by_kind)}")
        if not results.settled[count]:
            lines.append(f"  ({count} replica(s): the group had not settled at the bound)")
    lines += ["", f"wall time {time.monotonic() - started:.1f} s", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/restore.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--interactions", type=int, help="interactions in the state [50000; quick 5000]"
    )
    parser.add_argument("--quick", action="store_true", help="a short run: 5,000 interactions")
    parser.add_argument(
        "--replicas", type=int, default=3, help="router processes of the second restart [3]"
    )
    parser.add_argument(
        "--bound",
        type=float,
        default=600.0,
        help="seconds the router may take to handle the interactions, and a restart to "
        "settle [600]",
    )
    parser.add_argument("--seed", type=int, default=15, help="seed of the demo stream [15]")
    add_json_option(parser)
    options = parser.parse_args(argv)
    if options.interactions is None:
        options.interactions = 5_000 if options.quick else 50_000
    if options.interactions <= 0:
        parser.error("--interactions must be positive")
    if options.replicas < 2:
        parser.error("--replicas must be at least 2 (the first restart runs 1)")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    with temporary_stack("socialcrm-bench-restore-") as stack:

        def bench() -> None:
            say(f"[restore] starting Kafka {kafka_version()} and the router")
            stack.kafka.start()
            stack.start_service(ROUTER)
            results = asyncio.run(
                run(stack, options.interactions, options.replicas, options.seed, options.bound)
            )
            emit(report(results, started), figures(results, options.replicas), options.json)

        def stop() -> None:
            say("[restore] stopping the router and the broker")
            stack.stop()

        return exit_status("restore", bench, stop)


if __name__ == "__main__":
    sys.exit(main())
