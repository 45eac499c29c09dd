"""Each stream service alone, against the plain aiokafka loop on the same records.

Starts Kafka and the MongoDB-protocol server on free ports in a temporary folder, then
fills social.interactions.v1 by running ingest once on the demo stream's signed webhooks
(every channel, 60 % French). Each stage then runs alone, as a process like the local
stack runs it, on what the stage before it produced (sentiment on the interactions,
router on sentiment's output, crm-sink and kpi on router's), so every input is real. Per
stage it prints records/s and CPU ms per record in the steady state (after the first
commit), and the ratio to the plain consume->produce loop (getmany up to 1,000, send
every record on, gather the acks, commit) run on the same topic just before. For
crm-sink, the database commands its store issues for the same records (captured with
PyMongo's command monitoring) are replayed straight with PyMongo: the database's ceiling.
Asserts nothing. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from socialcrm_bench.ceiling import Rate, raw_loop
from socialcrm_bench.db_ceiling import (
    capture_sink_commands,
    prepare_database,
    replay_commands,
    routed_batches,
)
from socialcrm_bench.lag import GROUP_TOPICS, watch_group
from socialcrm_bench.load import fill_interactions
from socialcrm_bench.profiled import start_alone, stop_alone, top_functions
from socialcrm_bench.report import add_json_option, emit, say
from socialcrm_bench.stack_run import exit_status, temporary_stack
from socialcrm_bench.stages_report import NO_RATE, StageResult, figures, report
from socialcrm_bench.topics import end_offsets

from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.processes import StartError
from socialcrm_devstack.stack import LocalStack

# In the order of the flow: each runs on what the one before produced.
STAGES = ("sentiment", "router", "crm-sink", "kpi")


async def run_stage(stack: LocalStack, name: str, options: argparse.Namespace) -> StageResult:
    topic = GROUP_TOPICS[name]
    bootstrap = stack.kafka.bootstrap
    ends = await end_offsets(bootstrap, topic)
    records = sum(ends.values())
    if not records:
        return StageResult(0, NO_RATE, NO_RATE, problem=f"no input in {topic}")
    say(f"[stages] {name}: {records:,} records in {topic}; raw loop first")
    raw = await raw_loop(bootstrap, topic, records, options.bound)
    profile_path = stack.work_dir / f"{name}.prof" if options.profile else None
    process = start_alone(stack, name, profile_path)
    try:
        assert process.process is not None
        service = await watch_group(bootstrap, name, ends, process.process.pid, options.bound)
    finally:
        await asyncio.to_thread(stop_alone, process, profiled=profile_path is not None)
    result = StageResult(records, service, raw)
    say(f"[stages] {name}: {service.per_s:,.0f} records/s, raw loop {raw.per_s:,.0f}/s")
    if profile_path is not None:
        result.profile = top_functions(profile_path)
    if name == "crm-sink":
        result.db_ceiling = await db_ceiling(stack, ends)
    return result


async def db_ceiling(stack: LocalStack, ends: Any) -> Rate:
    say("[stages] crm-sink: capturing its store's commands, then replaying them")
    batches = await routed_batches(stack.kafka.bootstrap, ends)
    commands = await capture_sink_commands(stack.mongo.uri, "bench_capture", batches)
    await prepare_database(stack.mongo.uri, "bench_replay")
    seconds = await asyncio.to_thread(replay_commands, stack.mongo.uri, "bench_replay", commands)
    return Rate(sum(len(b) for b in batches), seconds, 0.0)


async def run(options: argparse.Namespace, stack: LocalStack) -> dict[str, StageResult]:
    say(f"[stages] ingest fills the interactions: {options.records:,} from the demo stream")
    await asyncio.to_thread(stack.start_service, "ingest")
    try:
        filled = await fill_interactions(
            stack.url("ingest"), stack.webhook_secrets(), options.records, options.seed
        )
    finally:
        await asyncio.to_thread(stack.stop_service, "ingest")
    say(f"[stages] {filled:,} interactions accepted")
    results: dict[str, StageResult] = {}
    for name in STAGES:
        try:
            results[name] = await run_stage(stack, name, options)
        except (RuntimeError, StartError) as exc:
            # A stage that cannot run is reported; the next ones run on what exists.
            log = stack.work_dir / "logs" / f"{name}.log"
            say(f"[stages] {name} failed: {exc}; its log: {log}")
            results[name] = StageResult(0, NO_RATE, NO_RATE, problem=str(exc).splitlines()[0])
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/stages.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--records", type=int, help="interactions filled [6000; quick 1500]")
    parser.add_argument("--quick", action="store_true", help="a short run: 1,500 records")
    parser.add_argument(
        "--profile", action="store_true", help="run each stage under cProfile; print top functions"
    )
    add_json_option(parser)
    parser.add_argument(
        "--bound", type=float, default=300.0, help="seconds a stage may take at most [300]"
    )
    parser.add_argument("--seed", type=int, default=14, help="seed of the demo stream [14]")
    options = parser.parse_args(argv)
    if options.records is None:
        options.records = 1500 if options.quick else 6000
    if options.records <= 0:
        parser.error("--records must be positive")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    with temporary_stack("socialcrm-bench-stages-") as stack:

        def bench() -> None:
            say(f"[stages] starting Kafka {kafka_version()} and SecantusDB")
            stack.start_infra()
            results = asyncio.run(run(options, stack))
            text = report(options, results, time.monotonic() - started)
            emit(text, figures(options, results), options.json)

        return exit_status("stages", bench, stack.stop)


if __name__ == "__main__":
    sys.exit(main())
