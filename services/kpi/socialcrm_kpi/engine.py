"""What the kpi service computes from each event (pure logic: no I/O).

``KpiEngine`` feeds routed interactions and replies into the event-time windows,
the spike detector and the backlog, and returns what fired; ``advance`` moves the
watermark (from the input partitions' watermarks, or the wall clock when they are all
idle) and returns the windows it closed, for the service to publish. Everything it
applies, advances included, is also appended to a journal (named records, see
``journal``): the state is a snapshot (``to_state``) plus the journal entries applied
since, replayed in order by ``replay`` (event sourcing: the computations are
deterministic, so a restore closes the same windows at the same points of the stream).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from socialcrm_kpi import journal
from socialcrm_kpi.backlog import Backlog, QueueBacklog
from socialcrm_kpi.dedup import SeenEvents
from socialcrm_kpi.journal import Advance, JournalEntry, ReplyFacts, RoutedFacts
from socialcrm_kpi.spikes import Post, Spike, SpikeDetector, SpikeSettings
from socialcrm_kpi.windows import ClosedWindow, ShareOfVoice, WindowedKpis, WindowSpec, dimensions

# The kinds of entry of a snapshot (``to_state``), in the order a restore reads them.
STATE_KINDS = ("meta", "seen", "spikes", "windows.interactions", "windows.replies", "backlog")


@dataclass
class Outcome:
    closed: list[ClosedWindow] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    # The windows (by name) that refused the event because they had closed, once each.
    refused: list[str] = field(default_factory=list)


class KpiEngine:
    def __init__(
        self,
        specs: Iterable[WindowSpec],
        *,
        allowed_lateness_seconds: float,
        share_of_voice: ShareOfVoice,
        spike_settings: SpikeSettings,
        backlog_max_age_seconds: float,
        dedup_horizon_seconds: float = 600.0,
    ) -> None:
        specs = tuple(specs)
        self.interactions = WindowedKpis(
            specs, allowed_lateness_seconds=allowed_lateness_seconds, share_of_voice=share_of_voice
        )
        self.replies = WindowedKpis(specs, allowed_lateness_seconds=allowed_lateness_seconds)
        self.spikes = SpikeDetector(spike_settings)
        self.backlog = Backlog(backlog_max_age_seconds)
        self.seen = SeenEvents(dedup_horizon_seconds)
        self._journal: list[JournalEntry] = []

    @property
    def watermark(self) -> float:
        """The event time (before the allowed lateness) the windows have advanced to."""
        return self.interactions.watermark + self.interactions.allowed_lateness_seconds

    @property
    def has_journal(self) -> bool:
        """Whether entries were applied since the last ``take_journal``."""
        return bool(self._journal)

    def take_journal(self) -> list[list[Any]]:
        """The entries applied since the last call, in order, in their JSON-compatible
        form (``journal.encode``)."""
        entries, self._journal = self._journal, []
        return [journal.encode(entry) for entry in entries]

    def replay(self, entries: Iterable[Sequence[Any]]) -> None:
        """Apply journal entries (as ``take_journal`` gave them) again, after a restore;
        their outcomes were published."""
        for entry in map(journal.decode, entries):
            if isinstance(entry, Advance):
                self.advance(entry.watermark)
            elif isinstance(entry, RoutedFacts):
                self.on_routed(entry)
            elif isinstance(entry, ReplyFacts):
                self.on_reply(entry)
        self._journal = []

    def on_routed(self, facts: RoutedFacts) -> Outcome:
        """Apply a routed interaction; one already applied (same event id) changes nothing."""
        if facts.event_id in self.seen:
            return Outcome()
        self.seen.add(facts.event_id, facts.occurred_at)
        d = facts.dims
        sums = {
            "volume": 1.0,
            d.polarity: 1.0,
            "sentiment_score_sum": facts.sentiment_score,
            "escalations": 1.0 if facts.escalated else 0.0,
            "needs_response": 1.0 if facts.needs_response else 0.0,
        }
        at = facts.occurred_at
        refused = self.interactions.add(
            at,
            dimensions(brand=d.brand, channel=d.channel, queue=d.queue, language=d.language),
            sums,
        )
        outcome = Outcome(refused=refused)
        post = Post(facts.event_id, facts.author, facts.reach)
        topics = ["all", f"queue:{d.queue}"] + (["negative"] if d.polarity == "negative" else [])
        for topic in topics:
            spike = self.spikes.observe(d.brand, topic, at, post)
            if spike is not None:
                outcome.spikes.append(spike)
        if facts.needs_response:
            self.backlog.open(facts.event_id, d.queue, at)
        self._journal.append(facts)
        return outcome

    def on_reply(self, facts: ReplyFacts) -> Outcome:
        """Apply a reply; one already applied (same event id) changes nothing."""
        if facts.event_id in self.seen:
            return Outcome()
        if facts.event_id:
            self.seen.add(facts.event_id, facts.occurred_at)
        sums = {"replies": 1.0}
        durations: dict[str, float] = {}
        if facts.first_response:
            sums["first_responses"] = 1.0
            durations["first_response_seconds"] = facts.first_response_seconds
            if facts.sla_met is not None:
                sums["sla_met" if facts.sla_met else "sla_breached"] = 1.0
        if facts.resolution_seconds > 0:
            sums["resolutions"] = 1.0
            durations["resolution_seconds"] = facts.resolution_seconds
        refused = self.replies.add(
            facts.occurred_at, dimensions(queue=facts.queue), sums, durations
        )
        self.backlog.answer(facts.interaction_event_id, facts.occurred_at)
        self._journal.append(facts)
        return Outcome(refused=refused)

    def advance(self, watermark: float) -> Outcome:
        """Move the watermark of every window to ``watermark`` (never back): the windows
        whose end plus the allowed lateness it passes close. It moves only when a window
        closes: a quiet stream then writes no journal entry a second, and an event can be
        late only for a window that was closed."""
        closes = [
            t for t in (self.interactions.next_close(), self.replies.next_close()) if t is not None
        ]
        if not closes or watermark < min(closes) or watermark <= self.watermark:
            return Outcome()
        self._journal.append(Advance(watermark))
        self.seen.forget_before(watermark)
        return Outcome(
            closed=self.interactions.advance(watermark) + self.replies.advance(watermark)
        )

    def backlog_by_queue(self, now: float) -> dict[str, QueueBacklog]:
        return self.backlog.by_queue(now)

    def to_state(self) -> dict[str, list[Any]]:
        """The whole state as JSON-compatible entries, by kind (``STATE_KINDS``). Each entry
        is small (an event id, a series, one window's figures under one dimension key), so
        the changelog can split a kind at any entry, whatever the backlog."""
        windows = {"interactions": self.interactions, "replies": self.replies}
        states = {name: kpis.to_state() for name, kpis in windows.items()}
        return {
            "meta": [{name: {**state, "figures": []} for name, state in states.items()}],
            "seen": self.seen.to_entries(),
            "spikes": [[key, series] for key, series in self.spikes.to_state().items()],
            **{f"windows.{name}": state["figures"] for name, state in states.items()},
            "backlog": self.backlog.to_entries(),
        }

    def restore(self, state: Mapping[str, list[Any]]) -> None:
        """Replace the state by that of a ``to_state`` snapshot (a kind missing: empty)."""
        [meta] = state.get("meta") or [{}]
        for name, kpis in (("interactions", self.interactions), ("replies", self.replies)):
            figures = state.get(f"windows.{name}", [])
            kpis.restore({**meta.get(name, {}), "figures": figures})
        self.seen.restore(state.get("seen", []))
        self.spikes.restore(dict(state.get("spikes", [])))
        self.backlog.restore(state.get("backlog", []))
