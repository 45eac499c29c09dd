"""Outbound connector: pushes contact and case changes to an external CRM by signed webhooks.

Follows ``crm.events.v1`` in its own consumer group, reads the current contact or case from
the store and POSTs it (shapes in ``external_crm``). Network errors, 408, 429 and 5xx are
retried with doubling pauses; a refusal (other 4xx) or the last failed attempt sends the
event to ``crm.events.v1.dlq`` with the reason, from where ``socialcrm-dlq replay`` resends it
once the receiver is fixed. Every request carries the event id as ``Idempotency-Key``.

The receiver is not trusted to behave: each call has a deadline from connecting to the last
byte (a dripping answer is cut), at most ``max_response_bytes`` of an answer are read (the
rest is dropped unread), a ``Retry-After`` waits at most ``max_retry_after_seconds``, and the
credentials in the URL and the signing secret are redacted from every log line, the HTTP
client's included, and from the dead-letter reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
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
    redact,
    retry_after_seconds,
    signature,
    ticket_object,
    url_secrets,
)
from socialcrm_crm_sink.metrics import EXTERNAL_CRM_REQUESTS
from socialcrm_crm_sink.store import CrmStore

log = logging.getLogger(__name__)

# The HTTP client logs every request with its URL at INFO.
CLIENT_LOGGERS = ("httpx", __name__)


class RedactSecrets(logging.Filter):
    """Rewrites a log record with the secrets replaced (message and ``extra`` strings)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        for key, value in vars(record).items():
            if isinstance(value, str) and key != "msg":
                setattr(record, key, redact(value, self.secrets))
        return True


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
        max_response_bytes: int,
        max_retry_after_seconds: float,
    ) -> None:
        self.store = store
        self.url = url
        self.secret = secret
        self.delays = backoff_delays(first_backoff_seconds, max_attempts)
        self.deadline = timeout_seconds
        self.max_response_bytes = max_response_bytes
        self.max_retry_after = max_retry_after_seconds
        self.client = httpx.AsyncClient(timeout=timeout_seconds)
        self.secrets = [*url_secrets(url), *([secret] if secret else [])]
        self.redaction = RedactSecrets(self.secrets)

    async def start(self) -> None:
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).addFilter(self.redaction)
        if not self.secret:
            log.warning("CRM_WEBHOOK_SECRET is not set: external CRM webhooks are not signed")

    async def stop(self) -> None:
        await self.client.aclose()
        for name in CLIENT_LOGGERS:
            logging.getLogger(name).removeFilter(self.redaction)

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
                status, answer, retry_header = await self._post(body, headers)
            except TimeoutError:
                problem = f"no complete answer within {self.deadline:g} s"
            except httpx.HTTPError as exc:
                problem = redact(f"{type(exc).__name__}: {exc}", self.secrets)
            else:
                if status < 300:
                    EXTERNAL_CRM_REQUESTS.labels("delivered").inc()
                    return
                problem = redact(f"HTTP {status} {answer[:200]}", self.secrets)
                if 400 <= status < 500 and status not in (408, 429):
                    EXTERNAL_CRM_REQUESTS.labels("refused").inc()
                    raise ExternalCrmRefused(f"external CRM refused {what}: {problem}")
                retry_after = retry_after_seconds(
                    retry_header, now=datetime.now(UTC), ceiling=self.max_retry_after
                )
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

    async def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
        """One call within the deadline: its status, the head of its answer, its Retry-After.

        The answer is read raw (never inflated) and only up to ``max_response_bytes``;
        closing the response then drops the connection with the rest unread.
        """
        head = bytearray()
        async with (
            asyncio.timeout(self.deadline),
            self.client.stream("POST", self.url, content=body, headers=headers) as response,
        ):
            async for chunk in response.aiter_raw():
                head += chunk[: self.max_response_bytes - len(head)]
                if len(head) >= self.max_response_bytes:
                    break
        answer = head.decode(errors="replace")
        return response.status_code, answer, response.headers.get("retry-after", "")
