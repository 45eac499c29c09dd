"""Dead letters of input that never became an event (a bad backfill line, a bad API item).

They go to the dead-letter topic of ``social.interactions.v1`` through the shared
``EventProducer.dead_letter``, with the raw input as the original value, the reason
prefixed by where the input came from (``file:line`` or ``source page``), the
``ingest.origin`` header, and the error type ``invalid_payload``. Replaying them with
``socialcrm-dlq`` is pointless (they are not Interaction messages): fix the input and
import it again.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import ConsumerRecord

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.v1 import interaction_pb2

INPUT_TOPIC = contract.topic_of(interaction_pb2.Interaction)
DLQ_TOPIC = contract.dlq_topic(INPUT_TOPIC)
ERROR_TYPE = "invalid_payload"


async def dead_letter_input(
    producer: EventProducer, *, raw: bytes, origin: str, reason: str, consumer: str
) -> asyncio.Future[object]:
    """Queue the dead letter; the returned future resolves once the broker acknowledged it."""
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic=INPUT_TOPIC,
        partition=-1,
        offset=-1,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=None,
        value=raw,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=len(raw),
        headers=[("ingest.origin", origin.encode())],
    )
    error = contract.ContractError(ERROR_TYPE, f"{origin}: {reason}")
    return await producer.dead_letter(record, error, consumer)
