"""The owner of the SLA state of some partitions: its single-writer path and its timers.

Only the replica assigned partition N of the router's inputs holds, changes and escalates
the interactions of partition N. Everything here runs from the stream processor's task
(handlers, punctuations, rebalance callbacks one at a time), so nothing reads a state and
writes it back across an await.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, ItemsView, Sequence
from datetime import datetime

from google.protobuf.message import Message

from socialcrm.state import Codec, PartitionedStore
from socialcrm.v1.routed_pb2 import InteractionSlaState
from socialcrm_router.metrics import SLA_ESCALATIONS, SLA_TIMERS
from socialcrm_router.sla import (
    escalation_alert,
    escalations_due_by,
    is_closed,
    is_placeholder,
)
from socialcrm_router.timers import SlaTimers

log = logging.getLogger(__name__)

SLA_STATE_CODEC = Codec[InteractionSlaState](
    encode=InteractionSlaState.SerializeToString, decode=InteractionSlaState.FromString
)

# Due timers handled per punctuation at the most, the earliest first; the others wait for
# the next one. Thousands of timers falling due together (after an outage, or a backlog
# replayed) otherwise kept the router busy with one scan for tens of seconds, routing
# starved: found in the suite, where ~10,000 interactions with past deadlines fell due at once.
MAX_ESCALATIONS_PER_SCAN = 200


class SlaOwner:
    """The partition listener and punctuator of the router's stream processor."""

    def __init__(
        self,
        store: PartitionedStore[InteractionSlaState],
        timers: SlaTimers,
        clock: Callable[[], datetime],
        interval_seconds: float,
    ) -> None:
        self.store = store
        self.timers = timers
        self.clock = clock
        self.interval_seconds = interval_seconds
        store.on_restored = self.restored

    def restored(self, partition: int, items: ItemsView[str, InteractionSlaState]) -> None:
        """The store's restore callback: index the partition's timers."""
        self.timers.rebuild(partition, (state for _, state in items))
        SLA_TIMERS.set(self.timers.pending())

    def get(self, partition: int, interaction_event_id: str) -> InteractionSlaState | None:
        return self.store.get(partition, interaction_event_id)

    def put(self, partition: int, state: InteractionSlaState) -> None:
        self.store.put(partition, state.interaction_event_id, state)
        self.timers.schedule(partition, state)

    def escalate(
        self, partition: int, state: InteractionSlaState, by: datetime
    ) -> tuple[list[Message], InteractionSlaState]:
        """Fire the levels of ``state`` due by ``by`` and not fired yet: their events, and
        the state after them. That state is written when a level fired, else scheduled
        again (the heap entry that brought it here was stale)."""
        escalations, after = escalations_due_by(state, by, self.clock())
        if not escalations:
            self.timers.schedule(partition, state)
            return [], state
        outputs: list[Message] = []
        for escalation in escalations:
            outputs += [escalation, escalation_alert(escalation, "sla_escalation")]
            SLA_ESCALATIONS.labels(str(escalation.level)).inc()
            log.warning(
                "SLA escalation",
                extra={
                    "interaction_event_id": state.interaction_event_id,
                    "escalation_level": escalation.level,
                    "to_queue": escalation.to_queue,
                },
            )
        self.put(partition, after)
        return outputs, after

    async def on_assigned(self, partitions: set[int]) -> None:
        await self.store.assign(partitions)
        SLA_TIMERS.set(self.timers.pending())

    async def on_revoked(self, partitions: set[int]) -> None:
        self.store.revoke(partitions)
        self.timers.drop(partitions)
        SLA_TIMERS.set(self.timers.pending())

    async def on_lost(self, partitions: set[int]) -> None:
        self.store.lose(partitions)
        self.timers.drop(partitions)
        SLA_TIMERS.set(self.timers.pending())

    async def punctuate(self, caught_up: set[int]) -> Sequence[Message]:
        """Escalations due now in the partitions whose inputs were all read (a reply
        already published is then known), and markers expired."""
        now = self.clock()
        at = now.timestamp()
        outputs: list[Message] = []
        budget = MAX_ESCALATIONS_PER_SCAN
        for partition in sorted(caught_up & self.store.owned):
            for key in self.timers.pop_due(partition, at, budget):
                budget -= 1
                state = self.store.get(partition, key)
                if state is None:
                    continue
                if is_closed(state) or is_placeholder(state):
                    if (self.timers.when(state) or 0.0) <= at:
                        self.store.put(partition, key, None)
                    else:
                        self.timers.schedule(partition, state)
                    continue
                outputs += self.escalate(partition, state, now)[0]
            if budget <= 0:
                break
        SLA_TIMERS.set(self.timers.pending())
        return outputs
