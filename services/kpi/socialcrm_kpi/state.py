"""Durable state of the kpi service: partition 0 of the compacted changelog ``kpi.state.v2``.

One active instance holds every input partition (see the README), so its state is one
``PartitionedStore`` partition. Event sourcing with snapshots, under these keys:

- ``journal/<seq>`` (then ``journal/<seq>.1``, ... when it is long): the engine's journal
  entries (the facts applied and the watermark advances) of one batch;
- ``snapshot/<kind>.<n>``: the whole state, every ``snapshot_seconds``, each kind of
  entry (``engine.STATE_KINDS``) cut into parts of at most ``part_bytes``, then
  ``checkpoint`` naming the parts and the last journal seq they include, and tombstones
  for that journal and for parts no longer used.

Parts are cut by size, not by count: whatever the backlog (open items, dimension keys,
event ids), no record approaches the broker's limit, so a snapshot never aborts its
transaction for a record too large.

Everything a batch writes belongs to the batch's transaction, with its outputs and input
offsets: the changelog never holds the effect of a record whose offset was not committed,
and a restore (read committed) is exactly the state at the last committed offsets. No
offset bookkeeping is needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.state import Codec, PartitionedStore
from socialcrm.v1 import kpi_pb2
from socialcrm_kpi.backlog import open_entry
from socialcrm_kpi.engine import STATE_KINDS, KpiEngine
from socialcrm_kpi.windows import figures_entry

STATE_TOPIC = contract.KPI_STATE.name
STATE_PARTITION = 0
CHECKPOINT = "checkpoint"
JOURNAL = "journal/"
SNAPSHOT = "snapshot/"
# Snapshots written since parts are cut by size; older checkpoints have no format.
FORMAT = 2

_CODEC = Codec(encode=contract.encode, decode=kpi_pb2.KpiState.FromString)


def part_bytes(max_message_bytes: int) -> int:
    """Largest JSON text of one part for a broker taking records of ``max_message_bytes``:
    three quarters of it. The record adds its key, timestamp, trace headers and batch
    framing (well under a kilobyte); the rest is margin for a broker whose limit is a
    little lower than the setting says."""
    return max_message_bytes * 3 // 4


def pack(entries: Sequence[Any], max_bytes: int) -> list[str]:
    """``entries`` as JSON arrays, in order, each at most ``max_bytes`` long (ASCII: the
    length is the size in the record). An entry alone longer than that is refused."""
    parts: list[str] = []
    bodies: list[str] = []
    size = 2  # the brackets
    for body in _bodies(entries, max_bytes - 2):
        if bodies and size + 1 + len(body) > max_bytes:
            parts.append(f"[{','.join(bodies)}]")
            bodies, size = [], 2
        size += len(body) + (1 if bodies else 0)
        bodies.append(body)
    if bodies or not parts:
        parts.append(f"[{','.join(bodies)}]")
    return parts


def _bodies(entries: Sequence[Any], max_bytes: int, run: int = 512) -> Iterator[str]:
    """The JSON texts (without brackets) of runs of ``entries``, each at most ``max_bytes``:
    runs are serialised at once (one entry at a time is several times slower) and halved
    while too long."""
    for start in range(0, len(entries), run):
        yield from _halved(entries[start : start + run], max_bytes)


def _halved(entries: Sequence[Any], max_bytes: int) -> Iterator[str]:
    body = json.dumps(entries, separators=(",", ":"))[1:-1]
    if len(body) <= max_bytes:
        yield body
    elif len(entries) == 1:
        raise ValueError(f"a state entry of {len(body)} bytes exceeds {max_bytes}")
    else:
        half = len(entries) // 2
        yield from _halved(entries[:half], max_bytes)
        yield from _halved(entries[half:], max_bytes)


def _numbered(key: str) -> tuple[str, int]:
    """``name.<n>`` as (name, n); a bare name is part 0."""
    name, _, number = key.rpartition(".")
    if name and number.isdigit():
        return name, int(number)
    return key, 0


def restore_engine(engine: KpiEngine, documents: Mapping[str, Any]) -> int:
    """Restore ``engine`` from the documents of the changelog (key -> JSON value): the
    checkpoint's snapshot, then the later journal entries in order. The last journal seq."""
    checkpoint = documents.get(CHECKPOINT)
    included = 0
    if checkpoint is not None:
        parts = {part: documents[SNAPSHOT + part] for part in checkpoint["parts"]}
        if checkpoint.get("format") == FORMAT:
            state: dict[str, list[Any]] = {}
            for part in sorted(parts, key=_numbered):
                state.setdefault(_numbered(part)[0], []).extend(parts[part])
        else:
            state = _legacy_state(parts)
        engine.restore(state)
        included = int(checkpoint["seq"])
    journal: dict[int, dict[int, list[Any]]] = {}
    for key, value in documents.items():
        if key.startswith(JOURNAL):
            number, _, chunk = key.removeprefix(JOURNAL).partition(".")
            journal.setdefault(int(number), {})[int(chunk or "0")] = value
    for seq in sorted(seq for seq in journal if seq > included):
        chunks = journal[seq]
        engine.replay(entry for index in sorted(chunks) for entry in chunks[index])
    return max([included, *journal])


def _legacy_state(parts: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A snapshot of the former layout (parts by count: ``seen.<n>`` and ``spikes.<n>``
    maps, ``windows.<name>`` and its ``.<n>`` lists of windows, ``backlog.<n>`` shards) in
    the entries of ``KpiEngine.to_state``, so that an upgrade keeps the state."""
    state: dict[str, list[Any]] = {kind: [] for kind in STATE_KINDS}
    meta: dict[str, Any] = {}
    for key in sorted(parts, key=_numbered):
        part, (name, _) = parts[key], _numbered(key)
        if name == "seen":
            state["seen"].extend([k, at] for k, at in part.items())
        elif name == "spikes":
            state["spikes"].extend([k, series] for k, series in part.items())
        elif name == "backlog":
            state["backlog"].extend(open_entry(k, q, at) for k, (q, at) in part["open"].items())
        elif key in ("windows.interactions", "windows.replies"):
            meta[key.removeprefix("windows.")] = part
        elif name in ("windows.interactions", "windows.replies"):
            state[name].extend(
                figures_entry(
                    w["size"], w["step"], w["start"], f["dims"], f["sums"], f["histograms"]
                )
                for w in part
                for f in w["figures"]
            )
    state["meta"] = [meta]
    return state


def state_writes(
    engine: KpiEngine, held: Collection[str], seq: int, snapshot: bool, max_bytes: int
) -> tuple[dict[str, str | None], int]:
    """The records (JSON texts; None: delete) that make the changelog, holding the keys
    ``held``, hold ``engine``'s journal since the last call, and its whole state when
    ``snapshot``, none longer than ``max_bytes``; with the new last seq."""
    writes: dict[str, str | None] = {}
    journal = engine.take_journal()
    if journal:
        seq += 1
        if not snapshot:
            for chunk, text in enumerate(pack(journal, max_bytes)):
                writes[f"{JOURNAL}{seq}" + (f".{chunk}" if chunk else "")] = text
    if snapshot:
        names = []
        for kind, entries in engine.to_state().items():
            for number, text in enumerate(pack(entries, max_bytes)):
                names.append(f"{kind}.{number}")
                writes[SNAPSHOT + names[-1]] = text
        checkpoint = {"seq": seq, "parts": names, "format": FORMAT}
        writes[CHECKPOINT] = json.dumps(checkpoint)
        for key in held:
            stale_part = key.startswith(SNAPSHOT) and key.removeprefix(SNAPSHOT) not in names
            if stale_part or key.startswith(JOURNAL):
                writes[key] = None
    return writes, seq


class KpiStateStore:
    """The kpi engine's state in its changelog, written inside the batch's transaction."""

    def __init__(
        self,
        settings: ServiceSettings,
        producer: EventProducer,
        *,
        snapshot_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.snapshot_seconds = snapshot_seconds
        self.clock = clock
        self._store = PartitionedStore(
            name="kpi-state",
            settings=settings,
            producer=producer,
            topic=STATE_TOPIC,
            input_topic=None,
            codec=_CODEC,
            # One partition: one active instance holds all of kpi's state.
            partitions=1,
        )
        self.part_bytes = part_bytes(settings.kafka_max_message_bytes)
        self._seq = 0
        self._journal_since_snapshot = False
        self._snapshot_at = clock()

    async def create(self) -> None:
        """Make sure the changelog exists."""
        await self._store.start()

    async def restore(self, engine: KpiEngine) -> None:
        """Own the state and restore ``engine`` (empty) from the committed changelog."""
        await self._store.assign([STATE_PARTITION])
        documents = {
            key: json.loads(value.state_json) for key, value in self._store.items(STATE_PARTITION)
        }
        self._seq = restore_engine(engine, documents)
        self._journal_since_snapshot = any(key.startswith(JOURNAL) for key in documents)
        self._snapshot_at = self.clock()

    def drop(self) -> None:
        """Stop owning the state, keeping no copy: the next owner (this instance again,
        maybe) restores it from the committed changelog.

        A copy kept for a quicker restore would be wrong whenever the last transaction was
        aborted after its state was written, and a revocation cannot tell: the processor
        releases the partitions to a waiting rebalance before it aborts. The copy would
        hold the aborted batch's journal, its records would then count as already applied
        when read again, and the windows that batch closed would never be published."""
        self._store.lose([STATE_PARTITION])

    async def write(self, engine: KpiEngine) -> None:
        """Write the journal since the last write (and a snapshot when due) to the changelog,
        inside the open transaction."""
        due = self.clock() - self._snapshot_at >= self.snapshot_seconds
        snapshot = due and (self._journal_since_snapshot or engine.has_journal)
        held = [key for key, _ in self._store.items(STATE_PARTITION)]
        writes, self._seq = state_writes(engine, held, self._seq, snapshot, self.part_bytes)
        if snapshot:
            self._snapshot_at = self.clock()
            self._journal_since_snapshot = False
        elif writes:
            self._journal_since_snapshot = True
        now = contract.timestamp()
        for key, text in writes.items():
            value = None
            if text is not None:
                value = kpi_pb2.KpiState(state_key=key, state_json=text, updated_at=now)
            self._store.put(STATE_PARTITION, key, value)
        await self._store.flush()
