"""A stream service run alone, as the local stack runs it, optionally under cProfile; and
the top functions of its profile."""

from __future__ import annotations

import contextlib
import io
import pstats
import re
import signal
import subprocess
import sys
from pathlib import Path

from socialcrm_devstack.processes import ManagedProcess
from socialcrm_devstack.stack import SERVICES, LocalStack

PROFILE_TOP = 12
PROFILE_WRITE_SECONDS = 30
STARTUP_FRAMES = re.compile(
    r"importlib|marshal\.loads|builtins\.(exec|compile|__build_class__)|posix\.stat|open_code"
    r"|create_dynamic|typing\.py"
)


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
