"""The periodic scan that fires SLA escalations from the durable timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter

from socialcrm.kafka import EventProducer
from socialcrm.v1.routed_pb2 import InteractionSlaState
from socialcrm_router.sla import (
    ESCALATION_SUMMARY,
    due_levels,
    escalated,
    escalation_alert,
    escalation_event,
)
from socialcrm_router.state import SlaStateStore

log = logging.getLogger(__name__)

# Due timers handled per scan at the most; a scan that hit it runs again at once. Thousands of
# timers falling due together (after an outage, or a backlog replayed) otherwise kept the
# router's loop busy with one scan for tens of seconds, routing and its API starved: found
# in the suite, where ~10,000 interactions with past deadlines fell due in one scan.
MAX_ESCALATIONS_PER_SCAN = 200

SLA_ESCALATIONS = Counter(
    "socialcrm_router_sla_escalations_total", "SLA escalations fired, by level.", ["level"]
)


class SlaEscalator:
    name = "sla-escalator"

    def __init__(
        self,
        store: SlaStateStore,
        producer: EventProducer,
        clock: Callable[[], datetime],
        interval_seconds: float,
    ) -> None:
        self.store = store
        self.producer = producer
        self.clock = clock
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("SLA escalation scan is not running")

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def scan_once(self) -> int:
        """Fire the due levels of at most MAX_ESCALATIONS_PER_SCAN timers, the earliest
        first; returns how many timers were due."""
        now = self.clock()
        due = self.store.pop_due(now, MAX_ESCALATIONS_PER_SCAN)
        try:
            await self._escalate(due, now)
        except Exception:
            self.store.reschedule(due)
            raise
        return len(due)

    async def _escalate(self, due: list[InteractionSlaState], now: datetime) -> int:
        pending: list[asyncio.Future[object]] = []
        fired = 0
        for state in due:
            levels = due_levels(state, now)
            for level in levels:
                escalation = escalation_event(state, level, ESCALATION_SUMMARY[level], now)
                pending.append(await self.producer.publish(escalation))
                pending.append(
                    await self.producer.publish(escalation_alert(escalation, "sla_escalation"))
                )
                SLA_ESCALATIONS.labels(str(level)).inc()
                log.warning(
                    "SLA escalation",
                    extra={
                        "interaction_event_id": state.interaction_event_id,
                        "escalation_level": level,
                        "to_queue": escalation.to_queue,
                    },
                )
                fired += 1
            if levels:
                pending.append(await self.store.put(escalated(state, max(levels))))
        await asyncio.gather(*pending)
        return fired

    async def _run(self) -> None:
        while True:
            handled = 0
            try:
                handled = await self.scan_once()
            except Exception:
                # The next scan retries: escalation ids are stable, so a repeat is harmless.
                log.exception("SLA escalation scan failed")
            # A full scan leaves more due: go on after letting routing and the API run.
            await asyncio.sleep(0 if handled >= MAX_ESCALATIONS_PER_SCAN else self.interval_seconds)
