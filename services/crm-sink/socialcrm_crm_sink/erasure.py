"""GDPR erasure downstream: tombstones on the compacted topics that hold the person, and an event.

- ``crm.contacts.v1`` (compacted, key = contact id): the topic where systems that mirror CRM
  contacts learn that a contact id must be forgotten.
- ``router.sla-state.v1`` (compacted, key = interaction event id): the router's timers keep
  the author's handle for private replies; a tombstone makes the router drop them.
Then a ``CONTACT_ERASED`` CrmEvent on ``crm.events.v1`` for everyone else.
"""

import logging
from datetime import UTC, datetime

from socialcrm import contract
from socialcrm.kafka import EventProducer, ensure_compacted_topic
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import common_pb2, crm_pb2, routed_pb2
from socialcrm_crm_sink.store import Erased

log = logging.getLogger(__name__)

CONTACTS_TOPIC = "crm.contacts.v1"
ROUTER_STATE_TOPIC = contract.topic_of(routed_pb2.InteractionSlaState)


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


class ErasurePublisher:
    """Creates the compacted topics it writes to when they are missing; sends with ``producer``."""

    name = "erasure-publisher"

    def __init__(self, settings: ServiceSettings, producer: EventProducer) -> None:
        self.settings = settings
        self.producer = producer

    async def start(self) -> None:
        for topic in (CONTACTS_TOPIC, ROUTER_STATE_TOPIC):
            await ensure_compacted_topic(self.settings, topic)

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None

    async def forget(self, plan: Erased) -> int:
        """Tombstones (value None): compaction then drops every record of the person."""
        tombstones = [(CONTACTS_TOPIC, key) for key in plan.contact_ids] + [
            (ROUTER_STATE_TOPIC, key) for key in plan.interaction_event_ids
        ]
        sent = [
            await self.producer.producer.send(topic, None, key=key.encode())
            for topic, key in tombstones
        ]
        for acknowledged in sent:
            await acknowledged
        return len(tombstones)

    async def announce(self, plan: Erased) -> None:
        await self.producer.publish_and_wait(
            contact_erased_event(plan.contact_ids[0], datetime.now(UTC))
        )
