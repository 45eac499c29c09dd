"""kpi's journal entries: named records with one form in the changelog, the form changelogs
written before the records were named (pure functions, no broker)."""

from __future__ import annotations

from typing import Any

from socialcrm_kpi import journal
from socialcrm_kpi.backlog import Backlog
from socialcrm_kpi.counting import InteractionDimensions
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.journal import Advance, ReplyFacts, RoutedFacts
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.state import restore_engine
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

T0 = 1_700_000_040
DIMS = ["acme", "x", "fr", "negative", "care"]

# Journal records as the kpi service wrote them before its entries were named records
# (positional arrays, kind first), and a reply journaled before replies kept their id.
WRITTEN: dict[str, Any] = {
    "journal/1": [
        ["routed", "a", T0 + 1, DIMS, -0.5, False, True, "author-a", 0.1],
        ["routed", "b", T0 + 2, DIMS, -0.5, True, True, "author-b", 0.3],
    ],
    "journal/2": [
        ["reply", "a", T0 + 20, "care", True, 19.0, True, 0.0, "reply-a"],
        ["advance", T0 + 61],
    ],
    "journal/3": [
        ["routed", "c", T0 + 70, DIMS, 0.2, False, False, "author-c", 0.2],
        ["reply", "b", T0 + 80, "care", True, 78.0, False, 120.0],
    ],
}


def engine() -> KpiEngine:
    return KpiEngine(
        [WindowSpec(60, 60), WindowSpec(300, 60)],
        allowed_lateness_seconds=0,
        share_of_voice=ShareOfVoice(),
        spike_settings=SpikeSettings(),
        backlog_max_age_seconds=3600,
    )


def routed(
    event_id: str, at: float, score: float, escalated: bool, needs: bool, reach: float
) -> RoutedFacts:
    dims = InteractionDimensions(*DIMS)
    return RoutedFacts(event_id, at, dims, score, escalated, needs, f"author-{event_id}", reach)


def live_engine() -> KpiEngine:
    """The engine that applied, live, what ``WRITTEN`` journals."""
    live = engine()
    live.on_routed(routed("a", T0 + 1, -0.5, False, True, 0.1))
    live.on_routed(routed("b", T0 + 2, -0.5, True, True, 0.3))
    live.on_reply(ReplyFacts("a", T0 + 20, "care", True, 19.0, True, 0.0, "reply-a"))
    live.advance(T0 + 61)
    live.on_routed(routed("c", T0 + 70, 0.2, False, False, 0.2))
    live.on_reply(ReplyFacts("b", T0 + 80, "care", True, 78.0, False, 120.0))
    return live


def test_a_changelog_written_before_the_entries_were_named_still_restores() -> None:
    live = live_engine()
    restored = engine()
    assert restore_engine(restored, WRITTEN) == 3
    assert restored.to_state() == live.to_state()
    assert restored.take_journal() == []


def test_the_journal_keeps_its_form_in_the_changelog() -> None:
    written = [entry for key in sorted(WRITTEN) for entry in WRITTEN[key]]
    # The old reply without an id is written today with an empty one.
    assert live_engine().take_journal() == [*written[:-1], [*written[-1], ""]]


def test_each_kind_of_entry_decodes_to_its_record() -> None:
    reply = ReplyFacts("a", T0, "care", True, 3.0, None, 0.0, "r")
    for entry in (routed("a", T0, 0.5, True, False, 1.0), reply, Advance(T0 + 60)):
        assert journal.decode(journal.encode(entry)) == entry
    assert journal.decode(["reply", "a", T0, "care", True, 3.0, None, 0.0]) == ReplyFacts(
        "a", T0, "care", True, 3.0, None, 0.0
    )


def test_a_kind_this_version_does_not_know_is_skipped() -> None:
    assert journal.decode(["later-kind", 1, 2]) is None
    replayed = engine()
    replayed.replay([["later-kind", 1, 2], WRITTEN["journal/1"][0]])
    assert "a" in replayed.seen


def test_backlog_entries_keep_their_form() -> None:
    entries = [["open", "b", "care", T0 + 2.0], ["answered", "x", T0 + 3.0]]
    backlog = Backlog(3600)
    backlog.restore(entries)
    assert backlog.to_entries() == entries
