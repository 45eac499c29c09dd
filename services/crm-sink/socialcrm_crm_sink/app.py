"""Wiring of the CRM sink: social.routed.v1 in, MongoDB writes and crm.events.v1 out."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from google.protobuf.message import Message
from pydantic import Field

from socialcrm.http import create_stream_app
from socialcrm.mongo import TRANSIENT_MONGO_ERRORS, MongoDatabase
from socialcrm.settings import MongoSettings
from socialcrm.v1 import routed_pb2
from socialcrm_crm_sink.api import crm_router
from socialcrm_crm_sink.erasure import ErasurePublisher
from socialcrm_crm_sink.policy import parse_api_keys
from socialcrm_crm_sink.records import crm_events, plan_write
from socialcrm_crm_sink.store import CrmStore


class CrmSinkSettings(MongoSettings):
    service_name: str = "crm-sink"
    http_port: int = 8004
    crm_api_keys: str = Field(
        "",
        description='API keys and scopes, "key1=read,agent;key2=admin" (none: API closed).',
    )


def build_app(settings: CrmSinkSettings) -> FastAPI:
    database = MongoDatabase(settings)
    store = CrmStore(database.db)
    erasure = ErasurePublisher(settings)

    async def handle(
        routed: routed_pb2.RoutedInteraction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        recorded = await store.record(plan_write(routed))
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

    app = create_stream_app(
        settings,
        input_type=routed_pb2.RoutedInteraction,
        handler=handle,
        resources=[database, store, erasure],
        transient_errors=TRANSIENT_MONGO_ERRORS,
        title="Social CRM sink",
        description="Records `social.routed.v1` as contacts, timeline entries and cases.",
    )
    app.include_router(crm_router(store, erasure, parse_api_keys(settings.crm_api_keys)))
    return app
