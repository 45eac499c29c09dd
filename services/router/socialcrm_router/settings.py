"""The router's settings, from the environment (``python -m socialcrm_router --help``)."""

from __future__ import annotations

from pydantic import Field

from socialcrm import contract
from socialcrm.settings import ApiSettings

STATE_TOPIC = contract.ROUTER_SLA_STATE.name


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
    router_state_ttl_hours: float = Field(
        72.0,
        gt=0,
        description="How long an open interaction's SLA state (answered or not, once no"
        " escalation level is left to fire) is kept after its last change; then it is deleted"
        " and the reply API no longer knows it.",
    )
    router_erasure_horizon_hours: float = Field(
        168.0,
        gt=0,
        description="How long an erased author's tombstone is kept: the longest time a message"
        " of theirs sent before the erasure can still reach the router (the topics' retention).",
    )
    router_clock_skew_seconds: float = Field(
        60.0,
        ge=0,
        description="Clock difference tolerated in the times of reply commands and replies;"
        " a command dated later than now plus this, or before its interaction, is dead-lettered.",
    )
    router_agent_queues: str = Field(
        "",
        description="Queues or teams each agent may work through the reply API:"
        " 'agent-1=care-fr,care-en;agent-2=*' ('*': all; an entry for agent '*' applies to"
        " agents without one). Empty: every agent works every queue.",
    )
    router_agent_replies_per_second: float = Field(
        20.0, gt=0, description="Replies and status changes an agent may post a second, sustained."
    )
    router_agent_reply_burst: float = Field(
        200.0, ge=1, description="Replies and status changes an agent may post at once."
    )
    router_interaction_replies_per_minute: float = Field(
        6.0, gt=0, description="Replies and status changes to one interaction a minute, sustained."
    )
    router_interaction_reply_burst: float = Field(
        10.0, ge=1, description="Replies and status changes to one interaction at once."
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
