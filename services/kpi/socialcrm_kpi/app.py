"""Wiring of the kpi service.

social.routed.v1 and social.replies.v1 in (consumer group ``kpi``, one active instance,
the others hot standbys); KpiSnapshot events on kpi.snapshots.v1 when windows close,
Alert events on alerts.v1 on viral spikes, Prometheus metrics on /metrics, durable state
in kpi.state.v2: outputs, state and input offsets commit together, one Kafka transaction
per batch.
"""

from __future__ import annotations

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.kafka.transactional import (
    TransactionalInput,
    TransactionalProcessor,
    TransactionalProducer,
)
from socialcrm.runtime import TopicsReady, create_app
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.handlers import KpiHandlers
from socialcrm_kpi.metrics import MetricsRefresher
from socialcrm_kpi.ownership import KpiOwnership
from socialcrm_kpi.settings import KpiSettings
from socialcrm_kpi.state import KpiStateStore


def build_app(settings: KpiSettings) -> FastAPI:
    def new_engine() -> KpiEngine:
        return KpiEngine(
            settings.window_specs(),
            allowed_lateness_seconds=settings.kpi_allowed_lateness_seconds,
            share_of_voice=settings.share_of_voice(),
            spike_settings=settings.spike_settings(),
            backlog_max_age_seconds=settings.kpi_backlog_max_age_seconds,
            dedup_horizon_seconds=settings.kpi_dedup_horizon_seconds,
        )

    handlers = KpiHandlers(
        new_engine,
        brands=settings.counted_brands(),
        queues=settings.known_queues(),
        idle_partition_seconds=settings.kpi_idle_partition_seconds,
    )
    refresher = MetricsRefresher(lambda: handlers.engine)
    handlers.on_spike = refresher.refresh
    producer = TransactionalProducer(settings, settings.transactional_id())
    store = KpiStateStore(
        settings,
        producer,
        snapshot_seconds=settings.kpi_state_snapshot_seconds,
    )
    processor = TransactionalProcessor(
        settings=settings,
        group_id=settings.service_name,
        inputs=[
            TransactionalInput(routed_pb2.RoutedInteraction, handlers.on_routed),
            TransactionalInput(reply_pb2.Reply, handlers.on_reply),
        ],
        producer=producer,
        state=KpiOwnership(handlers, store, on_restored=refresher.refresh),
        session_timeout_ms=settings.kpi_session_timeout_ms,
    )
    return create_app(
        settings,
        # The processor starts and stops the producer as it becomes active or standby.
        [refresher, processor],
        before_start=[TopicsReady(settings, contract.all_topics()), _StateTopic(store)],
        title="Social CRM KPIs",
        description=(
            "Windowed KPIs of `social.routed.v1` and `social.replies.v1` on `/metrics` and "
            "`kpi.snapshots.v1`; viral spikes on `alerts.v1`. One instance is active, the "
            "others wait as hot standbys."
        ),
    )


class _StateTopic:
    """Creates the state's changelog before the processor can be assigned partitions."""

    name = "kpi-state-topic"

    def __init__(self, store: KpiStateStore) -> None:
        self.store = store

    async def start(self) -> None:
        await self.store.create()

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None
