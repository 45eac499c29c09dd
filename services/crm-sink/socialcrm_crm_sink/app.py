"""Wiring of the CRM sink: routed interactions and replies in, MongoDB and crm.events.v1 out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from pydantic import Field, SecretStr, model_validator

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.http import Component, TopicsReady, create_app
from socialcrm.kafka import EventProducer, StreamProcessor
from socialcrm.mongo import TRANSIENT_MONGO_ERRORS, MongoDatabase
from socialcrm.settings import ApiSettings, MongoSettings
from socialcrm.v1 import crm_pb2, reply_pb2, routed_pb2
from socialcrm_crm_sink.api import crm_router
from socialcrm_crm_sink.connector import ExternalCrmConnector
from socialcrm_crm_sink.erasure import ErasurePublisher
from socialcrm_crm_sink.fingerprints import INSECURE_LOCAL_SECRET, MIN_SECRET_LENGTH
from socialcrm_crm_sink.records import case_updated_event, crm_events, plan_reply, plan_write
from socialcrm_crm_sink.store import CrmStore, Recorded


class CrmSinkSettings(MongoSettings, ApiSettings):
    service_name: str = "crm-sink"
    http_port: int = 8004
    crm_reply_wait_seconds: float = Field(
        300.0,
        description="How long a reply waits (retried) for its interaction to be recorded "
        "before it goes to the dead-letter topic.",
    )

    crm_webhook_url: str = Field(
        "",
        description="External CRM endpoint receiving contact and ticket changes as signed "
        "webhooks (empty: connector off).",
    )
    crm_webhook_secret: str = Field(
        "", description="HMAC-SHA256 key of the X-SocialCRM-Signature-256 header."
    )
    crm_webhook_max_attempts: int = Field(
        5, ge=1, description="Tries per change before it goes to crm.events.v1.dlq."
    )
    crm_webhook_backoff_seconds: float = Field(
        0.5, description="First pause between tries; doubles each time, at most 30 s."
    )
    crm_webhook_timeout_seconds: float = Field(10.0, description="Timeout of one webhook call.")
    crm_fingerprint_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the HMAC-SHA256 fingerprints of erased identities (required, at "
        f"least {MIN_SECRET_LENGTH} characters; keep it: another key forgets past erasures).",
    )
    crm_fingerprint_insecure_local: bool = Field(
        False,
        description="Development only: without CRM_FINGERPRINT_SECRET, use a public key "
        "(fingerprints of erased phone numbers and emails then reversible by brute force).",
    )

    @model_validator(mode="after")
    def _fingerprints_keyed(self) -> CrmSinkSettings:
        secret = self.crm_fingerprint_secret.get_secret_value()
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"CRM_FINGERPRINT_SECRET is shorter than {MIN_SECRET_LENGTH} characters"
            )
        if not secret and not self.crm_fingerprint_insecure_local:
            raise ValueError(
                "CRM_FINGERPRINT_SECRET is required (or CRM_FINGERPRINT_INSECURE_LOCAL=true "
                "for a local run only)"
            )
        return self

    def fingerprint_secret(self) -> str:
        return self.crm_fingerprint_secret.get_secret_value() or INSECURE_LOCAL_SECRET


class InteractionNotRecordedYet(Exception):
    """The reply overtook its interaction (another consumer group): retried, not lost."""


class UnknownInteraction(ValueError):
    """The reply answers an interaction the CRM never recorded: dead-lettered with the reason."""


def build_app(settings: CrmSinkSettings) -> FastAPI:
    keys = ApiKeys.from_settings(settings)
    database = MongoDatabase(settings)
    store = CrmStore(database.db, fingerprint_secret=settings.fingerprint_secret())
    producer = EventProducer(settings)
    erasure = ErasurePublisher(settings, producer)

    def announced(
        routed: routed_pb2.RoutedInteraction, recorded: Recorded | None
    ) -> Sequence[Message]:
        if recorded is None:
            return []
        return crm_events(
            routed,
            contact_id=recorded.contact_id,
            contact_created_by=recorded.contact_created_by,
            case_id=recorded.case_id,
            case_opened_by=recorded.case_opened_by,
            case_status=recorded.case_status,
        )

    async def handle_routed(
        routed: routed_pb2.RoutedInteraction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return announced(routed, await store.record(plan_write(routed)))

    async def handle_routed_batch(
        batch: Sequence[tuple[routed_pb2.RoutedInteraction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        recorded = await store.record_many([plan_write(routed) for routed, _ in batch])
        return [announced(routed, r) for (routed, _), r in zip(batch, recorded, strict=True)]

    async def handle_reply(
        reply: reply_pb2.Reply, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        write = plan_reply(reply)
        recorded = await store.record_reply(write)
        if recorded is None:
            waited = (datetime.now(UTC) - write.occurred_at).total_seconds()
            if waited < settings.crm_reply_wait_seconds:
                raise InteractionNotRecordedYet(reply.interaction_event_id)
            raise UnknownInteraction(
                f"interaction {reply.interaction_event_id} is not in the CRM "
                f"{waited:.0f}s after its reply"
            )
        if not (recorded.status_changed and recorded.case_id):
            return []
        return [
            case_updated_event(
                reply,
                contact_id=recorded.contact_id,
                case_id=recorded.case_id,
                case_status=recorded.case_status,
            )
        ]

    components: list[Component] = [
        database,
        store,
        producer,
        erasure,
        StreamProcessor(
            settings=settings,
            group_id=settings.service_name,
            input_type=routed_pb2.RoutedInteraction,
            handler=handle_routed,
            batch_handler=handle_routed_batch,
            producer=producer,
            transient_errors=TRANSIENT_MONGO_ERRORS,
        ),
        StreamProcessor(
            settings=settings,
            group_id=f"{settings.service_name}-replies",
            input_type=reply_pb2.Reply,
            handler=handle_reply,
            producer=producer,
            transient_errors=(*TRANSIENT_MONGO_ERRORS, InteractionNotRecordedYet),
        ),
    ]
    if settings.crm_webhook_url:
        connector = ExternalCrmConnector(
            store,
            url=settings.crm_webhook_url,
            secret=settings.crm_webhook_secret,
            max_attempts=settings.crm_webhook_max_attempts,
            first_backoff_seconds=settings.crm_webhook_backoff_seconds,
            timeout_seconds=settings.crm_webhook_timeout_seconds,
        )
        components += [
            connector,
            StreamProcessor(
                settings=settings,
                group_id=f"{settings.service_name}-external-crm",
                input_type=crm_pb2.CrmEvent,
                handler=connector.handle,
                producer=producer,
                transient_errors=TRANSIENT_MONGO_ERRORS,
            ),
        ]
    app = create_app(
        settings,
        components,
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM sink",
        description="Records `social.routed.v1` and `social.replies.v1` as contacts, timeline "
        "entries and cases; serves the CRM API.",
    )
    app.include_router(crm_router(store, erasure, producer, keys))
    return app
