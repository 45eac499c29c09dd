"""The kpi engine (windows, spikes and backlog together) and the events it becomes."""

from __future__ import annotations

import json

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, kpi_pb2
from socialcrm_kpi.backlog import Backlog
from socialcrm_kpi.counting import InteractionDimensions
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.journal import ReplyFacts, RoutedFacts
from socialcrm_kpi.messages import alert_of, event_time, snapshot_of
from socialcrm_kpi.settings import KpiSettings
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

T0 = 1_700_000_040


def engine() -> KpiEngine:
    return KpiEngine(
        [WindowSpec(60, 60)],
        allowed_lateness_seconds=0,
        share_of_voice=ShareOfVoice(),
        spike_settings=SpikeSettings(min_history_buckets=3, min_count=10),
        backlog_max_age_seconds=3600,
    )


def routed(
    event_id: str, at: float, polarity: str = "negative", needs_response: bool = True
) -> RoutedFacts:
    return RoutedFacts(
        event_id=event_id,
        occurred_at=at,
        dims=InteractionDimensions("acme", "x", "fr", polarity, "customer-service-fr"),
        sentiment_score=-0.7 if polarity == "negative" else 0.5,
        escalated=False,
        needs_response=needs_response,
        author=f"author-{event_id}",
        reach=0.1,
    )


def reply(interaction_event_id: str, at: float, seconds: float, met: bool) -> ReplyFacts:
    return ReplyFacts(
        interaction_event_id=interaction_event_id,
        occurred_at=at,
        queue="customer-service-fr",
        first_response=True,
        first_response_seconds=seconds,
        sla_met=met,
        resolution_seconds=0,
    )


def test_interactions_close_into_dimension_and_share_of_voice_windows() -> None:
    kpis = engine()
    kpis.on_routed(routed("a", T0 + 1))
    kpis.on_routed(routed("b", T0 + 2, polarity="positive"))
    assert kpis.on_routed(routed("c", T0 + 61)).closed == []  # events do not close windows
    closed = kpis.advance(T0 + 61).closed
    by_dims = {tuple(sorted(dict(c.dimensions))): c.values for c in closed}
    full = by_dims[("brand", "channel", "language", "queue")]
    assert full["volume"] == 2
    assert full["net_sentiment"] == 0
    assert by_dims[("brand",)]["share_of_voice"] == 1.0


def test_backlog_opens_on_routed_and_closes_on_first_reply() -> None:
    kpis = engine()
    kpis.on_routed(routed("a", T0))
    kpis.on_routed(routed("b", T0 + 30))
    kpis.on_routed(routed("praise", T0 + 40, polarity="positive", needs_response=False))
    kpis.on_reply(reply("a", T0 + 50, 50, met=True))
    [(queue, backlog)] = kpis.backlog_by_queue(T0 + 100).items()
    assert queue == "customer-service-fr"
    assert (backlog.items, backlog.oldest_age_seconds) == (1, 70)


def test_reply_seen_before_its_interaction_leaves_no_backlog() -> None:
    backlog = Backlog(max_age_seconds=3600)
    assert backlog.answer("a", T0) is False
    backlog.open("a", "q", T0)
    assert backlog.by_queue(T0 + 10) == {}


def test_backlog_forgets_items_older_than_its_horizon() -> None:
    backlog = Backlog(max_age_seconds=60)
    backlog.open("a", "q", T0)
    assert backlog.by_queue(T0 + 61) == {}


def test_replies_close_into_sla_windows_per_queue() -> None:
    kpis = engine()
    kpis.on_reply(reply("a", T0 + 1, 100, met=True))
    kpis.on_reply(reply("b", T0 + 2, 9000, met=False))
    kpis.on_reply(reply("c", T0 + 70, 10, met=True))
    [closed] = kpis.advance(T0 + 70).closed
    assert dict(closed.dimensions) == {"queue": "customer-service-fr"}
    assert closed.values["sla_compliance_ratio"] == 0.5
    assert closed.values["first_responses"] == 2


def test_negative_burst_raises_spikes_on_all_negative_and_queue_topics() -> None:
    kpis = engine()
    for minute in range(4):
        kpis.on_routed(routed(f"calm-{minute}", T0 + minute * 60))
    spikes = []
    for i in range(12):
        spikes += kpis.on_routed(routed(f"burst-{i}", T0 + 240 + i)).spikes
    assert {spike.topic for spike in spikes} == {"all", "negative", "queue:customer-service-fr"}


def test_state_round_trip_restores_everything() -> None:
    kpis = engine()
    kpis.on_routed(routed("a", T0))
    parts = json.loads(json.dumps(kpis.to_state()))
    restored = engine()
    restored.restore(parts)
    assert restored.backlog_by_queue(T0 + 5) == kpis.backlog_by_queue(T0 + 5)
    assert restored.spikes.series == kpis.spikes.series
    assert restored.interactions.to_state() == kpis.interactions.to_state()
    assert restored.to_state() == kpis.to_state()


def test_snapshot_event_is_keyed_by_window_and_dimensions_and_valid() -> None:
    kpis = engine()
    kpis.on_routed(routed("a", T0))
    [closed, *_] = kpis.advance(T0 + 60).closed
    snapshot = snapshot_of(closed)
    contract.validate(snapshot)
    assert snapshot.dimensions["window"] == "tumbling_60s"
    assert snapshot.dimension_key.startswith("brand=acme,channel=x,")
    assert snapshot.values["volume"] == 1
    assert snapshot.window_end.seconds - snapshot.window_start.seconds == 60
    # Replays produce the same event id, so consumers can deduplicate.
    assert snapshot_of(closed).header.event_id == snapshot.header.event_id


def test_alert_event_carries_evidence_top_posts_and_authors() -> None:
    kpis = engine()
    for minute in range(4):
        kpis.on_routed(routed(f"calm-{minute}", T0 + minute * 60))
    spikes = [s for i in range(12) for s in kpis.on_routed(routed(f"b{i}", T0 + 240 + i)).spikes]
    negative = next(spike for spike in spikes if spike.topic == "negative")
    alert = alert_of(negative)
    contract.validate(alert)
    assert alert.kind == "viral_spike"
    assert alert.severity == kpi_pb2.SEVERITY_CRITICAL
    assert alert.alert_key == "viral_spike:acme:negative"
    assert alert.evidence["count"] == 10
    assert alert.evidence["baseline"] == pytest.approx(1.0)
    assert alert.evidence["score"] > 6
    assert len(alert.sample_event_ids) == 5
    assert len(alert.top_authors) == 5


def test_settings_parse_windows_and_brands() -> None:
    settings = KpiSettings(
        kpi_windows="60, 300/60", kpi_own_brands="acme", kpi_competitor_brands="globex, initech"
    )
    assert settings.window_specs() == [WindowSpec(60, 60), WindowSpec(300, 60)]
    assert settings.share_of_voice() == ShareOfVoice(
        frozenset({"acme"}), frozenset({"globex", "initech"})
    )


def test_snapshot_plus_replayed_journal_equals_the_live_state() -> None:
    live = engine()
    live.on_routed(routed("a", T0))
    snapshot = json.loads(json.dumps(live.to_state()))
    live.take_journal()
    for i in range(5):
        live.on_routed(routed(f"b{i}", T0 + 20 * i, polarity="positive"))
    live.advance(T0 + 70)
    live.on_reply(reply("a", T0 + 30, 30, met=False))
    journal = json.loads(json.dumps(live.take_journal()))
    assert live.take_journal() == []
    assert not live.has_journal

    restored = engine()
    restored.restore(snapshot)
    restored.replay(journal)
    assert restored.to_state() == live.to_state()
    assert restored.take_journal() == []


def test_advances_are_journaled_so_a_replay_closes_the_same_windows() -> None:
    live = engine()
    live.on_routed(routed("a", T0 + 1))
    closed_live = live.advance(T0 + 60).closed
    live.on_routed(routed("late", T0 + 2))  # its window closed: late, not counted
    journal = json.loads(json.dumps(live.take_journal()))
    assert ["advance", T0 + 60] in journal

    replayed = engine()
    replayed.replay(journal)
    assert replayed.to_state() == live.to_state()
    assert replayed.interactions.late_events == live.interactions.late_events == 1
    assert closed_live


def test_advance_moves_only_when_a_window_closes_and_never_back() -> None:
    kpis = engine()
    assert kpis.advance(T0 + 600).closed == []  # nothing open: no move, no journal entry
    assert kpis.take_journal() == []
    kpis.on_routed(routed("a", T0 + 1))
    kpis.take_journal()
    assert kpis.advance(T0 + 59).closed == []
    assert kpis.take_journal() == []
    assert len(kpis.advance(T0 + 60).closed) == 2  # the window's two dimension sets
    assert kpis.watermark == T0 + 60
    kpis.on_routed(routed("b", T0 + 70))
    kpis.take_journal()
    assert kpis.advance(T0 + 30).closed == []
    assert kpis.take_journal() == []


def test_state_parts_stay_small_as_dimensions_grow() -> None:
    kpis = engine()
    for i in range(3000):
        facts = routed(f"e{i}", T0 + i * 0.01)
        dims = InteractionDimensions(f"brand{i % 300}", "x", "fr", "negative", f"queue{i % 10}")
        kpis.on_routed(RoutedFacts(**{**facts.__dict__, "dims": dims}))
    parts = kpis.to_state()
    # Entries, not parts, are what the state is made of: each small, so any cut fits.
    assert max(len(json.dumps(e)) for entries in parts.values() for e in entries) < 4096
    restored = engine()
    restored.restore(json.loads(json.dumps(parts)))
    assert restored.to_state() == parts


def test_event_time_is_never_after_ingestion() -> None:
    header = common_pb2.EventHeader()
    header.occurred_at.FromSeconds(T0 + 3600)  # a source clock an hour ahead
    header.ingested_at.FromSeconds(T0)
    assert event_time(header) == T0
    header.occurred_at.FromSeconds(T0 - 60)
    assert event_time(header) == T0 - 60


def test_a_redelivered_event_counts_once_even_after_a_restore() -> None:
    live = engine()
    live.on_routed(routed("a", T0 + 1))
    live.on_reply(ReplyFacts("a", T0 + 2, "customer-service-fr", True, 1, True, 0, "reply-a"))
    restored = engine()
    restored.restore(json.loads(json.dumps(live.to_state())))
    restored.on_routed(routed("a", T0 + 1))  # the router published it again
    restored.on_reply(ReplyFacts("a", T0 + 2, "customer-service-fr", True, 1, True, 0, "reply-a"))
    assert restored.take_journal() == []
    [interactions, _, replies] = restored.advance(T0 + 60).closed
    assert interactions.values["volume"] == 1
    assert replies.values["replies"] == 1
    assert restored.backlog_by_queue(T0 + 3) == {}  # not reopened by the redelivery


def test_event_ids_are_forgotten_once_far_behind_the_watermark() -> None:
    kpis = KpiEngine(
        [WindowSpec(60, 60)],
        allowed_lateness_seconds=0,
        share_of_voice=ShareOfVoice(),
        spike_settings=SpikeSettings(),
        backlog_max_age_seconds=3600,
        dedup_horizon_seconds=120,
    )
    kpis.on_routed(routed("old", T0 + 1))
    kpis.on_routed(routed("new", T0 + 100))
    kpis.advance(T0 + 122)
    assert "old" not in kpis.seen
    assert "new" in kpis.seen
