"""Wiring of the router.

- social.enriched.v1 -> social.routed.v1 (+ immediate escalations, SLA timers);
- a periodic scan of the durable SLA timers -> social.escalations.v1 and alerts.v1;
- the reply API (behind API keys, see api.py) -> social.replies.v1;
- optionally the outbound sender: social.replies.v1 -> the networks' reply APIs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from pydantic import Field

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.http import Component, TopicsReady, create_app
from socialcrm.kafka import StreamProcessor
from socialcrm.settings import ApiSettings
from socialcrm.v1 import enriched_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_router.api import api
from socialcrm_router.escalator import SlaEscalator
from socialcrm_router.handlers import Router
from socialcrm_router.outbound import OutboundSender, OutboundUnavailable
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.state import STATE_TOPIC, RouterProducer, SlaStateStore


class RouterSettings(ApiSettings):
    service_name: str = "router"
    http_port: int = 8003
    router_rules_file: str = Field(
        "", description="YAML rule file; empty: the packaged rules/default.yaml."
    )
    router_rules_poll_seconds: float = Field(
        2.0, description="How often the rule file's modification time is checked."
    )
    router_sla_scan_seconds: float = Field(
        1.0, description="How often the SLA timers are scanned for escalations."
    )
    router_state_topic: str = Field(
        STATE_TOPIC, description="Compacted topic holding the durable SLA timers."
    )
    router_follow_replies: bool = Field(
        True,
        description="Also stop timers on replies other tools publish to social.replies.v1.",
    )
    router_outbound_enabled: bool = Field(
        False, description="Send social.replies.v1 to the networks' reply APIs."
    )
    router_x_api_base_url: str = Field("https://api.x.com", description="X API v2 base URL.")
    router_x_access_token: str = Field("", description="OAuth 2.0 user token for the X API.")
    router_graph_api_base_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Meta Graph API base URL."
    )
    router_meta_access_token: str = Field("", description="Page access token for the Graph API.")


class HttpClient:
    """The outbound HTTP client as a component, so it closes with the app."""

    name = "outbound-http"

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(timeout=10.0)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        return None


def build_app(
    settings: RouterSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """``clock`` is the time source of routing, timers and replies (tests inject theirs)."""
    keys = ApiKeys.from_settings(settings)
    outputs = [routed_pb2.RoutedInteraction, routed_pb2.Escalation, kpi_pb2.Alert, reply_pb2.Reply]
    producer = RouterProducer(
        settings, settings.router_state_topic, [contract.topic_of(m) for m in outputs]
    )
    rules = RulesSource(settings.router_rules_file, settings.router_rules_poll_seconds)
    store = SlaStateStore(settings, producer)
    router = Router(rules, store, producer, clock)
    components: list[Component] = [
        producer,
        rules,
        store,
        StreamProcessor(
            settings=settings,
            group_id=settings.service_name,
            input_type=enriched_pb2.EnrichedInteraction,
            handler=router.handle,
            producer=producer,
        ),
        SlaEscalator(store, producer, clock, settings.router_sla_scan_seconds),
    ]
    if settings.router_follow_replies:
        components.append(
            StreamProcessor(
                settings=settings,
                group_id=f"{settings.service_name}-replies",
                input_type=reply_pb2.Reply,
                handler=router.handle_reply,
                producer=producer,
            )
        )
    if settings.router_outbound_enabled:
        http = HttpClient()
        sender = OutboundSender(
            http.client,
            base_urls={
                "x": settings.router_x_api_base_url,
                "meta": settings.router_graph_api_base_url,
            },
            tokens={"x": settings.router_x_access_token, "meta": settings.router_meta_access_token},
        )
        components += [
            http,
            StreamProcessor(
                settings=settings,
                group_id=f"{settings.service_name}-outbound",
                input_type=reply_pb2.Reply,
                handler=sender.handle,
                producer=producer,
                transient_errors=(OutboundUnavailable,),
            ),
        ]
    app = create_app(
        settings,
        components,
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM router",
        description=(
            "Routes `social.enriched.v1` into `social.routed.v1` with declarative rules, "
            "escalates on `social.escalations.v1` and `alerts.v1` when SLAs are missed, "
            f"keeps its SLA timers in the compacted `{settings.router_state_topic}`, "
            "and takes agents' replies into `social.replies.v1`."
        ),
    )
    app.include_router(api(router, keys))
    return app
