"""Wiring of the router.

- social.enriched.v1 -> social.routed.v1 (+ immediate escalations, SLA timers);
- router.sla-commands.v1 (the reply API's, crm-sink's erasures) and social.replies.v1
  (other tools') -> the SLA state of the partition's owner; replies -> social.replies.v1;
- the owner's timers -> social.escalations.v1 and alerts.v1;
- optionally the outbound sender: social.replies.v1 -> the networks' reply APIs.
One consumer takes the three co-partitioned input topics (checked at start), so that one
replica owns a conversation's interactions, commands and replies (see ownership.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.kafka.connection import partitions_of
from socialcrm.kafka.processor import StreamProcessor
from socialcrm.kafka.producer import EventProducer
from socialcrm.kafka.topic_route import StreamInput
from socialcrm.lifecycle import Component
from socialcrm.runtime import TopicsReady, create_app
from socialcrm.state import ChangelogView, Codec, PartitionedStore
from socialcrm.v1 import enriched_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_router.api import api
from socialcrm_router.copartition import CoPartitioned
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import Horizons
from socialcrm_router.handlers import Router
from socialcrm_router.outbound import outbound_components
from socialcrm_router.ownership import SLA_STATE_CODEC, SlaOwner
from socialcrm_router.permissions import AgentQueues
from socialcrm_router.plausibility import Plausibility
from socialcrm_router.rate_limit import Rate, ReplyLimiter
from socialcrm_router.reply_desk import ReplyDesk, view_keeps
from socialcrm_router.rules_file import RulesSource
from socialcrm_router.settings import RouterSettings
from socialcrm_router.sla import strictly_newer
from socialcrm_router.timers import SlaTimers

OUTPUTS = [
    routed_pb2.RoutedInteraction,
    routed_pb2.Escalation,
    kpi_pb2.Alert,
    reply_pb2.Reply,
    routed_pb2.SlaCommand,
]


def build_app(
    settings: RouterSettings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> FastAPI:
    """``clock`` is the time source of routing, timers and replies (tests inject theirs)."""
    enriched_topic = contract.topic_of(enriched_pb2.EnrichedInteraction)
    producer = EventProducer(settings, [contract.topic_of(m) for m in OUTPUTS])
    rules = RulesSource(settings.router_rules_file, settings.router_rules_poll_seconds)
    store = PartitionedStore(
        name="router-sla",
        settings=settings,
        producer=producer,
        topic=settings.router_state_topic,
        input_topic=enriched_topic,
        codec=SLA_STATE_CODEC,
        # Changelog records written before fencing carry no stamp: newer revisions win.
        accept=strictly_newer,
    )
    horizons = Horizons(
        state_ttl=settings.router_state_ttl_hours * 3600,
        marker_retention=settings.router_marker_retention_hours * 3600,
        erasure_horizon=settings.router_erasure_horizon_hours * 3600,
    )
    erasures = ErasedAuthors(horizons.erasure_horizon)
    keys = ApiKeys.from_settings(settings)
    owner = SlaOwner(store, SlaTimers(horizons), clock, settings.router_sla_scan_seconds, erasures)
    plausibility = Plausibility(
        agents=keys.agent_ids("agent"), skew=timedelta(seconds=settings.router_clock_skew_seconds)
    )
    router = Router(rules, owner, clock, plausibility)

    view = ChangelogView(
        name="router-sla-view",
        settings=settings,
        topic=settings.router_state_topic,
        input_topic=enriched_topic,
        codec=Codec[bytes](encode=bytes, decode=bytes),
        keep=lambda held: view_keeps(held, horizons, erasures, clock().timestamp()),
    )
    inputs: list[StreamInput[Any]] = [StreamInput(routed_pb2.SlaCommand, router.handle_command)]
    if settings.router_follow_replies:
        inputs.append(StreamInput(reply_pb2.Reply, router.handle_reply))
    co_partitioned = [contract.topic_of(each.input_type) for each in inputs]
    processor = StreamProcessor(
        settings=settings,
        group_id=settings.service_name,
        input_type=enriched_pb2.EnrichedInteraction,
        handler=router.handle,
        extra_inputs=inputs,
        producer=producer,
        before_commit=store.flush,
        partition_listener=owner,
        punctuator=owner,
    )
    # Fenced state: the store stamps its writes with the processor's group generation, so a
    # former owner's late writes never win (socialcrm.state.fencing).
    store.writer = processor.writer
    components: list[Component] = [producer, rules, store, view, processor]
    if settings.router_outbound_enabled:
        components += outbound_components(settings, producer)
    app = create_app(
        settings,
        components,
        before_start=[
            TopicsReady(settings, contract.all_topics()),
            CoPartitioned(settings, enriched_topic, co_partitioned, partitions_of),
        ],
        title="Social CRM router",
        description=(
            "Routes `social.enriched.v1` into `social.routed.v1` with declarative rules, "
            "escalates on `social.escalations.v1` and `alerts.v1` when SLAs are missed, "
            f"keeps its SLA timers in the compacted `{settings.router_state_topic}` "
            "(partitioned like its inputs, each partition's state held by its owner), "
            "and takes agents' replies through `router.sla-commands.v1` into "
            "`social.replies.v1`."
        ),
    )
    desk = ReplyDesk(
        view,
        producer,
        clock,
        horizons,
        AgentQueues.parse(settings.router_agent_queues),
        ReplyLimiter(
            per_agent=Rate(
                settings.router_agent_replies_per_second, settings.router_agent_reply_burst
            ),
            per_interaction=Rate(
                settings.router_interaction_replies_per_minute / 60,
                settings.router_interaction_reply_burst,
            ),
            clock=time.monotonic,
        ),
    )
    app.include_router(api(desk, rules, keys))
    return app
