"""What a service runs for its lifetime: components, and tasks in the background.

A component starts with the service, stops with it (in reverse order) and says in
``check`` whether it can do its work (readiness); ``alive`` (optional) is false once it
died (liveness). Background and periodic tasks are components written once here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check(self) -> None:
        """Raise when the component cannot do its work (readiness)."""


class BackgroundTask:
    """Runs ``work`` (a coroutine that loops until cancelled) from start to stop."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self.work = work
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async def run() -> None:
            await self.work()

        self._task = asyncio.create_task(run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        if not self.alive:
            raise RuntimeError(f"{self.name} is not running")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()


class PeriodicTask(BackgroundTask):
    """Calls ``tick`` every ``interval_seconds``; a failing tick is logged and the next one
    runs on time."""

    def __init__(
        self, name: str, interval_seconds: float, tick: Callable[[], Awaitable[None]]
    ) -> None:
        super().__init__(name, self._every_interval)
        self.interval_seconds = interval_seconds
        self.tick = tick

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await self.tick()
            except Exception:
                log.exception("periodic task failed; it runs again", extra={"task": self.name})
