"""The layout of the kpi state in its changelog: journal per batch, snapshots that replace
it, cut by size, and a restore that gives back the live state (pure functions, no broker)."""

from __future__ import annotations

import json
from typing import Any

from socialcrm import contract
from socialcrm.settings import ServiceSettings
from socialcrm.v1 import kpi_pb2
from socialcrm_kpi.counting import InteractionDimensions
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.journal import ReplyFacts, RoutedFacts
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.state import part_bytes, restore_engine, state_writes
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec, dimensions

T0 = 1_700_000_040
MAX_MESSAGE_BYTES = ServiceSettings().kafka_max_message_bytes
PART_BYTES = part_bytes(MAX_MESSAGE_BYTES)


def engine() -> KpiEngine:
    return KpiEngine(
        [WindowSpec(60, 60), WindowSpec(300, 60)],
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


def apply(changelog: dict[str, Any], writes: dict[str, str | None]) -> None:
    """What compaction leaves of the changelog after ``writes`` (read back as JSON)."""
    for key, text in writes.items():
        if text is None:
            changelog.pop(key, None)
        else:
            changelog[key] = json.loads(text)


def test_journal_then_snapshot_then_journal_restores_the_live_state() -> None:
    live, seq = engine(), 0
    changelog: dict[str, Any] = {}
    live.on_routed(routed("a", T0 + 1))
    writes, seq = state_writes(live, changelog, seq, False, PART_BYTES)
    apply(changelog, writes)
    assert list(changelog) == ["journal/1"]

    live.on_routed(routed("b", T0 + 2))
    live.advance(T0 + 61)
    writes, seq = state_writes(live, changelog, seq, True, PART_BYTES)
    apply(changelog, writes)
    assert not [key for key in changelog if key.startswith("journal/")]
    assert changelog["checkpoint"]["seq"] == 2

    live.on_routed(routed("c", T0 + 70))
    writes, seq = state_writes(live, changelog, seq, False, PART_BYTES)
    apply(changelog, writes)
    assert sorted(k for k in changelog if k.startswith("journal/")) == ["journal/3"]

    restored = engine()
    assert restore_engine(restored, changelog) == 3
    assert restored.to_state() == live.to_state()
    assert restored.take_journal() == []


def test_a_snapshot_deletes_the_parts_it_no_longer_uses() -> None:
    live, changelog = engine(), {"snapshot/backlog.99": {}, "checkpoint": {"seq": 0, "parts": []}}
    writes, _ = state_writes(live, changelog, 0, True, PART_BYTES)
    assert writes["snapshot/backlog.99"] is None


def test_an_empty_changelog_restores_an_empty_engine() -> None:
    restored = engine()
    assert restore_engine(restored, {}) == 0
    assert restored.to_state() == engine().to_state()


def test_nothing_to_write_when_nothing_happened() -> None:
    assert state_writes(engine(), [], 4, False, PART_BYTES) == ({}, 4)


def test_a_huge_backlog_makes_records_under_the_brokers_limit_and_restores_identically() -> None:
    # 300,000 open items and 5,000 (brand, channel, language, queue) combinations in open
    # windows: the former 16 backlog shards and 2 windows per part were each over 1 MB.
    live = engine()
    for index in range(300_000):
        live.backlog.open(f"interaction-{index:06d}-{'x' * 40}", f"queue-{index % 7}", T0 + index)
    for combination in range(5_000):
        dims = dimensions(
            brand=f"brand-{combination % 50}",
            channel=("x", "facebook", "instagram", "email")[combination % 4],
            language=("fr", "en", "other")[combination % 3],
            queue=f"queue-{combination // 50}",
        )
        sums = {"volume": 1.0, "negative": 1.0, "sentiment_score_sum": -0.5}
        live.interactions.add(T0 + 1, dims, sums)
        live.interactions.add(T0 + 61, dims, sums)
    live.on_routed(routed("a", T0 + 2))

    writes, seq = state_writes(live, [], 0, True, PART_BYTES)
    now = contract.timestamp()
    sizes = {
        key: len(key.encode())
        + len(contract.encode(kpi_pb2.KpiState(state_key=key, state_json=text, updated_at=now)))
        for key, text in writes.items()
        if text is not None
    }
    largest = max(sizes, key=sizes.__getitem__)
    assert sizes[largest] < MAX_MESSAGE_BYTES * 0.8, (largest, sizes[largest])
    assert len([key for key in sizes if key.startswith("snapshot/backlog.")]) > 16

    changelog: dict[str, Any] = {}
    apply(changelog, writes)
    restored = engine()
    assert restore_engine(restored, changelog) == seq == 1
    assert restored.to_state() == live.to_state()
    assert restored.backlog_by_queue(T0 + 300_000) == live.backlog_by_queue(T0 + 300_000)


def test_a_long_journal_is_cut_into_chunks_replayed_in_order() -> None:
    live, changelog = engine(), dict[str, Any]()
    for index in range(200):
        live.on_routed(routed(f"event-{index}", T0 + index))
    writes, seq = state_writes(live, [], 0, False, 4096)
    assert len(writes) > 2
    assert all(text is not None and len(text) <= 4096 for text in writes.values())
    apply(changelog, writes)
    restored = engine()
    assert restore_engine(restored, changelog) == seq == 1
    assert restored.to_state() == live.to_state()


def test_a_reply_read_before_its_interaction_is_kept_by_a_snapshot() -> None:
    live, changelog = engine(), dict[str, Any]()
    live.on_reply(ReplyFacts("early", T0 + 1, "care", True, 30, True, 0, "reply-early"))
    writes, _ = state_writes(live, [], 0, True, PART_BYTES)
    apply(changelog, writes)
    restored = engine()
    restore_engine(restored, changelog)
    restored.on_routed(routed("early", T0))  # the interaction, read after the reply
    assert restored.backlog_by_queue(T0 + 5) == {}


def test_a_snapshot_of_the_former_layout_still_restores() -> None:
    # Written before parts were cut by size: maps and shards, no format in the checkpoint.
    window = {"size": 60, "step": 60, "start": T0, "figures": [
        {"dims": [["brand", "acme"], ["queue", "care"]], "sums": {"volume": 2.0},
         "histograms": {}},
    ]}  # fmt: skip
    changelog: dict[str, Any] = {
        "checkpoint": {
            "seq": 3,
            "parts": ["backlog.0", "seen.0", "windows.interactions", "windows.interactions.0"],
        },
        "snapshot/backlog.0": {"open": {"a": ["care", T0 + 1]}},
        "snapshot/seen.0": {"a": T0 + 1},
        "snapshot/windows.interactions": {"watermark": T0 - 60, "late_events": 4},
        "snapshot/windows.interactions.0": [window],
        "journal/4": [["routed", "b", T0 + 2, ["acme", "x", "fr", "negative", "care"],
                       -0.5, False, True, "author-b", 0.1]],
    }  # fmt: skip
    restored = engine()
    assert restore_engine(restored, changelog) == 4
    assert restored.backlog_by_queue(T0 + 3)["care"].items == 2
    assert "a" in restored.seen
    assert restored.interactions.late_events == 4
    closed = restored.advance(T0 + 60).closed
    assert sum(c.values["volume"] for c in closed if len(c.dimensions) == 2) == 2
