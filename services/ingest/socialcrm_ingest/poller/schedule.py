"""What a poller decides, as functions of data: cursor walks, backoff, pacing (pure logic).

A poll walks an API's pages newest first. The cursor remembers the newest item time
of the walks completed (``watermark``), the page where an unfinished walk resumes
(``page_token``), and the external ids published lately (``seen``). An item is new
when its id was not seen and it is not older than the watermark; a walk ends on a
page without a new item (what follows is older), on the last page, or resumes at
the next poll when it hit the page budget. The cursor is saved only after the
broker acknowledged the page's interactions: a crash repeats a page, never skips one,
and the ids make the repeat harmless.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Cursor:
    watermark: datetime | None = None
    page_token: str = ""
    walk_newest: datetime | None = None
    seen: tuple[str, ...] = field(default=())

    @property
    def walking(self) -> bool:
        return bool(self.page_token)


@dataclass(frozen=True)
class Entry:
    """One item of a page: its external id (or fingerprint) and the time it happened.

    An item that could not be read has no time: it is new until its key was seen.
    """

    key: str
    occurred_at: datetime | None


@dataclass(frozen=True)
class Step:
    fresh: tuple[str, ...]
    cursor: Cursor
    walk_done: bool


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def is_fresh(cursor: Cursor, entry: Entry, seen: set[str]) -> bool:
    if entry.key in seen:
        return False
    if cursor.watermark is None or entry.occurred_at is None:
        return True
    return entry.occurred_at >= cursor.watermark


def advance(
    cursor: Cursor,
    entries: Sequence[Entry],
    next_page_token: str,
    *,
    pages_left: int,
    max_seen: int,
) -> Step:
    """The keys of a page to publish and the cursor to save once they are acknowledged.

    ``pages_left`` counts the pages this poll may still fetch after this one.
    """
    seen = set(cursor.seen)
    fresh: list[str] = []
    for entry in entries:
        if is_fresh(cursor, entry, seen):
            fresh.append(entry.key)
            seen.add(entry.key)
    times = [entry.occurred_at for entry in entries if entry.occurred_at is not None]
    walk_newest = _later(cursor.walk_newest, max(times, default=None))
    remembered = (*cursor.seen, *fresh)[-max_seen:] if max_seen > 0 else ()
    if next_page_token and fresh:
        # More pages may hold new items: go on now, or at the next poll when out of budget.
        return Step(
            tuple(fresh),
            replace(cursor, page_token=next_page_token, walk_newest=walk_newest, seen=remembered),
            walk_done=pages_left <= 0,
        )
    return Step(
        tuple(fresh),
        Cursor(watermark=_later(cursor.watermark, walk_newest), seen=remembered),
        walk_done=True,
    )


def cursor_to_json(cursor: Cursor) -> bytes:
    return json.dumps(
        {
            "watermark": cursor.watermark.isoformat() if cursor.watermark else None,
            "page_token": cursor.page_token,
            "walk_newest": cursor.walk_newest.isoformat() if cursor.walk_newest else None,
            "seen": list(cursor.seen),
        },
        separators=(",", ":"),
    ).encode()


def cursor_from_json(data: bytes) -> Cursor:
    """The cursor of a state record; ValueError when the record is not one."""
    try:
        document = json.loads(data)
        watermark, walk_newest = document.get("watermark"), document.get("walk_newest")
        return Cursor(
            watermark=datetime.fromisoformat(watermark) if watermark else None,
            page_token=str(document.get("page_token") or ""),
            walk_newest=datetime.fromisoformat(walk_newest) if walk_newest else None,
            seen=tuple(str(key) for key in document.get("seen") or ()),
        )
    except (AttributeError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a poll cursor: {exc}") from exc


def backoff_delay(failures: int, *, initial: float, maximum: float, jitter: float) -> float:
    """Exponential backoff with jitter: half the doubled delay is fixed, half is random.

    ``failures`` counts the consecutive failures (1 for the first); ``jitter`` is a
    random number in [0, 1), so that replicas failing together do not retry together.
    """
    ceiling = min(maximum, math.ldexp(initial, max(0, failures - 1)))
    return ceiling / 2 + ceiling / 2 * jitter


def retry_after_seconds(value: str | None, now: datetime, *, maximum: float) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date), at most
    ``maximum`` (an upstream may ask for years); None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), maximum)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, (moment - now).total_seconds()), maximum)


class RequestPacer:
    """Spaces requests evenly to stay under ``per_minute`` (a state machine; time is given)."""

    def __init__(self, per_minute: float) -> None:
        self.spacing = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next_slot = float("-inf")

    def reserve(self, now: float) -> float:
        """Take the next request slot; the seconds to wait before sending it."""
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.spacing
        return slot - now

    def hold_off(self, until: float) -> None:
        """No request before ``until`` (e.g. after a 429 with Retry-After)."""
        self._next_slot = max(self._next_slot, until)
