"""The topic contract in code: names, keys, event ids, encoding and validation.

Topic names and key fields are read from the options in ``proto/`` so that the
``.proto`` files stay the single source of truth. The internal topics (a service's own
state, tombstones) are listed here too, each with its owner, key and value.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm.v1 import (
    crm_pb2,
    deadletter_pb2,
    enriched_pb2,
    interaction_pb2,
    kpi_pb2,
    options_pb2,
    reply_pb2,
    routed_pb2,
)

SCHEMA_VERSION = "1.0.0"
DLQ_SUFFIX = ".dlq"

# Namespace of all event ids: uuid5 ids derived in it are the same on every machine.
_EVENT_NAMESPACE = uuid.UUID("6f1c3a52-94a4-4c1e-9a57-0d8a3c2b7e10")

TOPIC_MESSAGES: tuple[type[Message], ...] = (
    interaction_pb2.Interaction,
    enriched_pb2.EnrichedInteraction,
    routed_pb2.RoutedInteraction,
    routed_pb2.Escalation,
    crm_pb2.CrmEvent,
    reply_pb2.Reply,
    routed_pb2.SlaCommand,
    kpi_pb2.KpiSnapshot,
    kpi_pb2.Alert,
)

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class InternalTopic:
    """A topic that is no event stream: the durable state of its ``owner`` (the only
    service writing it, which creates it) or tombstones telling mirrors to forget.

    ``key`` is what a record's key holds (for ``protobuf``, the message's key field);
    ``codec`` says how a value is written: ``protobuf`` (``message``, whose options give
    the name and key), ``json``, or ``tombstone`` (keys only, every value empty).
    """

    name: str
    key: str
    codec: Literal["protobuf", "json", "tombstone"]
    owner: str
    compacted: bool = True
    message: type[Message] | None = None


def _state_topic(message: type[Message], owner: str) -> InternalTopic:
    """An internal topic whose values are ``message``: its name and key from the options."""
    key = message.DESCRIPTOR.GetOptions().Extensions[options_pb2.key_field]
    return InternalTopic(topic_of(message), key, "protobuf", owner, message=message)


def topic_of(message_type: type[Message]) -> str:
    topic: str = message_type.DESCRIPTOR.GetOptions().Extensions[options_pb2.topic]
    if not topic:
        raise LookupError(f"{message_type.DESCRIPTOR.full_name} has no topic option")
    return topic


# The pollers' cursors (socialcrm_ingest.poller.schedule.Cursor as JSON), per source name.
POLL_STATE = InternalTopic("ingest.poll-state.v1", "source name", "json", "ingest")
# Erased contacts: a tombstone per contact id, for the systems that mirror CRM contacts.
CRM_CONTACTS = InternalTopic("crm.contacts.v1", "contact id", "tombstone", "crm-sink")
# The SLA state of input partition N in partition N; kpi's whole state in partition 0.
ROUTER_SLA_STATE = _state_topic(routed_pb2.InteractionSlaState, "router")
KPI_STATE = _state_topic(kpi_pb2.KpiState, "kpi")
INTERNAL_TOPICS: tuple[InternalTopic, ...] = (
    POLL_STATE,
    CRM_CONTACTS,
    ROUTER_SLA_STATE,
    KPI_STATE,
)


class ContractError(ValueError):
    """A record that does not honour the contract; ``error_type`` names the failure."""

    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type
        self.reason = reason


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def all_topics() -> list[str]:
    """Every topic of the contract, with its dead-letter topic."""
    names = [topic_of(m) for m in TOPIC_MESSAGES]
    return names + [dlq_topic(n) for n in names]


def key_of(message: Message) -> bytes:
    """The record key: the value of the message's ``key_field`` option."""
    value: Any = message
    for part in _key_path(type(message)):
        value = getattr(value, part)
    return str(value).encode()


# The key field's path per message type: its options were read again for every output.
_KEY_PATHS: dict[type[Message], tuple[str, ...]] = {}


def _key_path(message_type: type[Message]) -> tuple[str, ...]:
    path = _KEY_PATHS.get(message_type)
    if path is None:
        option: str = message_type.DESCRIPTOR.GetOptions().Extensions[options_pb2.key_field]
        path = _KEY_PATHS[message_type] = tuple(option.split("."))
    return path


def event_id_for(channel: int, external_id: str) -> str:
    """The idempotency key of an item seen on a channel: the same item always gets the same id."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{channel}:{external_id}"))


def derived_event_id(source_event_id: str, purpose: str) -> str:
    """Id of an event caused by another one, stable across replays of the source."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{source_event_id}/{purpose}"))


_AUTHOR_KEY = re.compile(r"[0-9a-f]{64}")


def author_key(channel: int, channel_user_id: str, handle: str) -> str | None:
    """An author's network identity (the stable user id, else the handle) as an
    ``EraseCommand.author_keys`` item: a SHA-256 hex, so that nothing readable travels or
    stays in the router's erasure tombstone. crm-sink names an erased person by it, the
    router keys their tombstone by it. None for an author the network does not identify."""
    identity = f"id:{channel_user_id}" if channel_user_id else f"handle:{handle}" if handle else ""
    if not identity:
        return None
    return hashlib.sha256(f"{channel}|{identity}".encode()).hexdigest()


def is_author_key(value: str) -> bool:
    """Whether ``value`` has the form of an ``author_key`` (a command may carry anything)."""
    return _AUTHOR_KEY.fullmatch(value) is not None


def timestamp(moment: datetime | None = None) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment or datetime.now(UTC))
    return ts


def encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def decode(message_type: type[M], data: bytes | None) -> M:
    """Parse and validate a record value; raise ContractError with a clear reason."""
    if data is None:
        raise ContractError("decode_error", "record has no value")
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ContractError(
            "decode_error", f"undecodable {message_type.DESCRIPTOR.name}: {exc}"
        ) from exc
    validate(message)
    return message


def validate(message: Message) -> None:
    """Check the fields every event must carry (see shared conventions)."""
    header = getattr(message, "header", None)
    name = message.DESCRIPTOR.name
    if header is None or not message.HasField("header"):
        raise ContractError("contract_violation", f"{name} has no header")
    missing = [
        field
        for field, present in (
            ("header.event_id", bool(header.event_id)),
            ("header.external_id", bool(header.external_id)),
            ("header.occurred_at", header.HasField("occurred_at")),
            ("header.ingested_at", header.HasField("ingested_at")),
        )
        if not present
    ]
    if missing:
        raise ContractError("contract_violation", f"{name} lacks {', '.join(missing)}")


DeadLetter = deadletter_pb2.DeadLetter
