"""Wiring of the workspace.

social.routed.v1, social.escalations.v1, social.replies.v1 (read from their beginning at
start) -> the view of open interactions -> the pages and their live updates; the pages'
forms -> the router's reply API, the customer -> the CRM API, both with the agent's key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.kafka.connection import partitions_of
from socialcrm.lifecycle import PeriodicTask
from socialcrm.runtime import TopicsReady, create_app
from socialcrm_workspace.api import install_workspace
from socialcrm_workspace.clients import CrmClient, RouterClient
from socialcrm_workspace.feed import TopicFeed
from socialcrm_workspace.handlers import Workspace
from socialcrm_workspace.live import ChangeHub
from socialcrm_workspace.metrics import SESSIONS
from socialcrm_workspace.pages import Flags, Pages, static_files
from socialcrm_workspace.sessions import SessionStore
from socialcrm_workspace.settings import WorkspaceSettings
from socialcrm_workspace.view import OpenView


class HttpClient:
    """The client of the router and the CRM, closed with the service."""

    name = "http-client"

    def __init__(self, timeout: float) -> None:
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        return None


def build_app(
    settings: WorkspaceSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    view = OpenView(
        ttl=timedelta(hours=settings.workspace_item_ttl_hours),
        max_items=settings.workspace_max_items,
    )
    hub = ChangeHub(settings.workspace_max_streams)
    http = HttpClient(settings.workspace_upstream_timeout_seconds)
    sessions = SessionStore(
        clock,
        lifetime=timedelta(hours=settings.workspace_session_hours),
        idle=timedelta(minutes=settings.workspace_session_idle_minutes),
        max_sessions=settings.workspace_max_sessions,
    )

    async def expire_sessions() -> None:
        sessions.expire()
        SESSIONS.set(len(sessions))

    app = create_app(
        settings,
        [
            http,
            TopicFeed(settings, view, hub, clock, partitions_of),
            PeriodicTask("session-expiry", 60.0, expire_sessions),
        ],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM agents' workspace",
        description=(
            "The agents' queues ordered by SLA deadline, kept from `social.routed.v1`, "
            "`social.escalations.v1` and `social.replies.v1`; the customer across channels "
            "from the CRM API; replies and status changes through the router's API."
        ),
    )
    workspace = Workspace(
        view,
        RouterClient(http.client, settings.workspace_router_url),
        CrmClient(http.client, settings.workspace_crm_url),
        settings.workspace_timeline_entries,
    )
    install_workspace(
        app,
        workspace,
        sessions,
        ApiKeys.from_settings(settings),
        Pages(Flags(settings.workspace_influential_reach, settings.workspace_viral_score)),
        hub,
        secure_cookie=settings.workspace_cookie_secure,
        stream_seconds=settings.workspace_sse_stream_seconds,
        static=static_files(),
        clock=clock,
    )
    return app
