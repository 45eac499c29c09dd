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
import contextlib
import io
import json
import os
import platform
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pipeline import GROUP_TOPICS, interrupt_on_sigterm
from stage_measures import (
    Rate,
    capture_sink_commands,
    end_offsets,
    prepare_database,
    raw_loop,
    replay_commands,
    routed_batches,
    watch_group,
)

from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.processes import ManagedProcess, StartError
from socialcrm_devstack.stack import SERVICES, LocalStack
from socialcrm_devstack.webhook_signing import signed_headers

# In the order of the flow: each runs on what the one before produced.
STAGES = ("sentiment", "router", "crm-sink", "kpi")
PROFILE_TOP = 12
PROFILE_WRITE_SECONDS = 30
STARTUP_FRAMES = re.compile(
    r"importlib|marshal\.loads|builtins\.(exec|compile|__build_class__)|posix\.stat|open_code"
    r"|create_dynamic|typing\.py"
)
FILL_CONCURRENCY = 8
FILL_BATCH = 10
NO_RATE = Rate(0, 0.0, 0.0)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class StageResult:
    records: int
    service: Rate
    raw: Rate
    db_ceiling: Rate | None = None
    profile: str = ""
    problem: str = ""

    def figures(self) -> dict[str, float | str]:
        if self.problem:
            return {"records": float(self.records), "error": self.problem}
        return dict(self.service_figures())

    def service_figures(self) -> dict[str, float]:
        figures = {
            "records": float(self.records),
            "records_per_s": round(self.service.per_s, 1),
            "cpu_ms_per_record": round(self.service.cpu_ms_per_record, 3),
            "ratio_to_raw_loop": round(self.service.per_s / self.raw.per_s, 4)
            if self.raw.per_s
            else 0.0,
            "raw_loop_records_per_s": round(self.raw.per_s, 1),
            "raw_loop_cpu_ms_per_record": round(self.raw.cpu_ms_per_record, 3),
        }
        if self.db_ceiling is not None:
            figures["db_ceiling_records_per_s"] = round(self.db_ceiling.per_s, 1)
            figures["ratio_to_db_ceiling"] = (
                round(self.service.per_s / self.db_ceiling.per_s, 4)
                if self.db_ceiling.per_s
                else 0.0
            )
        return figures


async def fill_interactions(url: str, secrets: dict[str, str], count: int, seed: int) -> int:
    """POST the demo stream's signed webhooks to ingest until ``count`` are accepted."""
    stream = DemoStream(seed=seed)
    accepted = 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:

        async def sender() -> None:
            nonlocal accepted
            while accepted < count:
                delivery = stream.delivery(FILL_BATCH)
                headers = {
                    "content-type": delivery.content_type,
                    **signed_headers(delivery.path, delivery.body, secrets),
                }
                response = await client.post(delivery.path, content=delivery.body, headers=headers)
                if response.status_code == 200:
                    accepted += len(response.json()["event_ids"])

        await asyncio.gather(*(sender() for _ in range(FILL_CONCURRENCY)))
    return accepted


def start_alone(stack: LocalStack, name: str, profile_path: Path | None) -> ManagedProcess:
    """The service as the local stack runs it, optionally under cProfile."""
    spec = next(s for s in SERVICES if s.name == name)
    argv = [sys.executable, "-m", spec.module]
    if profile_path is not None:
        argv[1:1] = ["-m", "cProfile", "-o", str(profile_path)]
    process = ManagedProcess(
        name, argv, stack.work_dir / "logs" / f"{name}.log", env=stack.service_env(spec)
    )
    process.start()
    return process


def stop_alone(process: ManagedProcess, *, profiled: bool) -> None:
    """Stop the service; under cProfile with SIGINT: uvicorn re-raises the signal it
    stopped on, and only SIGINT's KeyboardInterrupt lets cProfile write its file."""
    if profiled and process.process is not None and process.running:
        process.process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.process.wait(PROFILE_WRITE_SECONDS)
    process.stop()


def top_functions(path: Path) -> str:
    if not path.exists():
        return "  (no profile written)"
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(PROFILE_TOP * 4)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    # Start-up (imports, model loading) is in the profile too; its import machinery is not
    # what a stage costs per record.
    kept = [line for line in lines[start + 1 :] if line.strip() and not STARTUP_FRAMES.search(line)]
    return "\n".join("  " + line for line in [lines[start], *kept[:PROFILE_TOP]])


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


def report(options: argparse.Namespace, results: dict[str, StageResult], wall: float) -> str:
    lines = [
        "",
        "== Social CRM stages, each alone ==",
        f"machine   {os.cpu_count()} CPUs (shared: other work runs too), "
        f"Python {platform.python_version()}, Kafka {kafka_version()}, SecantusDB",
        f"input     the demo stream through ingest, every channel, 60 % French"
        f"{'; under cProfile (slower)' if options.profile else ''}",
        "",
        f"  {'stage':<10}{'records':>9}{'records/s':>11}{'CPU ms/rec':>12}"
        f"{'raw loop/s':>12}{'raw CPU ms':>12}{'x raw':>8}{'x DB':>8}",
    ]
    for name, result in results.items():
        if result.problem:
            lines.append(f"  {name:<10}{'not measured: ' + result.problem}")
            continue
        f = result.service_figures()
        db = f"{f['ratio_to_db_ceiling']:>8.2f}" if "ratio_to_db_ceiling" in f else f"{'-':>8}"
        lines.append(
            f"  {name:<10}{result.records:>9,}{f['records_per_s']:>11,.0f}"
            f"{f['cpu_ms_per_record']:>12.2f}{f['raw_loop_records_per_s']:>12,.0f}"
            f"{f['raw_loop_cpu_ms_per_record']:>12.3f}{f['ratio_to_raw_loop']:>8.3f}{db}"
        )
    sink = results.get("crm-sink")
    if sink is not None and sink.db_ceiling is not None:
        lines.append(
            f"  crm-sink database ceiling: its store's commands for the same records replayed "
            f"with PyMongo, {sink.db_ceiling.per_s:,.0f} records/s"
        )
    for name, result in results.items():
        if result.profile:
            lines += ["", f"profile of {name} (top {PROFILE_TOP} by own time)", result.profile]
    lines += ["", f"wall time {wall:.1f} s", ""]
    return "\n".join(lines)


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
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
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


def as_json(options: argparse.Namespace, results: dict[str, StageResult]) -> str:
    figures: dict[str, object] = {
        "records": options.records,
        "cpus": os.cpu_count(),
        "profiled": options.profile,
        "stages": {name: result.figures() for name, result in results.items()},
    }
    return json.dumps(figures)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="socialcrm-bench-stages-") as work_dir:
        stack = LocalStack(Path(work_dir), ephemeral_ports=True)
        try:
            say(f"[stages] starting Kafka {kafka_version()} and SecantusDB")
            stack.start_infra()
            results = asyncio.run(run(options, stack))
            text = report(options, results, time.monotonic() - started)
            if options.json:
                say(text)
                print(as_json(options, results), flush=True)
            else:
                print(text, flush=True)
            return 0
        except KeyboardInterrupt:
            say("[stages] interrupted")
            return 130
        except Exception:
            traceback.print_exc()
            say("[stages] failed (see above)")
            return 1
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
