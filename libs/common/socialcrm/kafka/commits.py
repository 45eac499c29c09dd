"""How the at-least-once processor commits while it works ahead (``StreamProcessor``).

The processor does not wait for a batch's acknowledgements before it fetches and handles
the next one (``in_flight``). Its commits follow the acknowledgements instead: each
partition up to the first record whose outputs were not all acknowledged, oldest batch
first, so "committed only after acknowledged" holds; that record and all after it are
read again. A stateful processor's flush writes the state of every record handled, so
it flushes and commits only once everything in flight is acknowledged, and a partition
number with a failure commits nothing: its state goes back to the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from aiokafka.structs import OffsetAndMetadata

from socialcrm.kafka.handling import Backoff
from socialcrm.kafka.in_flight import Batch, InFlight
from socialcrm.kafka.tasks import Tasks
from socialcrm.state.fencing import FencingError

log = logging.getLogger(__name__)

# A commit (or a fenced state write) refused because the group moved on without this member.
REFUSED = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    FencingError,
)


class CommitsInOrder:
    """The commit side of ``StreamProcessor`` (which sets these attributes)."""

    tasks: Tasks
    topic: str
    routes: dict[str, Any]
    before_commit: Callable[[], Awaitable[None]] | None
    stateful: bool
    _in_flight: InFlight
    _sought: set[TopicPartition]
    _committed: dict[TopicPartition, tuple[int, int]]
    _backoff: Backoff
    _stopping: asyncio.Event

    @property
    def consumer(self) -> AIOKafkaConsumer:
        raise NotImplementedError

    async def _still_owner(self, epoch: int) -> bool:
        """Whether a step begun in ``epoch`` may flush state and commit. A rebalance since
        (its revocation gave up waiting): no, its tasks close dirty at the next settle. A
        generation reset under it (expelled): no, and every task closes dirty now."""
        if self.tasks.current(epoch):
            return True
        if epoch == self.tasks.epoch:
            await self.tasks.lose_membership("the group generation changed under a batch")
        return False

    async def _drain(self, epoch: int) -> None:
        """Until nothing handled is in flight (committed, or gone back to), or a shutdown
        or revocation interrupts."""
        while self._in_flight and not self.tasks.interrupted(epoch):
            await self._harvest(epoch, wait=True)

    async def _drain_at_stop(self, epoch: int, seconds: float) -> None:
        """Commit what is acknowledged within ``seconds``; the rest is read again."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._in_flight.wait_all(), seconds)
        await self._harvest(epoch, wait=False)

    async def _harvest(self, epoch: int, *, wait: bool) -> None:
        """Commit the handled records whose outputs were acknowledged, in order per
        partition, up to the first that was not; go back to that one. ``wait``: for the
        oldest batch (a stateful processor: for all)."""
        flight = self._in_flight
        flight.drop_unless(self.tasks.ready, epoch)
        if not flight:
            return
        if not self.stateful:
            if wait:
                await flight.wait_oldest(self.tasks.interrupt)
            taken = flight.take_done()
        else:
            # The state holds the writes of every record handled, and a flush writes them
            # all: it is flushed and committed only once every output is acknowledged.
            if wait:
                await flight.wait_all(self.tasks.interrupt)
            if not flight.all_done():
                return
            taken = flight.take_all()
        if taken:
            await self._complete(taken, epoch, revoking=False)

    async def _close_in_flight(self, lost: bool, seconds: float) -> bool:
        """At a revocation, under the lock: commit what was acknowledged within ``seconds``,
        so that the tasks close clean; False when they must close dirty."""
        if lost or not self._in_flight:
            self._in_flight.take_all()
            return True
        try:
            await asyncio.wait_for(self._in_flight.wait_all(), seconds)
        except TimeoutError:
            log.error(
                "outputs still in flight at a revocation: not committed, its tasks close dirty",
                extra={"topic": self.topic, "waited_s": seconds},
            )
            self._in_flight.take_all()
            return False
        return await self._complete(self._in_flight.take_all(), self.tasks.epoch, revoking=True)

    async def _complete(
        self, taken: dict[TopicPartition, list[Batch]], epoch: int, *, revoking: bool
    ) -> bool:
        """Commit each partition's batches up to their first record not acknowledged, then
        go back to that record (a stateful partition number: to its last commit, its state
        restored again), after a pause. False when nothing could be committed."""
        offsets: dict[TopicPartition, int] = {}
        failed: dict[TopicPartition, int] = {}  # where each partition must resume
        for partition, chain in taken.items():
            for batch in chain:
                acknowledged = await batch.route.outputs.acknowledged(
                    partition, batch.records, batch.sent, one_at_a_time=batch.one_at_a_time
                )
                if acknowledged is not None:
                    offsets[partition] = acknowledged
                if batch.retry or acknowledged != batch.records[-1].offset:
                    failed[partition] = (
                        batch.records[0].offset if acknowledged is None else acknowledged + 1
                    )
                    self._in_flight.drop([partition])  # the later batches are read again
                    break
        firsts = {partition: chain[0].records[0].offset for partition, chain in taken.items()}
        stateful = self.stateful
        if stateful and failed:
            # State writes cannot be told apart by record: a stateful partition number
            # commits whole or not at all, and its state goes back to the last commit.
            numbers = {p.partition for p in failed}
            offsets = {p: o for p, o in offsets.items() if p.partition not in numbers}
            await self.tasks.reset(list(failed), "outputs not acknowledged")
        committed = await self._commit(offsets, epoch, revoking=revoking)
        if not committed and not self.tasks.current(epoch):
            return False  # no longer the owner: the records are read again where they go
        if not committed and offsets:
            if stateful:
                await self.tasks.reset(list(offsets), "could not commit")
            failed.update({p: firsts[p] for p in offsets})
        if revoking or not failed:
            if not failed:
                self._backoff.reset()
            return committed
        for partition, offset in failed.items():
            self.routes[partition.topic].retries.inc()
            if not stateful:
                with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                    self.consumer.seek(partition, offset)
                self._sought.add(partition)
                self._in_flight.drop([partition])
        if not self._stopping.is_set():
            await self._backoff.wait()
        return committed

    async def _commit(
        self, offsets: dict[TopicPartition, int], epoch: int, *, revoking: bool
    ) -> bool:
        """Flush the state, then commit each partition up to its offset; False when the
        member stopped being the owner meanwhile or the commit failed (nothing committed)."""
        if not offsets:
            return True
        try:
            if not revoking and not await self._still_owner(epoch):
                return False
            if self.before_commit is not None:
                await self.before_commit()
                if not revoking and not await self._still_owner(epoch):
                    return False
            for partition, offset in offsets.items():
                self.routes[partition.topic].outputs.committed(partition, offset)
            await self.consumer.commit(
                {p: OffsetAndMetadata(offset + 1, "") for p, offset in offsets.items()}
            )
        except REFUSED as error:
            # Expelled while the batch was in hand: the partition's new owner starts
            # again from the last committed offset, and handlers are idempotent.
            await self.tasks.lose_membership(f"commit refused: {type(error).__name__}")
            return False
        except Exception:
            log.exception(
                "could not commit; the records will be processed again",
                extra={"topic": self.topic, "partitions": sorted(map(str, offsets))},
            )
            return False
        for partition, offset in offsets.items():
            self._committed[partition] = (epoch, offset + 1)
        return True
