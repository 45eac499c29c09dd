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
import sys
import time
from collections.abc import Sequence

from socialcrm_bench.pipeline_report import figures, report
from socialcrm_bench.pipeline_run import MODES, Options, run
from socialcrm_bench.replicas import Replicas
from socialcrm_bench.report import add_json_option, emit, say
from socialcrm_bench.stack_run import exit_status, start_stack, temporary_stack

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
    add_json_option(parser)
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


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    with temporary_stack("socialcrm-bench-") as stack:
        replicas = Replicas(stack, options.replicas)

        def bench() -> None:
            start_stack(stack)
            if replicas.processes:
                say(f"[bench] starting {len(replicas.processes)} more stream service processes")
                replicas.start()
            results = asyncio.run(run(options, stack, replicas))
            emit(report(options, results, started), figures(options, results), options.json)

        def stop() -> None:
            say("[bench] stopping the stack")
            replicas.stop()
            stack.stop()
            say(f"[bench] stopped; {time.monotonic() - started:.1f} s in all")

        return exit_status("bench", bench, stop)


if __name__ == "__main__":
    sys.exit(main())
