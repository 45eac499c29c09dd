"""Fenced state writes: a zombie's changelog records never win over its successor's.

A fenced store stamps each changelog record it writes with headers: the partition's
fencing epoch, the writer's consumer-group generation and member id. When a replica
takes a partition over it reads the changelog to its end (learning the highest stamp),
writes a fence marker stamped one epoch higher, then reads on past the marker. Readers
(restores and the read-only view) go through a partition in offset order and apply a
record only if its stamp is at least the highest stamp already read in that partition:

- a former owner that goes on writing after it lost the partition (a paused process, a
  revoke that came too late) writes with a lower stamp than its successor's marker: its
  records are skipped by every later restore and by the view, whatever compaction keeps;
- what it wrote before the marker is read by the successor before it handles anything,
  so the successor's state and every later restore agree.

Epochs grow with the changelog itself (each new owner: the highest epoch read, plus one),
so they stay monotonic even if the group's generations start again (a deleted or expired
group); the generation only orders two members that fenced the same epoch at once.
Records without stamps (written before fencing, or by an unfenced store) rank lowest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

EPOCH_HEADER = "socialcrm.epoch"
GENERATION_HEADER = "socialcrm.generation"
MEMBER_HEADER = "socialcrm.member"
# The fence marker's key: never a state key (keys are business ids, printable).
FENCE_KEY = b"\x00socialcrm.fence"

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True, order=True)
class Stamp:
    """Compared as (epoch, generation)."""

    epoch: int
    generation: int


UNSTAMPED = Stamp(-1, -1)


@dataclass(frozen=True)
class Writer:
    """Who writes: the consumer group generation and member id of the assignment held
    (generation -1: no membership, the store must not write)."""

    generation: int
    member: str


WriterSource = Callable[[], Writer]


def stamp_of(headers: Headers | None) -> Stamp:
    values = dict(headers or ())
    try:
        return Stamp(int(values[EPOCH_HEADER]), int(values[GENERATION_HEADER]))
    except (KeyError, ValueError):
        return UNSTAMPED


def headers_of(stamp: Stamp, writer: Writer) -> list[tuple[str, bytes]]:
    return [
        (EPOCH_HEADER, str(stamp.epoch).encode()),
        (GENERATION_HEADER, str(stamp.generation).encode()),
        (MEMBER_HEADER, writer.member.encode()),
    ]


class Fences:
    """The highest stamp read so far, per changelog partition."""

    def __init__(self) -> None:
        self._highest: dict[int, Stamp] = {}

    def admit(self, partition: int, headers: Headers | None) -> bool:
        """Whether a record read next in ``partition`` applies (and note its stamp)."""
        stamp = stamp_of(headers)
        highest = self._highest.get(partition, UNSTAMPED)
        if stamp < highest:
            return False
        self._highest[partition] = stamp
        return True

    def highest(self, partition: int) -> Stamp:
        return self._highest.get(partition, UNSTAMPED)

    def forget(self, partition: int) -> None:
        self._highest.pop(partition, None)


class FencingError(RuntimeError):
    """The store may not write: its writer has no membership, or lost the partition."""
