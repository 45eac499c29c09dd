"""The kpi handlers without I/O: records in, snapshots out when the watermark of every
input partition (or the wall clock, once they are idle) passes a window's end."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, kpi_pb2, reply_pb2, routed_pb2
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.handlers import REPLIES_TOPIC, ROUTED_TOPIC, KpiHandlers
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

T0 = 1_700_000_040  # a minute boundary


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def handlers(clock: Clock) -> KpiHandlers:
    def new_engine() -> KpiEngine:
        return KpiEngine(
            [WindowSpec(60, 60)],
            allowed_lateness_seconds=0,
            share_of_voice=ShareOfVoice(),
            spike_settings=SpikeSettings(),
            backlog_max_age_seconds=3600,
        )

    return KpiHandlers(
        new_engine,
        brands=frozenset({"acme"}),
        queues=frozenset({"care"}),
        idle_partition_seconds=5,
        clock=clock,
    )


def header(external_id: str, at: float) -> common_pb2.EventHeader:
    header = common_pb2.EventHeader(
        event_id=contract.event_id_for(common_pb2.CHANNEL_X, external_id),
        channel=common_pb2.CHANNEL_X,
        external_id=external_id,
    )
    header.occurred_at.FromNanoseconds(int(at * 1e9))
    header.ingested_at.FromNanoseconds(int(at * 1e9))
    return header


def routed(external_id: str, at: float) -> routed_pb2.RoutedInteraction:
    head = header(external_id, at)
    interaction = interaction_pb2.Interaction(
        header=head, conversation_id=external_id, brand="acme", author=common_pb2.Author()
    )
    return routed_pb2.RoutedInteraction(
        header=head,
        enriched=enriched_pb2.EnrichedInteraction(
            header=head,
            interaction=interaction,
            enrichment=enriched_pb2.Enrichment(language="fr"),
        ),
        routing=routed_pb2.Routing(queue="care", needs_response=True),
    )


def reply(external_id: str, at: float) -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=header(external_id, at),
        interaction_event_id="x",
        queue="care",
        first_response=True,
        first_response_seconds=30,
        sla_status=reply_pb2.SLA_STATUS_MET,
    )


def record(topic: str, partition: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, 0, 0, 0, None, b"", None, 0, 0, ())


def snapshots(messages: object) -> list[kpi_pb2.KpiSnapshot]:
    assert isinstance(messages, list)
    return [m for m in messages if isinstance(m, kpi_pb2.KpiSnapshot)]


def test_windows_close_at_the_lowest_watermark_of_the_input_partitions() -> None:
    clock = Clock()
    kpis = handlers(clock)
    both = {(ROUTED_TOPIC, 0), (ROUTED_TOPIC, 1)}
    kpis.assign(both, clock.now)
    kpis.on_routed(routed("a", T0 + 1), record(ROUTED_TOPIC, 0))
    kpis.on_routed(routed("ahead", T0 + 300), record(ROUTED_TOPIC, 0))
    assert kpis.punctuate(clock.now, caught_up=both) == []  # partition 1 not read yet
    kpis.on_routed(routed("b", T0 + 2), record(ROUTED_TOPIC, 1))  # not late
    assert kpis.punctuate(clock.now, caught_up=both) == []  # partition 1 at T0 + 2
    kpis.on_routed(routed("c", T0 + 61), record(ROUTED_TOPIC, 1))
    closed = snapshots(kpis.punctuate(clock.now, caught_up=both))
    full = [s for s in closed if "channel" in s.dimensions]
    assert [s.values["volume"] for s in full] == [2]
    assert kpis.engine.interactions.late_events == 0


def test_reply_windows_close_on_the_wall_clock_once_every_partition_is_idle() -> None:
    clock = Clock()
    kpis = handlers(clock)
    partitions = {(ROUTED_TOPIC, 0), (REPLIES_TOPIC, 0)}
    kpis.assign(partitions, clock.now)
    kpis.on_reply(reply("r1", T0 + 5), record(REPLIES_TOPIC, 0))
    clock.now = T0 + 30
    assert kpis.punctuate(clock.now, caught_up=partitions) == []  # routed not idle yet
    clock.now = T0 + 65
    [closed] = snapshots(kpis.punctuate(clock.now, caught_up=partitions))
    assert dict(closed.dimensions) == {"window": "tumbling_60s", "queue": "care"}
    assert closed.values["sla_met"] == 1
    assert kpis.engine.take_journal()[-1] == ["advance", T0 + 65]


def test_a_redelivered_event_counts_once() -> None:
    clock = Clock()
    kpis = handlers(clock)
    kpis.assign({(ROUTED_TOPIC, 0)}, clock.now)
    kpis.on_routed(routed("a", T0 + 1), record(ROUTED_TOPIC, 0))
    kpis.on_routed(routed("a", T0 + 1), record(ROUTED_TOPIC, 0))
    kpis.on_routed(routed("b", T0 + 61), record(ROUTED_TOPIC, 0))
    closed = snapshots(kpis.punctuate(clock.now, caught_up=set()))
    assert [s.values["volume"] for s in closed if "channel" in s.dimensions] == [1]


def test_reset_forgets_the_state_and_the_partitions() -> None:
    clock = Clock()
    kpis = handlers(clock)
    kpis.assign({(ROUTED_TOPIC, 0)}, clock.now)
    kpis.on_routed(routed("a", T0 + 1), record(ROUTED_TOPIC, 0))
    kpis.reset()
    assert kpis.engine.backlog_by_queue(T0 + 2) == {}
    assert kpis.punctuate(T0 + 600, caught_up=set()) == []  # no partition: no time
    kpis.assign({(ROUTED_TOPIC, 0)}, clock.now)
    kpis.on_routed(routed("a", T0 + 1), record(ROUTED_TOPIC, 0))  # not a duplicate now
    assert kpis.engine.backlog_by_queue(T0 + 2)["care"].items == 1
