"""The owner of the SLA state of some partitions: its single-writer path and its timers.

Only the replica assigned partition N of the router's inputs holds, changes and escalates
the interactions of partition N. Everything here runs from the stream processor's task
(handlers, punctuations, rebalance callbacks one at a time), so nothing reads a state and
writes it back across an await. Every state written is stamped with the owner's clock and
has a timer: its next escalation level, else its expiry (expiry.py), when the punctuation
deletes it (a tombstone in the changelog, so that restores shrink too).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, ItemsView, Sequence
from datetime import datetime

from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.state import Codec, PartitionedStore
from socialcrm.v1.routed_pb2 import InteractionSlaState
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import (
    ERASED_AUTHOR,
    KINDS,
    author_key_of,
    erased_author,
    erased_since,
    is_author_key,
    is_erased_author,
    is_expired,
    kind_of,
    occurred_at,
)
from socialcrm_router.metrics import SLA_ESCALATIONS, SLA_TIMERS, STATE_KEYS
from socialcrm_router.sla import erased, escalation_alert, escalations_due_by, is_closed, next_due
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
# Expiries cost a changelog tombstone each and no output: more of them per scan, so that
# they keep up with a steady 150 interactions a second.
MAX_TIMERS_PER_SCAN = 2_000


class SlaOwner:
    """The partition listener and punctuator of the router's stream processor."""

    def __init__(
        self,
        store: PartitionedStore[InteractionSlaState],
        timers: SlaTimers,
        clock: Callable[[], datetime],
        interval_seconds: float,
        erasures: ErasedAuthors,
    ) -> None:
        self.store = store
        self.timers = timers
        self.clock = clock
        self.interval_seconds = interval_seconds
        self.erasures = erasures
        self._kinds: dict[int, Counter[str]] = {}
        store.on_restored = self.restored

    def restored(self, partition: int, items: ItemsView[str, InteractionSlaState]) -> None:
        """The store's restore callback: index the partition's timers and kinds."""
        self.timers.rebuild(partition, (state for _, state in items))
        self._kinds[partition] = Counter(kind_of(state) for _, state in items)
        for key, state in items:
            if is_erased_author(state):
                self.erasures.note(key, erased_since(state))
        self._publish_gauges()

    def get(self, partition: int, interaction_event_id: str) -> InteractionSlaState | None:
        """The state of an interaction (an author's tombstone is no interaction)."""
        if is_author_key(interaction_event_id):
            return None
        return self.store.get(partition, interaction_event_id)

    def put(self, partition: int, state: InteractionSlaState) -> None:
        state.updated_at.CopyFrom(contract.timestamp(self.clock()))
        key = state.interaction_event_id
        self._count(partition, self.store.get(partition, key), -1)
        self._count(partition, state, +1)
        self.store.put(partition, key, state)
        self.timers.schedule(partition, state)

    def delete(self, partition: int, key: str) -> None:
        self._count(partition, self.store.get(partition, key), -1)
        self.store.put(partition, key, None)

    def _count(self, partition: int, state: InteractionSlaState | None, delta: int) -> None:
        if state is not None:
            self._kinds.setdefault(partition, Counter())[kind_of(state)] += delta

    def live_keys(self) -> dict[str, int]:
        """Keys held per kind, over the partitions owned."""
        total: Counter[str] = Counter()
        for partition in self.store.owned:
            total.update(self._kinds.get(partition, Counter()))
        return {kind: total[kind] for kind in KINDS}

    def _publish_gauges(self) -> None:
        for kind, count in self.live_keys().items():
            STATE_KEYS.labels(kind).set(count)
        SLA_TIMERS.set(self.timers.pending())

    def erased_before(self, state: InteractionSlaState) -> bool:
        """Whether the author of ``state`` was erased after it occurred (a message in flight
        when the erasure was requested)."""
        key = author_key_of(state)
        since = None if key is None else self.erasures.erased_at(key)
        return since is not None and occurred_at(state) <= since

    def erase(
        self, partition: int, state: InteractionSlaState | None, named: Sequence[str] = ()
    ) -> None:
        """Forget the author of ``state`` and the authors ``named`` (tombstone keys), here and
        in whatever arrives of theirs later. Without state (never tracked, or expired) only
        the named authors are known: the erase command names them for that reason."""
        now = self.clock()
        keys = set(named)
        if state is not None:
            self.put(partition, erased(state, now))
            own = author_key_of(state)
            if own is not None:
                keys.add(own)
        for key in sorted(keys):
            held = self.store.get(partition, key)
            self.put(partition, erased_author(key, now, (held.revision if held else 0) + 1))
            self.erasures.note(key, now)

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
        self._publish_gauges()

    async def on_revoked(self, partitions: set[int]) -> None:
        self.store.revoke(partitions)
        self._forget(partitions)

    async def on_lost(self, partitions: set[int]) -> None:
        self.store.lose(partitions)
        self._forget(partitions)

    def _forget(self, partitions: set[int]) -> None:
        self.timers.drop(partitions)
        for partition in partitions:
            self._kinds.pop(partition, None)
        self._publish_gauges()

    def _apply_new_erasures(self) -> None:
        """Tombstones written since the last scan (by any owner) reach the states held."""
        new = self.erasures.take_new()
        if not new:
            return
        for partition in sorted(self.store.owned):
            for key, state in list(self.store.items(partition)):
                if is_erased_author(state) or is_closed(state):
                    continue
                author = author_key_of(state)
                since = None if author is None else new.get(author)
                if since is not None and occurred_at(state) <= since:
                    self.put(partition, erased(state, self.clock()))
                    log.info("state of an erased author forgotten", extra={"key": key})

    def _due(self, partition: int, key: str, now: datetime) -> list[Message]:
        """What the timer of ``key`` does now: fire its levels due (their events), or
        delete the state expired, or schedule it again."""
        state = self.store.get(partition, key)
        if state is None:
            return []
        pending = None if is_erased_author(state) else next_due(state)
        if pending is None:
            if is_expired(state, self.timers.horizons, now.timestamp()):
                self.delete(partition, key)
                if kind_of(state) == ERASED_AUTHOR:
                    self.erasures.forget(key)
            else:
                self.timers.schedule(partition, state)
            return []
        return self.escalate(partition, state, now)[0]

    async def punctuate(self, caught_up: set[int]) -> Sequence[Message]:
        """Escalations due now in the partitions whose inputs were all read (a reply
        already published is then known), states expired, erasures applied."""
        now = self.clock()
        at = now.timestamp()
        self._apply_new_erasures()
        self.erasures.expire(at)
        outputs: list[Message] = []
        escalations_left, timers_left = MAX_ESCALATIONS_PER_SCAN, MAX_TIMERS_PER_SCAN
        for partition in sorted(caught_up & self.store.owned):
            while escalations_left > 0 and timers_left > 0:
                keys = self.timers.pop_due(partition, at, min(escalations_left, timers_left))
                if not keys:
                    break
                timers_left -= len(keys)
                for key in keys:
                    fired = self._due(partition, key, now)
                    if fired:
                        escalations_left -= 1
                        outputs += fired
        self._publish_gauges()
        return outputs
