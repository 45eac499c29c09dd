"""How long each kind of router state lives, and the erasure tombstones of authors (pure logic).

Every state has an expiry, so that the owner's memory, the compacted changelog (hence a
restore) and the API's view stay bounded whatever nobody does:

- ``open`` (waiting for a first response) and ``answered`` (answered, not resolved): an
  inactivity horizon (``state_ttl``) after the owner's last change, and for an open one
  after its second escalation level;
- ``marker`` (resolved or erased) and ``awaiting_interaction`` (a reply read before its
  interaction): ``marker_retention`` after it was closed, long enough that an input record
  still in the topics cannot bring it back;
- ``erased_author``: what the owner keeps of an erased person, the hash of their network
  identity and when they were erased, for ``erasure_horizon``: the longest time a message
  of theirs sent before the erasure can still arrive. An interaction of that author that
  occurred before the erasure is never held with its coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract
from socialcrm.v1 import routed_pb2

OPEN = "open"
ANSWERED = "answered"
AWAITING_INTERACTION = "awaiting_interaction"
MARKER = "marker"
ERASED_AUTHOR = "erased_author"
KINDS = (OPEN, ANSWERED, AWAITING_INTERACTION, MARKER, ERASED_AUTHOR)

# Keys of the erasure tombstones, beside the interactions' event ids in the same store.
ERASED_AUTHOR_PREFIX = "erased-author:"
ERASED_AUTHOR_STATUS = "erased-author"
_CLOSED = frozenset({"resolved", "erased"})


@dataclass(frozen=True)
class Horizons:
    """Seconds each kind of state lives after its last change."""

    state_ttl: float
    marker_retention: float
    erasure_horizon: float


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos * 1e-9


def is_author_key(key: str) -> bool:
    return key.startswith(ERASED_AUTHOR_PREFIX)


def is_erased_author(state: routed_pb2.InteractionSlaState) -> bool:
    return is_author_key(state.interaction_event_id)


def occurred_at(state: routed_pb2.InteractionSlaState) -> datetime:
    return state.occurred_at.ToDatetime(tzinfo=UTC)


def kind_of(state: routed_pb2.InteractionSlaState) -> str:
    if is_erased_author(state):
        return ERASED_AUTHOR
    if state.status in _CLOSED:
        return MARKER
    if not state.HasField("sla_deadline"):
        return AWAITING_INTERACTION
    return ANSWERED if state.HasField("first_response_at") else OPEN


def last_change(state: routed_pb2.InteractionSlaState) -> float:
    """When (epoch seconds) the owner last changed ``state``; for a record written before
    ``updated_at`` existed, the latest time it holds."""
    if state.HasField("updated_at"):
        return _seconds(state.updated_at)
    stamps = (state.occurred_at, state.first_response_at, state.closed_at)
    return max(_seconds(ts) for ts in stamps)


def expires_at(state: routed_pb2.InteractionSlaState, horizons: Horizons) -> float:
    """When (epoch seconds) ``state`` may be deleted, unless changed meanwhile. An open state
    waits for its second level first (whatever its SLA), so that the owner and every
    replica's view agree without knowing whether the level fired."""
    kind = kind_of(state)
    if kind == ERASED_AUTHOR:
        return _seconds(state.closed_at) + horizons.erasure_horizon
    if kind in (MARKER, AWAITING_INTERACTION):
        return _seconds(state.closed_at) + horizons.marker_retention
    changed = last_change(state)
    if kind == OPEN and state.escalation_level < 2:
        changed = max(changed, _seconds(state.second_level_at))
    return changed + horizons.state_ttl


def is_expired(state: routed_pb2.InteractionSlaState, horizons: Horizons, now: float) -> bool:
    return expires_at(state, horizons) <= now


def author_key(channel: int, channel_user_id: str, handle: str) -> str | None:
    """The store key of an author's erasure tombstone: the hash of their network identity
    (``contract.author_key``, what crm-sink's erase commands name). None for an author the
    network does not identify."""
    digest = contract.author_key(channel, channel_user_id, handle)
    return None if digest is None else ERASED_AUTHOR_PREFIX + digest


def author_key_of(state: routed_pb2.InteractionSlaState) -> str | None:
    return author_key(state.channel, state.author_channel_user_id, state.author_handle)


def named_author_keys(command: routed_pb2.EraseCommand) -> list[str]:
    """The store keys of the tombstones an erase command names (malformed names ignored)."""
    named = {k for k in command.author_keys if contract.is_author_key(k)}
    return [ERASED_AUTHOR_PREFIX + digest for digest in sorted(named)]


def erased_author(key: str, at: datetime, revision: int) -> routed_pb2.InteractionSlaState:
    """The tombstone of an author erased at ``at``."""
    return routed_pb2.InteractionSlaState(
        interaction_event_id=key,
        status=ERASED_AUTHOR_STATUS,
        closed_at=contract.timestamp(at),
        revision=revision,
    )


def erased_since(tombstone: routed_pb2.InteractionSlaState) -> datetime:
    return tombstone.closed_at.ToDatetime(tzinfo=UTC)
