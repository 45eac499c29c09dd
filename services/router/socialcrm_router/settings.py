"""The router's settings, from the environment (``python -m socialcrm_router --help``)."""

from __future__ import annotations

from pydantic import Field

from socialcrm import contract
from socialcrm.settings import ApiSettings
from socialcrm.v1 import routed_pb2

STATE_TOPIC = contract.topic_of(routed_pb2.InteractionSlaState)


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
        1.0, gt=0, description="How often the owned SLA timers are scanned for escalations."
    )
    router_state_topic: str = Field(
        STATE_TOPIC, description="Compacted changelog of the SLA state, partitioned like the input."
    )
    router_marker_retention_hours: float = Field(
        168.0,
        gt=0,
        description="How long a resolved or erased interaction's marker is kept: an input record"
        " older than this (the topics' retention) can no longer bring it back.",
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
