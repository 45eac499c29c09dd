"""The engine's journal entries as named records, and their one form in the changelog.

An entry is written as a JSON array, its kind first, then its fields in order:

- ``["routed", event_id, occurred_at, [brand, channel, language, polarity, queue],
  sentiment_score, escalated, needs_response, author, reach]``;
- ``["reply", interaction_event_id, occurred_at, queue, first_response,
  first_response_seconds, sla_met, resolution_seconds, event_id]`` (``event_id`` absent
  from replies journaled before it was kept);
- ``["advance", watermark]``.

Arrays, not objects, keep a long journal small; ``encode`` and ``decode`` are the only
places that know the positions, and ``decode`` reads every changelog written so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from socialcrm_kpi.counting import InteractionDimensions


@dataclass(frozen=True)
class RoutedFacts:
    """What the KPIs need of one routed interaction."""

    event_id: str
    occurred_at: float
    dims: InteractionDimensions
    sentiment_score: float
    escalated: bool
    needs_response: bool
    # Opaque key of the author (counting.AuthorPseudonyms): the journal holds no handle.
    author: str
    reach: float


@dataclass(frozen=True)
class ReplyFacts:
    """What the KPIs need of one reply."""

    interaction_event_id: str
    occurred_at: float
    queue: str
    first_response: bool
    first_response_seconds: float
    sla_met: bool | None
    resolution_seconds: float
    event_id: str = ""


@dataclass(frozen=True)
class Advance:
    """The windows' watermark moved to ``watermark`` (``KpiEngine.advance``)."""

    watermark: float


JournalEntry = RoutedFacts | ReplyFacts | Advance


def encode(entry: JournalEntry) -> list[Any]:
    """The JSON-compatible form of ``entry`` in the changelog."""
    if isinstance(entry, Advance):
        return ["advance", entry.watermark]
    if isinstance(entry, RoutedFacts):
        d = entry.dims
        return [
            "routed",
            entry.event_id,
            entry.occurred_at,
            [d.brand, d.channel, d.language, d.polarity, d.queue],
            entry.sentiment_score,
            entry.escalated,
            entry.needs_response,
            entry.author,
            entry.reach,
        ]
    return [
        "reply",
        entry.interaction_event_id,
        entry.occurred_at,
        entry.queue,
        entry.first_response,
        entry.first_response_seconds,
        entry.sla_met,
        entry.resolution_seconds,
        entry.event_id,
    ]


def decode(raw: Sequence[Any]) -> JournalEntry | None:
    """The entry ``encode`` wrote as ``raw``; None for a kind this version does not know
    (the engine skips it, as it always has)."""
    kind, *fields = raw
    if kind == "advance":
        [watermark] = fields
        return Advance(watermark)
    if kind == "routed":
        event_id, at, dims, score, escalated, needs_response, author, reach = fields
        return RoutedFacts(
            event_id,
            at,
            InteractionDimensions(*dims),
            score,
            escalated,
            needs_response,
            author,
            reach,
        )
    if kind == "reply":
        return ReplyFacts(*fields)
    return None
