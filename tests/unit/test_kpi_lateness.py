"""kpi across an upstream failover, on an injected clock (issue 23, item 7).

Two input partitions carry one interaction a second each for two minutes (240 events);
partition 1 stalls for 20 seconds (its router owner failed over) and then delivers what it
held back, with the events' own times. With the former defaults (idle 5 s, lateness
10 s) partition 1 counted as idle during the stall, the window it held events for closed,
and those events were refused by the 1-minute window and by one of the 5-minute windows
but counted by the others, so the late-event counter stayed 0. The defaults now cover the
failover, and a window that refuses an event counts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message
from prometheus_client import REGISTRY

from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.handlers import ROUTED_TOPIC, KpiHandlers
from socialcrm_kpi.settings import KpiSettings
from tests.unit.test_kpi_handlers import T0, Clock, record, routed, snapshots

PARTITIONS = {(ROUTED_TOPIC, 0), (ROUTED_TOPIC, 1)}
SECONDS = 120
STALL_FROM, STALL_UNTIL = 52, 72  # partition 1 delivers nothing in between
TUMBLING, HOPPING = "tumbling_60s", "hopping_300s_every_60s"


def handlers(settings: KpiSettings, clock: Clock) -> KpiHandlers:
    def new_engine() -> KpiEngine:
        return KpiEngine(
            settings.window_specs(),
            allowed_lateness_seconds=settings.kpi_allowed_lateness_seconds,
            share_of_voice=settings.share_of_voice(),
            spike_settings=settings.spike_settings(),
            backlog_max_age_seconds=settings.kpi_backlog_max_age_seconds,
        )

    return KpiHandlers(
        new_engine,
        brands=frozenset({"acme"}),
        queues=frozenset({"care"}),
        idle_partition_seconds=settings.kpi_idle_partition_seconds,
        clock=clock,
    )


def stalled_stream(settings: KpiSettings) -> list[Message]:
    """Every message the 240 events and the wall clock (run on until every window closed)
    make, punctuated every second as the processor does."""
    clock = Clock()
    kpis = handlers(settings, clock)
    kpis.assign(PARTITIONS, clock.now)
    messages: list[Message] = []
    held_back: list[int] = []
    for second in range(600):
        clock.now = T0 + second + 0.5
        if second < SECONDS:
            messages += kpis.on_routed(routed(f"p0-{second}", T0 + second), record(ROUTED_TOPIC, 0))
            if STALL_FROM <= second < STALL_UNTIL:
                held_back.append(second)
            else:
                messages += kpis.on_routed(
                    routed(f"p1-{second}", T0 + second), record(ROUTED_TOPIC, 1)
                )
        if second == STALL_UNTIL:
            for held in held_back:
                messages += kpis.on_routed(routed(f"p1-{held}", T0 + held), record(ROUTED_TOPIC, 1))
        # Nothing is left to read on either partition: a stalled one is caught up too.
        messages += kpis.punctuate(clock.now, caught_up=PARTITIONS)
    return messages


def counted(messages: Sequence[Message], window: str) -> float:
    return sum(
        s.values["volume"]
        for s in snapshots(list(messages))
        if s.dimensions["window"] == window and "channel" in s.dimensions
    )


def refused(window: str) -> float:
    labels = {"topic": ROUTED_TOPIC, "window": window}
    return REGISTRY.get_sample_value("socialcrm_kpi_window_late_events_total", labels) or 0.0


def late() -> float:
    labels = {"topic": ROUTED_TOPIC}
    return REGISTRY.get_sample_value("socialcrm_kpi_late_events_total", labels) or 0.0


def test_the_defaults_cover_an_upstream_failover_and_count_every_event() -> None:
    settings = KpiSettings()
    assert settings.kpi_idle_partition_seconds > STALL_UNTIL - STALL_FROM
    before = refused(TUMBLING), refused(HOPPING)
    messages = stalled_stream(settings)
    assert counted(messages, TUMBLING) == 2 * SECONDS
    # Each event is in five 5-minute windows.
    assert counted(messages, HOPPING) == 5 * 2 * SECONDS
    assert (refused(TUMBLING), refused(HOPPING)) == before


def test_each_window_that_refuses_an_event_counts_it() -> None:
    # The former defaults: partition 1 is idle after 5 s of its stall, the first minute
    # closes at 70 s, and the 8 events it held back from 52 s to 59 s are refused.
    settings = KpiSettings(kpi_idle_partition_seconds=5, kpi_allowed_lateness_seconds=10)
    before = refused(TUMBLING), refused(HOPPING), late()
    messages = stalled_stream(settings)
    lost = 60 - STALL_FROM
    assert counted(messages, TUMBLING) == 2 * SECONDS - lost
    # Refused by the 5-minute window that ended with the first minute, counted by 4 others.
    assert counted(messages, HOPPING) == 5 * 2 * SECONDS - lost
    assert refused(TUMBLING) - before[0] == lost
    assert refused(HOPPING) - before[1] == lost
    # Not too late for every window: not "late" in the former sense.
    assert late() == before[2]
