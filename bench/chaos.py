"""The chaos run, longer: three routers and two kpi instances under steady load with a
seeded random schedule of faults, judged against the truth derived from the input topics.

Starts Kafka on a free port in a temporary folder, three routers and two kpi instances
(each in its service's consumer group, an SLA of 8 s and a second level 10 s later), then
plays the scale-out suite's load (interactions straight to social.enriched.v1, some
overdue already, answered by a tool on social.replies.v1 or by an agent through a
router's reply API, racing their deadlines) at --rate for --duration seconds. Meanwhile,
about every 25 s, a fault: kill -9 of a router or kpi replica (a replacement started at
once), a pause of one past the session timeout (SIGSTOP until the group has rebalanced
without it, then SIGCONT: the zombie case; never every router at once), and one broker
restart. Each fault is printed with its time. Then the checker
(tests/fixtures/chaos_truth.py, the same as tests/e2e/test_chaos.py's) prints:

  SLA levels due / fired once   every (interaction, level) not answered before its deadline
                                (2 s either side races it) escalated once, one event id
  answered in time yet escalated  escalation records of levels answered before their time
  kpi windows checked           every window of the load published once, counts exact
  dead letters                  records of every .dlq topic, by topic and reason
  state per replica             socialcrm_router_state_keys by kind, socialcrm_state_keys and
                                owned partitions by store, kpi's backlog, RSS, of each replica
  PASS / FAIL                   the findings, with evidence (interaction, partition, times)

It measures correctness, not speed: no baseline. Exit status 0 when the run completed
(whatever the verdict), 1 when it failed, 130 when interrupted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from socialcrm_bench.report import add_json_option, emit, say
from socialcrm_bench.stack_run import exit_status

# The driver and the checker are the test suite's fixtures, run from the repository's root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.chaos import chaos_pool, load_of, run
from tests.fixtures.chaos_faults import schedule


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/chaos.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration", type=float, default=300.0, help="seconds of load and faults [300]"
    )
    parser.add_argument("--rate", type=float, default=4.0, help="interactions a second [4]")
    parser.add_argument(
        "--seed", type=int, default=23, help="seed of the fault schedule and targets [23]"
    )
    parser.add_argument(
        "--spacing", type=float, default=25.0, help="seconds between faults, about [25]"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="folder for the broker's data and the replicas' logs (logs/<replica>.log), "
        "new or empty, kept afterwards [a temporary folder, removed]",
    )
    add_json_option(parser)
    options = parser.parse_args(argv)
    if options.duration < 60:
        parser.error("--duration must be at least 60 (four faults 25 s apart, and a tail)")
    if options.rate <= 0:
        parser.error("--rate must be positive")
    if options.work_dir and options.work_dir.exists() and any(options.work_dir.iterdir()):
        # A broker's old data would mix another run's records into the truth.
        parser.error(f"--work-dir {options.work_dir} must be new or empty")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    started = time.monotonic()
    load = load_of(options.duration, options.rate)
    faults = schedule(options.seed, options.duration, spacing=options.spacing)

    def bench() -> None:
        with contextlib.ExitStack() as stack:
            work_dir = options.work_dir or Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="socialcrm-bench-chaos-"))
            )
            work_dir.mkdir(parents=True, exist_ok=True)
            pool = stack.enter_context(chaos_pool(work_dir, load))
            say(f"[chaos] Kafka, 3 routers and 2 kpi instances ready; logs in {work_dir / 'logs'}")
            outcome = asyncio.run(run(pool, load, faults, options.seed))
        text = (
            f"\n== Social CRM chaos run: seed {options.seed}, {options.duration:.0f} s at "
            f"{options.rate}/s ==\n{outcome.printed}\n"
            f"wall time {time.monotonic() - started:.0f} s\n"
        )
        named = {
            "seed": options.seed,
            "duration_seconds": options.duration,
            "faults": outcome.faults,
            "passed": outcome.verdict.passed,
            "findings": {what: len(lines) for what, lines in outcome.verdict.findings.items()},
            **outcome.verdict.figures,
        }
        emit(text, named, options.json)

    return exit_status("chaos", bench, lambda: None)


if __name__ == "__main__":
    sys.exit(main())
