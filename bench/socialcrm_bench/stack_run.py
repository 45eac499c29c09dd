"""The run of a benchmark: its own local stack in a temporary folder, started and always
stopped, and the exit status (0 completed, 1 failed, 130 interrupted by Ctrl-C or SIGTERM)."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from socialcrm_bench.report import say
from socialcrm_devstack.infra import kafka_version
from socialcrm_devstack.stack import SERVICES, LocalStack


def interrupt_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def temporary_stack(prefix: str) -> Iterator[LocalStack]:
    """A local stack (not started) on free ports in a temporary folder, so that a bench runs
    next to bin/demo; SIGTERM interrupts the bench as Ctrl-C does."""
    signal.signal(signal.SIGTERM, interrupt_on_sigterm)
    with tempfile.TemporaryDirectory(prefix=prefix) as work_dir:
        yield LocalStack(Path(work_dir), ephemeral_ports=True)


def start_stack(stack: LocalStack, services: tuple[str, ...] | None = None) -> None:
    """Kafka, SecantusDB, then the services (every one, or ``services``) side by side."""
    began = time.monotonic()
    say(f"[bench] starting Kafka {kafka_version()} on {stack.kafka.bootstrap}")
    stack.kafka.start()
    say(f"[bench] Kafka ready after {time.monotonic() - began:.1f} s; starting SecantusDB")
    stack.mongo.start()
    say(f"[bench] SecantusDB ready after {time.monotonic() - began:.1f} s; starting services")
    names = services if services is not None else tuple(spec.name for spec in SERVICES)
    # Each service creates the missing topics and tolerates another one doing so too,
    # so they can start side by side.
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(stack.start_service, name) for name in names}
        for name, future in futures.items():
            future.result()
            say(f"[bench]   {name} ready at {stack.url(name)}")
    say(f"[bench] stack ready after {time.monotonic() - began:.1f} s")


def exit_status(tag: str, bench: Callable[[], None], stop: Callable[[], None]) -> int:
    """Run ``bench``, then ``stop`` whatever happened; 0 when the run completed (whatever
    the figures), 1 when it failed, 130 when it was interrupted."""
    try:
        bench()
        return 0
    except KeyboardInterrupt:
        say(f"[{tag}] interrupted")
        return 130
    except Exception:
        traceback.print_exc()
        say(f"[{tag}] failed (see above)")
        return 1
    finally:
        stop()
