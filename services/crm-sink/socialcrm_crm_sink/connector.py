"""Outbound connector: pushes contact and case changes to an external CRM by signed webhooks.

Follows ``crm.events.v1`` in its own consumer group, reads the current contact or case from
the store and POSTs it (shapes in ``external_crm``). Network errors, 408, 429 and 5xx are
retried with doubling pauses; a refusal (other 4xx) or the last failed attempt sends the
event to ``crm.events.v1.dlq`` with the reason, from where ``socialcrm-dlq replay`` resends it
once the receiver is fixed. Every request carries the event id as ``Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm.v1 import crm_pb2
from socialcrm_crm_sink.external_crm import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    backoff_delays,
    body_of,
    contact_object,
    envelope,
    privacy_deletion,
    signature,
    ticket_object,
)
from socialcrm_crm_sink.metrics import EXTERNAL_CRM_REQUESTS
from socialcrm_crm_sink.store import CrmStore

log = logging.getLogger(__name__)


class ExternalCrmRefused(Exception):
    """The external CRM refused the change or stayed unreachable: dead-lettered."""


class ExternalCrmConnector:
    name = "external-crm"

    def __init__(
        self,
        store: CrmStore,
        *,
        url: str,
        secret: str,
        max_attempts: int,
        first_backoff_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self.store = store
        self.url = url
        self.secret = secret
        self.delays = backoff_delays(first_backoff_seconds, max_attempts)
        self.client = httpx.AsyncClient(timeout=timeout_seconds)

    async def start(self) -> None:
        if not self.secret:
            log.warning("CRM_WEBHOOK_SECRET is not set: external CRM webhooks are not signed")

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        return None

    async def handle(
        self, event: crm_pb2.CrmEvent, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        payload = await self.payload(event)
        if payload is not None:
            await self.deliver(payload)
        return []

    async def payload(self, event: crm_pb2.CrmEvent) -> dict[str, Any] | None:
        """The webhook body of ``event``; None when there is nothing (left) to send."""
        db = self.store.db
        if event.type == crm_pb2.CRM_EVENT_TYPE_CONTACT_CREATED:
            contact = await db.contacts.find_one({"_id": event.contact_id})
            if contact is None or contact.get("merged_into"):
                return None
            return envelope(event, "contact.creation", "contact", contact_object(contact))
        if event.type in (crm_pb2.CRM_EVENT_TYPE_CASE_OPENED, crm_pb2.CRM_EVENT_TYPE_CASE_UPDATED):
            case = await db.cases.find_one({"_id": event.case_id})
            if case is None or case.get("erased_at"):
                return None
            subscription = (
                "ticket.creation"
                if event.type == crm_pb2.CRM_EVENT_TYPE_CASE_OPENED
                else "ticket.propertyChange"
            )
            return envelope(event, subscription, "ticket", ticket_object(case))
        if event.type == crm_pb2.CRM_EVENT_TYPE_CONTACT_ERASED:
            return privacy_deletion(event)
        return None

    async def deliver(self, payload: dict[str, Any]) -> None:
        body = body_of(payload)
        what = f"{payload['subscriptionType']} {payload['objectId']}"
        for pause in [*self.delays, None]:
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": payload["eventId"],
                TIMESTAMP_HEADER: str(timestamp),
            }
            if self.secret:
                headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, body)
            retry_after = 0.0
            try:
                response = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    EXTERNAL_CRM_REQUESTS.labels("delivered").inc()
                    return
                problem = f"HTTP {response.status_code} {response.text[:200]}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    EXTERNAL_CRM_REQUESTS.labels("refused").inc()
                    raise ExternalCrmRefused(f"external CRM refused {what}: {problem}")
                header = response.headers.get("retry-after", "")
                retry_after = float(header) if header.isdigit() else 0.0
            if pause is None:
                EXTERNAL_CRM_REQUESTS.labels("gave_up").inc()
                raise ExternalCrmRefused(
                    f"external CRM failed {len(self.delays) + 1} times for {what}: {problem}"
                )
            EXTERNAL_CRM_REQUESTS.labels("retried").inc()
            log.warning(
                "external CRM call failed, retrying", extra={"what": what, "error": problem}
            )
            await asyncio.sleep(max(pause, retry_after))
