"""Wiring of the CRM sink: routed interactions and replies in, MongoDB and crm.events.v1 out."""

from __future__ import annotations

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.lifecycle import Component
from socialcrm.mongo import TRANSIENT_MONGO_ERRORS, MongoDatabase
from socialcrm.runtime import TopicsReady, create_app
from socialcrm.v1 import crm_pb2, reply_pb2, routed_pb2
from socialcrm_crm_sink.api import install_crm_api
from socialcrm_crm_sink.connector import ExternalCrmConnector
from socialcrm_crm_sink.erasure_publisher import ErasurePublisher
from socialcrm_crm_sink.errors import InteractionNotRecordedYet
from socialcrm_crm_sink.handlers import CrmHandlers
from socialcrm_crm_sink.settings import CrmSinkSettings
from socialcrm_crm_sink.store import CrmStore


def build_app(settings: CrmSinkSettings) -> FastAPI:
    keys = ApiKeys.from_settings(settings)
    database = MongoDatabase(settings)
    store = CrmStore(database.db, fingerprint_secret=settings.fingerprint_secret())
    producer = EventProducer(settings)
    erasure = ErasurePublisher(settings, producer)
    handlers = CrmHandlers(
        store, erasure, producer, reply_wait_seconds=settings.crm_reply_wait_seconds
    )
    components: list[Component] = [
        database,
        store,
        producer,
        erasure,
        StreamProcessor(
            settings=settings,
            group_id=settings.service_name,
            input_type=routed_pb2.RoutedInteraction,
            handler=handlers.handle_routed,
            batch_handler=handlers.handle_routed_batch,
            producer=producer,
            transient_errors=TRANSIENT_MONGO_ERRORS,
        ),
        StreamProcessor(
            settings=settings,
            group_id=f"{settings.service_name}-replies",
            input_type=reply_pb2.Reply,
            handler=handlers.handle_reply,
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
            max_response_bytes=settings.crm_webhook_max_response_bytes,
            max_retry_after_seconds=settings.crm_webhook_max_retry_after_seconds,
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
    install_crm_api(app, handlers, keys)
    return app
