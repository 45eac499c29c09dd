"""GDPR erasure downstream: what holds the person elsewhere is told to forget them.

- ``crm.contacts.v1`` (compacted, key = contact id): a tombstone, where systems that mirror
  CRM contacts learn that a contact id must be forgotten.
- ``router.sla-commands.v1``: an erase command per interaction. The router's SLA state keeps
  the author's handle for private replies; only the owner of the conversation's partition
  writes that state, so it is asked, and keeps a marker with nothing personal. Each command
  names the person's network accounts (hashed) too, so that the owner forgets a message of
  theirs still in flight even when it holds no state of the interactions named.
Then a ``CONTACT_ERASED`` CrmEvent on ``crm.events.v1`` for everyone else.
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from socialcrm import contract
from socialcrm.kafka.admin import ensure_compacted_topic
from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, crm_pb2, routed_pb2
from socialcrm_crm_sink.gdpr import Erased

log = logging.getLogger(__name__)

CONTACTS_TOPIC = contract.CRM_CONTACTS.name


def contact_erased_event(contact_id: str, erased_at: datetime) -> crm_pb2.CrmEvent:
    header = common_pb2.EventHeader(
        event_id=contract.derived_event_id(contact_id, "contact-erased"),
        # The erased entity is the contact: no network item is behind this event.
        external_id=contact_id,
        schema_version=contract.SCHEMA_VERSION,
        producer="crm-sink",
    )
    header.occurred_at.CopyFrom(contract.timestamp(erased_at))
    header.ingested_at.CopyFrom(contract.timestamp(erased_at))
    return crm_pb2.CrmEvent(
        header=header, type=crm_pb2.CRM_EVENT_TYPE_CONTACT_ERASED, contact_id=contact_id
    )


def erase_command(
    interaction_event_id: str,
    conversation_id: str,
    erased_at: datetime,
    author_keys: Sequence[str] = (),
) -> routed_pb2.SlaCommand:
    header = common_pb2.EventHeader(
        event_id=contract.derived_event_id(interaction_event_id, "erase"),
        external_id=interaction_event_id,
        schema_version=contract.SCHEMA_VERSION,
        producer="crm-sink",
    )
    header.occurred_at.CopyFrom(contract.timestamp(erased_at))
    header.ingested_at.CopyFrom(contract.timestamp(erased_at))
    return routed_pb2.SlaCommand(
        header=header,
        interaction_event_id=interaction_event_id,
        conversation_id=conversation_id,
        erase=routed_pb2.EraseCommand(author_keys=author_keys),
    )


class ErasurePublisher:
    """Creates the compacted topics it writes to when they are missing; sends with ``producer``."""

    name = "erasure-publisher"

    def __init__(self, settings: ServiceSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def start(self) -> None:
        await ensure_compacted_topic(self.settings, CONTACTS_TOPIC)

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    async def forget(self, plan: Erased) -> int:
        """Tombstones of the contacts (compaction then drops their records) and the
        router's erase commands; returns how many were sent."""
        now = datetime.now(UTC)
        sent = [
            await self.producer.send_record(CONTACTS_TOPIC, None, key=key.encode())
            for key in plan.contact_ids
        ]
        for interaction_event_id, conversation_id in plan.interactions:
            sent.append(
                await self.producer.publish(
                    erase_command(interaction_event_id, conversation_id, now, plan.author_keys)
                )
            )
        for acknowledged in sent:
            await acknowledged
        return len(sent)

    async def announce(self, plan: Erased) -> None:
        await self.producer.publish_and_wait(
            contact_erased_event(plan.contact_ids[0], datetime.now(UTC))
        )
