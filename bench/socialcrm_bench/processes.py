"""CPU and memory of processes, read from /proc (Linux), with their descendants."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from socialcrm_devstack.stack import SERVICES, LocalStack


@dataclass(frozen=True)
class ProcStat:
    cpu_seconds: float
    peak_rss_kib: int


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _tree(pid: int, children: dict[int, list[int]]) -> Iterator[int]:
    yield pid
    for child in children.get(pid, []):
        yield from _tree(child, children)


def _status_kib(pid: int, field_name: str) -> int:
    """A ``VmXXX:`` line of /proc/<pid>/status, summed over the process tree."""
    total = 0
    for member in _tree(pid, _children()):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(field_name):
                total += int(line.split()[1])
    return total


def proc_stat(pid: int) -> ProcStat | None:
    """CPU seconds (user+system, with its descendants) and peak RSS (VmHWM, summed over
    the process tree) of a running process; None when it is gone."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    peak = 0
    try:
        for index, member in enumerate(_tree(pid, _children())):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            # After the command: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            if index == 0:
                cpu += (int(fields[13]) + int(fields[14])) / ticks
        peak = _status_kib(pid, "VmHWM:")
    except (OSError, IndexError, ValueError):
        if not Path(f"/proc/{pid}").exists():
            return None
    return ProcStat(cpu, peak)


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of a process (not its descendants) have spent runnable but
    waiting for a CPU (/proc/<pid>/task/*/schedstat, second field): a stage that is behind
    yet idle waits on I/O; one that waits here is short of CPU. 0 when unreadable."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for thread in threads:
        try:
            total += int(Path(f"/proc/{pid}/task/{thread}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended between the listing and the read
    return total / 1e9


def rss_kib(pid: int) -> int | None:
    """Resident memory now (VmRSS, summed over the process tree); None when it is gone."""
    try:
        return _status_kib(pid, "VmRSS:")
    except (OSError, IndexError, ValueError):
        return None


def watched_processes(stack: LocalStack) -> dict[str, int]:
    """Name -> pid of each service, the broker and the database."""
    pids: dict[str, int] = {}
    for spec in SERVICES:
        managed = stack.services.get(spec.name)
        if managed is not None and managed.process is not None:
            pids[spec.name] = managed.process.pid
    if stack.kafka.process is not None and stack.kafka.process.process is not None:
        pids["kafka"] = stack.kafka.process.process.pid
    if stack.mongo.process is not None and stack.mongo.process.process is not None:
        pids["secantusdb"] = stack.mongo.process.process.pid
    return pids


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def self_peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
