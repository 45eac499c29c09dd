"""The workspace's settings, from the environment (``python -m socialcrm_workspace --help``)."""

from __future__ import annotations

from pydantic import Field

from socialcrm.settings import ApiSettings


class WorkspaceSettings(ApiSettings):
    service_name: str = "workspace"
    http_port: int = 8006
    workspace_router_url: str = Field(
        "http://localhost:8003", description="Base URL of the router's reply API."
    )
    workspace_crm_url: str = Field("http://localhost:8004", description="Base URL of the CRM API.")
    workspace_upstream_timeout_seconds: float = Field(
        5.0, gt=0, description="Deadline of each call to the router or the CRM."
    )
    workspace_max_items: int = Field(
        50_000,
        gt=0,
        description="Interactions the view holds (open or recently closed); beyond, the one"
        " changed longest ago goes.",
    )
    workspace_item_ttl_hours: float = Field(
        72.0,
        gt=0,
        description="An interaction unchanged this long leaves the view (the router forgets"
        " its SLA state after the same inactivity: ROUTER_STATE_TTL_HOURS).",
    )
    workspace_timeline_entries: int = Field(
        30, ge=1, le=200, description="Entries of the customer's CRM timeline shown."
    )
    workspace_influential_reach: float = Field(
        0.6, ge=0, le=1, description="Reach from which an author is flagged influential."
    )
    workspace_viral_score: float = Field(
        0.6, ge=0, le=1, description="Virality from which a post is flagged a viral burst."
    )
    workspace_session_hours: float = Field(
        10.0, gt=0, description="A session ends this long after sign-in."
    )
    workspace_session_idle_minutes: float = Field(
        60.0, gt=0, description="A session ends after this long without a request."
    )
    workspace_max_sessions: int = Field(
        10_000, gt=0, description="Sessions held; beyond, the least recently used ends."
    )
    workspace_cookie_secure: bool = Field(
        True,
        description="Send the session cookie over HTTPS only; false only for a local run"
        " over plain HTTP on loopback.",
    )
    workspace_sse_stream_seconds: float = Field(
        15.0,
        gt=0,
        description="Each live-update stream ends after this and the browser reconnects (and"
        " refetches its list): a shutdown never waits longer for open streams.",
    )
    workspace_max_streams: int = Field(
        500, gt=0, description="Live-update streams served at once; beyond, 503."
    )
