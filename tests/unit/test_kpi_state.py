"""The layout of the kpi state in its changelog: journal per batch, snapshots that replace
it, and a restore that gives back the live state (pure functions, no broker)."""

from __future__ import annotations

import json
from typing import Any

from socialcrm_kpi.counting import InteractionDimensions
from socialcrm_kpi.engine import KpiEngine, RoutedFacts
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.state import restore_engine, state_writes
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

T0 = 1_700_000_040


def engine() -> KpiEngine:
    return KpiEngine(
        [WindowSpec(60, 60)],
        allowed_lateness_seconds=0,
        share_of_voice=ShareOfVoice(),
        spike_settings=SpikeSettings(),
        backlog_max_age_seconds=3600,
    )


def routed(event_id: str, at: float) -> RoutedFacts:
    return RoutedFacts(
        event_id=event_id,
        occurred_at=at,
        dims=InteractionDimensions("acme", "x", "fr", "negative", "care"),
        sentiment_score=-0.5,
        escalated=False,
        needs_response=True,
        author=f"author-{event_id}",
        reach=0.1,
    )


def apply(changelog: dict[str, Any], writes: dict[str, Any]) -> None:
    """What compaction leaves of the changelog after ``writes`` (JSON round trip)."""
    for key, document in writes.items():
        if document is None:
            changelog.pop(key, None)
        else:
            changelog[key] = json.loads(json.dumps(document))


def test_journal_then_snapshot_then_journal_restores_the_live_state() -> None:
    live, seq = engine(), 0
    changelog: dict[str, Any] = {}
    live.on_routed(routed("a", T0 + 1))
    writes, seq = state_writes(live, changelog, seq, snapshot=False)
    apply(changelog, writes)
    assert list(changelog) == ["journal/1"]

    live.on_routed(routed("b", T0 + 2))
    live.advance(T0 + 61)
    writes, seq = state_writes(live, changelog, seq, snapshot=True)
    apply(changelog, writes)
    assert not [key for key in changelog if key.startswith("journal/")]
    assert changelog["checkpoint"]["seq"] == 2

    live.on_routed(routed("c", T0 + 70))
    writes, seq = state_writes(live, changelog, seq, snapshot=False)
    apply(changelog, writes)
    assert sorted(k for k in changelog if k.startswith("journal/")) == ["journal/3"]

    restored = engine()
    assert restore_engine(restored, changelog) == 3
    assert restored.to_state() == live.to_state()
    assert restored.take_journal() == []


def test_a_snapshot_deletes_the_parts_it_no_longer_uses() -> None:
    live, changelog = engine(), {"snapshot/backlog.99": {}, "checkpoint": {"seq": 0, "parts": []}}
    writes, _ = state_writes(live, changelog, 0, snapshot=True)
    assert writes["snapshot/backlog.99"] is None


def test_an_empty_changelog_restores_an_empty_engine() -> None:
    restored = engine()
    assert restore_engine(restored, {}) == 0
    assert restored.to_state() == engine().to_state()


def test_nothing_to_write_when_nothing_happened() -> None:
    assert state_writes(engine(), [], 4, snapshot=False) == ({}, 4)
