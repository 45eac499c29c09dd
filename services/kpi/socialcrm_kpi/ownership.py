"""What the kpi service does as its input partitions come and go: the state of the
transactional processor (``socialcrm.kafka.transactional.TransactionalState``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from google.protobuf.message import Message

from socialcrm.kafka.transactional import PartitionId
from socialcrm_kpi.handlers import KpiHandlers
from socialcrm_kpi.state import KpiStateStore


class KpiOwnership:
    """Restores the engine when the partitions are assigned, drops it when they go, and
    writes its changes inside each batch's transaction. ``on_restored`` runs after a
    restore (to refresh the gauges).

    Revoked or lost, the state goes the same way: engine and store copy dropped, the next
    assignment restores from the committed changelog (``KpiStateStore.drop`` says why a
    revocation cannot keep a copy)."""

    def __init__(
        self,
        handlers: KpiHandlers,
        store: KpiStateStore,
        on_restored: Callable[[], None] = lambda: None,
    ) -> None:
        self.handlers = handlers
        self.store = store
        self.on_restored = on_restored

    async def assigned(self, partitions: frozenset[PartitionId]) -> None:
        self.handlers.reset()
        await self.store.restore(self.handlers.engine)
        self.handlers.assign(partitions, self.handlers.clock())
        self.on_restored()

    async def revoked(self, partitions: frozenset[PartitionId]) -> None:
        self.store.drop()
        self.handlers.reset()

    async def lost(self, partitions: frozenset[PartitionId]) -> None:
        self.store.drop()
        self.handlers.reset()

    def punctuate(self, now: float, caught_up: Collection[PartitionId]) -> Sequence[Message]:
        return self.handlers.punctuate(now, caught_up)

    async def commit_state(self) -> None:
        await self.store.write(self.handlers.engine)
