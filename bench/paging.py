"""The page path: steady traffic, then a viral negative burst, until on-call is paged.

Starts its own stack (Kafka, the MongoDB-protocol server, the five services with their
production settings) and, over it, Prometheus and Alertmanager paging a local receiver
(``socialcrm_devstack.observability``), all on free ports in a temporary folder. Then:

 1. history: kpi's spike detector alerts only on a series with 15 one-minute buckets of
    history, learned from event time, and its baseline learns a steady rate in about 50
    (see --history-minutes). The demo stream (every channel, each in its network's
    format) is replayed at --rate events per second of event time over the last
    --history-minutes, sent --catch-up-rate per second of wall time until it catches up
    with the clock, so that the detector is armed with a baseline of the steady rate.
 2. steady: the same stream, live at --rate, for --steady-minutes: every page received
    then is a false alarm.
 3. burst: on top of the steady stream, the demo's viral negative burst on one subject
    (many authors, one influential) at --burst-rate posts per second for --burst-seconds,
    in X calls of up to 50 posts; the steady stream goes on until the page arrives or
    --page-timeout seconds pass.

Prints the time from the burst's first post to kpi's spike gauge, to Prometheus' firing
alert and to the page at the receiver, and the pages of each phase. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

import httpx
from socialcrm_bench.paging_figures import Options, Timeline, figures, page_after_burst, report
from socialcrm_bench.paging_traffic import PROBE_SECONDS, Sender, burst, steady, watch
from socialcrm_bench.report import say
from socialcrm_bench.stack_run import exit_status, start_stack, temporary_stack

from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack


async def run(options: Options, stack: LocalStack, observability: Observability) -> Timeline:
    timeline = Timeline()
    stream = DemoStream(seed=options.seed)
    stop, caught_up = asyncio.Event(), asyncio.Event()
    receiver = observability.receiver
    async with (
        httpx.AsyncClient(base_url=stack.url("ingest"), timeout=30) as ingest,
        httpx.AsyncClient(timeout=5) as probes,
    ):
        sender = Sender(ingest, stack.webhook_secrets(), timeline)
        tasks = [
            asyncio.create_task(steady(sender, stream, options, stack.url("kpi"), caught_up, stop)),
            asyncio.create_task(watch(probes, stack.url("kpi"), observability, timeline, stop)),
        ]
        try:
            say(f"[paging] replaying {options.history_minutes:g} minutes of history ...")
            await caught_up.wait()
            assert timeline.live_started is not None
            say(
                f"[paging] caught up after {timeline.live_started - timeline.catch_up_started:.0f}"
                f" s; steady traffic at {options.rate:g}/s for {options.steady_minutes:g} min"
            )
            await asyncio.sleep(options.steady_minutes * 60)
            say(f"[paging] burst: {options.burst_rate:g} posts/s for {options.burst_seconds:g} s")
            burst_task = asyncio.create_task(burst(sender, stream, options))
            deadline = time.time() + options.page_timeout
            while time.time() < deadline:
                if page_after_burst(receiver.pages, timeline):
                    break
                await asyncio.sleep(PROBE_SECONDS)
            await burst_task
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return timeline


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/paging.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=5.0, help="steady events/s [5]")
    parser.add_argument(
        "--steady-minutes", type=float, default=10.0, help="minutes of live steady traffic [10]"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 minutes of steady traffic (overrides the above)"
    )
    parser.add_argument(
        "--burst-rate", type=float, default=300.0, help="burst posts/s offered [300]"
    )
    parser.add_argument("--burst-seconds", type=float, default=20.0, help="burst length [20]")
    parser.add_argument(
        "--history-minutes",
        type=float,
        default=60.0,
        help="event-time history replayed first [60]: kpi alerts after 15 one-minute "
        "buckets, but a new series' baseline learns each bucket capped at its alert "
        "threshold, from 20 on: it takes ~50 buckets to reach 300 a bucket (5/s), and "
        "steady traffic alerts until then (measured: 68 after 16 buckets of 300)",
    )
    parser.add_argument(
        "--catch-up-rate",
        type=float,
        default=100.0,
        help="events/s (wall time) of the history replay; kpi counts each replayed "
        "minute before the next is sent [100]",
    )
    parser.add_argument(
        "--page-timeout",
        type=float,
        default=180.0,
        help="seconds after the burst's first post to wait for the page [180]",
    )
    parser.add_argument("--seed", type=int, default=18, help="seed of the demo stream [18]")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    options = Options(
        rate=args.rate,
        steady_minutes=2.0 if args.quick else args.steady_minutes,
        burst_rate=args.burst_rate,
        burst_seconds=args.burst_seconds,
        history_minutes=args.history_minutes,
        catch_up_rate=args.catch_up_rate,
        page_timeout=args.page_timeout,
        seed=args.seed,
        json=args.json,
    )
    for name in ("rate", "burst_rate", "burst_seconds", "catch_up_rate", "page_timeout"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if options.catch_up_rate <= options.rate:
        parser.error("--catch-up-rate must be above --rate, or the history never catches up")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    with temporary_stack("socialcrm-paging-") as stack:
        observability = Observability(stack, stack.work_dir)

        def bench() -> None:
            start_stack(stack)
            observability.start()
            say(
                f"[paging] Prometheus {observability.prometheus_url}, "
                f"Alertmanager {observability.alertmanager_url}"
            )
            timeline = asyncio.run(run(options, stack, observability))
            named = figures(options, timeline, observability.receiver.pages)
            print(report(named), flush=True)
            if options.json:
                print(json.dumps(named), flush=True)

        def stop() -> None:
            say("[paging] stopping Prometheus, Alertmanager and the stack")
            observability.stop()
            stack.stop()

        return exit_status("paging", bench, stop)


if __name__ == "__main__":
    sys.exit(main())
