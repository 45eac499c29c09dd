"""Kafka Streams' task semantics for both stream processors: the partition lifecycle.

A task is the state of the partitions a processor was assigned. The guarantees:

- **Restored before handled.** An assigned partition is paused (``consumer.pause``) until
  its state is restored; only ready partitions' records are handled, punctuated or
  committed. The restore runs from the processor's loop (``settle``), never from the
  assignment callback (aiokafka logs and ignores what a callback raises). A failed
  restore keeps the partition paused and is tried again with backoff: its records are
  never handled without state, never dead-lettered for missing state, and no commit
  passes over them. A partition whose state must be rebuilt after a failure
  (``reset``) is sought back to its committed offset, whether or not the restore works.
- **Closed dirty on a lost membership.** A refused commit, a generation reset by the
  coordinator (aiokafka 0.14 has no ``on_partitions_lost``: a revocation seen with
  generation -1, or a generation changed under a batch, says the member was expelled)
  closes every task dirty (``lose_membership``): state dropped without a flush or a copy,
  the records fetched and not handled are not processed, nothing is punctuated, until
  the next assignment.
- **A revocation does not wait past the rebalance.** The loop holds ``lock`` for bounded
  steps (a settle, one fetch's records handled, one punctuation) and looks at
  ``interrupt`` between them; transient-failure retries and back-offs end when it is
  set. The revoke callback sets it, then waits for ``lock`` and for the outputs still in
  flight (``before_close``, which commits them) at most half the rebalance timeout in
  all: in time, the tasks are closed clean (their state is committed) or dirty if the
  membership was lost or what was in flight could not be committed; too late, the
  callback marks them dirty and returns, and the loop, which checks ``current`` before
  it flushes state or commits, gives up its step and closes them dirty itself.

Assignment callbacks only record the new assignment (no lock, no I/O besides pausing),
so a rebalance never waits on a restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

from socialcrm.kafka.handling import Backoff
from socialcrm.state.fencing import Writer

log = logging.getLogger(__name__)

Partitions = frozenset[TopicPartition]


class TaskState(Protocol):
    """The one partition-state protocol the task lifecycle drives (each processor adapts
    its service-facing protocol to it), always under the processor's lock."""

    async def restore(self, owned: Partitions) -> None:
        """Make the state held that of exactly ``owned``, restoring what is missing."""

    async def close_clean(self, partitions: Partitions) -> None:
        """Give up ``partitions``: all their state is committed (a copy may be kept)."""

    async def close_dirty(self, partitions: Partitions) -> None:
        """Drop ``partitions``' state and any copy: it may hold writes of records whose
        outputs or offsets were not committed."""


def writer_of(consumer: AIOKafkaConsumer) -> Writer:
    """The consumer's group generation and member id (generation -1: no membership)."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:
        return Writer(-1, "")
    return Writer(int(coordinator.generation), str(coordinator.member_id))


class Tasks:
    """The tasks of one processor. ``scope``: which partitions share a state and are
    restored or reset together: ``"number"`` (co-partitioned topics, state per partition
    number), ``"all"`` (one state for everything held) or ``"partition"`` (stateless)."""

    def __init__(self, *, name: str, state: TaskState | None, scope: str = "number") -> None:
        self.name = name
        self.state = state
        self.scope = scope if state is not None else "partition"
        self.lock = asyncio.Lock()
        # Set while stopping or revoking: transient retries and back-offs end early.
        self.interrupt = asyncio.Event()
        self.stopping = False
        self.revoking = False
        # Bumped by every rebalance callback and lost membership: a step that began in
        # another epoch must not commit.
        self.epoch = 0
        self.assigned: Partitions = frozenset()
        self.ready: Partitions = frozenset()
        self.writer = Writer(-1, "")
        self.rebalance_seconds = 5.0
        # Called under the lock at a revocation, with whether the membership was lost and
        # the seconds left: commits what the processor has in flight; False: close dirty.
        self.before_close: Callable[[bool, float], Awaitable[bool]] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._restoring: set[TopicPartition] = set()
        self._rewinding: set[TopicPartition] = set()
        self._held: set[TopicPartition] = set()  # whose state may be in memory
        self._dirty = False
        self._awaiting_assignment = False
        self._backoff = Backoff()
        self._retry_at = 0.0

    def bind(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        timeout_ms = getattr(consumer, "_rebalance_timeout_ms", None) or 10_000
        self.rebalance_seconds = timeout_ms / 2000

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("tasks used before their consumer was bound")
        return self._consumer

    def stop(self) -> None:
        self.stopping = True
        self.interrupt.set()

    # The rebalance callbacks.

    async def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        lost = writer_of(self.consumer).generation < 0
        self.epoch += 1
        self.revoking = True
        self.interrupt.set()
        self.assigned = self.ready = frozenset()
        self._restoring.clear()
        self._rewinding.clear()
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.lock.acquire(), self.rebalance_seconds)
        except TimeoutError:
            log.error(
                "revocation could not wait for the batch in hand: its tasks close dirty",
                extra={"processor": self.name, "waited_s": self.rebalance_seconds},
            )
            self._dirty = True
            return
        try:
            left = self.rebalance_seconds - (time.monotonic() - started)
            committed = await self._close_in_flight(lost, left)
            await self._drop_held(clean=committed and not lost)
        finally:
            self._end_revoke()
            self.lock.release()

    async def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        self.epoch += 1
        self.assigned = frozenset(partitions)
        self.writer = writer_of(self.consumer)
        self._awaiting_assignment = False
        self._backoff.reset()
        self._retry_at = 0.0
        if self.state is None:
            self.ready = self.assigned
            return
        self.ready = frozenset()
        self._restoring = set(self.assigned)
        self._pause(self.assigned)

    # The processor's loop, under ``lock``.

    async def _close_in_flight(self, lost: bool, seconds: float) -> bool:
        if self.before_close is None:
            return True
        try:
            return await self.before_close(lost, max(seconds, 0.0))
        except Exception:
            log.exception("could not commit at a revocation", extra={"processor": self.name})
            return False

    async def settle(self) -> None:
        """Close what a late revocation left dirty; seek back and restore the partitions
        waiting for it, when their retry is due; resume those ready."""
        if self._dirty:
            await self._drop_held(clean=False)
            self._dirty = False
            self._end_revoke()
        pending = self._restoring | self._rewinding
        if self._awaiting_assignment or not pending or time.monotonic() < self._retry_at:
            return
        epoch = self.epoch
        failed = not await self._rewind()
        if self._restoring and self.state is not None:
            self._held |= self.assigned
            try:
                await self.state.restore(self.assigned)
            except Exception:
                log.exception(
                    "state restore failed; its partitions stay paused and it is tried again",
                    extra={"processor": self.name},
                )
                failed = True
            else:
                if epoch == self.epoch:
                    self._restoring.clear()
        if failed:
            self._retry_at = time.monotonic() + self._backoff.next_delay()
            return
        if epoch != self.epoch:
            return
        self._backoff.reset()
        done = pending - self._restoring - self._rewinding
        self.ready = self.assigned - self._restoring - self._rewinding
        with contextlib.suppress(IllegalStateError):
            self.consumer.resume(*done)

    async def reset(self, partitions: Collection[TopicPartition], why: str) -> None:
        """Records of ``partitions`` (and of those sharing their state) are processed again
        from their committed offsets, after their state is restored again. Their state is
        dropped even if they were revoked meanwhile: the revocation waiting must not keep it."""
        affected = self._together(partitions, self.assigned)
        dropped = self._together(partitions, self._held)
        if not affected and not dropped:
            return
        log.warning(
            "partitions go back to their committed offsets; their state is restored again",
            extra={"processor": self.name, "partitions": _names(affected), "reason": why},
        )
        self.ready -= affected
        self._pause(affected)
        self._rewinding |= affected
        if self.state is not None:
            self._restoring |= affected
            self._held -= dropped
            await self.state.close_dirty(frozenset(affected | dropped))

    async def lose_membership(self, why: str) -> None:
        """Close every task dirty; nothing more until the next assignment."""
        log.error(
            "group membership lost: every task closes dirty until the next assignment",
            extra={"processor": self.name, "reason": why},
        )
        self.epoch += 1
        self.ready = frozenset()
        self._restoring.clear()
        self._rewinding.clear()
        self._awaiting_assignment = True
        await self._drop_held(clean=False)

    async def close(self, *, clean: bool) -> None:
        """Close every task (shutdown, a fenced member): clean when all their state is
        committed."""
        await self._drop_held(clean=clean)

    def current(self, epoch: int) -> bool:
        """Whether a step begun in ``epoch`` may still flush and commit: no rebalance or
        lost membership since, and the generation it was assigned in still holds."""
        return (
            epoch == self.epoch
            and not self._dirty
            and not self._awaiting_assignment
            and writer_of(self.consumer).generation == self.writer.generation
        )

    def interrupted(self, epoch: int) -> bool:
        """Whether the loop must leave the rest of its fetch unhandled."""
        return self.interrupt.is_set() or epoch != self.epoch

    @property
    def held(self) -> Partitions:
        """The partitions whose state may be in memory."""
        return frozenset(self._held)

    # Internals.

    def _together(
        self, partitions: Collection[TopicPartition], among: Collection[TopicPartition]
    ) -> set[TopicPartition]:
        """The partitions of ``among`` that share a state with some of ``partitions``
        (scope ``"all"``: every one)."""
        if self.scope == "all":
            return set(among)
        if self.scope == "number":
            numbers = {p.partition for p in partitions}
            return {p for p in among if p.partition in numbers}
        return set(partitions) & set(among)

    async def _rewind(self) -> bool:
        """Seek each partition waiting for it back to its committed offset; False when
        some could not be (tried again with the restore)."""
        for partition in sorted(self._rewinding):
            try:
                committed = await self.consumer.committed(partition)
                if committed is None:
                    await self.consumer.seek_to_beginning(partition)
                else:
                    self.consumer.seek(partition, committed)
            except IllegalStateError:
                pass  # revoked meanwhile
            except Exception:
                log.exception(
                    "could not go back to the committed offset; tried again",
                    extra={"processor": self.name, "partition": _names([partition])},
                )
                return False
            self._rewinding.discard(partition)
        return True

    async def _drop_held(self, *, clean: bool) -> None:
        held, self._held = frozenset(self._held), set()
        self.ready = frozenset()
        if self.state is None or not held:
            return
        try:
            if clean:
                await self.state.close_clean(held)
            else:
                await self.state.close_dirty(held)
        except Exception:
            # The next restore makes the state that of the assignment anyway.
            log.exception("could not close tasks", extra={"processor": self.name})

    def _end_revoke(self) -> None:
        self.revoking = False
        if not self.stopping:
            self.interrupt.clear()

    def _pause(self, partitions: Collection[TopicPartition]) -> None:
        for partition in partitions:
            with contextlib.suppress(IllegalStateError):
                self.consumer.pause(partition)


class TaskListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands the consumer's rebalance callbacks to the tasks."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self.tasks.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self.tasks.on_assigned(assigned)


def _names(partitions: Collection[TopicPartition]) -> list[str]:
    return sorted(f"{p.topic}-{p.partition}" for p in partitions)
