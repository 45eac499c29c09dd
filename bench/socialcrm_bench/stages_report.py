"""The results of bench/stages.py: per stage, its rate against the raw loop (and the
database's ceiling for crm-sink), printed and as named figures."""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass

from socialcrm_bench.ceiling import Rate
from socialcrm_bench.profiled import PROFILE_TOP
from socialcrm_devstack.infra import kafka_version

NO_RATE = Rate(0, 0.0, 0.0)


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
            # With its whole input waiting, a stage bound by its own CPU shows close to 1.
            "busy_share_of_a_core": round(self.service.busy, 2),
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


def report(options: argparse.Namespace, results: dict[str, StageResult], wall: float) -> str:
    lines = [
        "",
        "== Social CRM stages, each alone ==",
        f"machine   {os.cpu_count()} CPUs (the broker and the database run on them too), "
        f"Python {platform.python_version()}, Kafka {kafka_version()}, SecantusDB",
        f"input     the demo stream through ingest, every channel, 60 % French"
        f"{'; under cProfile (slower)' if options.profile else ''}",
        "",
        f"  {'stage':<10}{'records':>9}{'records/s':>11}{'CPU ms/rec':>12}{'busy':>7}"
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
            f"{f['cpu_ms_per_record']:>12.2f}{f['busy_share_of_a_core']:>7.0%}"
            f"{f['raw_loop_records_per_s']:>12,.0f}"
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
    lines += [
        "  busy: the stage's share of a core over its steady state, its whole input waiting",
        "",
        f"wall time {wall:.1f} s",
        "",
    ]
    return "\n".join(lines)


def figures(options: argparse.Namespace, results: dict[str, StageResult]) -> dict[str, object]:
    """The named figures of ``--json``."""
    return {
        "records": options.records,
        "cpus": os.cpu_count(),
        "profiled": options.profile,
        "stages": {name: result.figures() for name, result in results.items()},
    }
