"""Event-time windows of KPI figures (pure logic: no I/O).

A ``WindowSpec`` describes tumbling (step == size) or hopping (step < size) windows
aligned on the epoch. ``WindowedKpis`` adds each observation to every window that
contains its event time, under a dimension key, and closes windows once the
watermark passes their end plus the allowed lateness. The watermark comes from the
caller (``advance``): the lowest of the input partitions' event times, or the wall
clock when they are all idle, never each event's own time.
Closed windows come out as ``ClosedWindow`` values with their derived KPIs; a window
that closed refuses the events it would have held (``add`` names it), and an event that
every window refused is counted as late.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the duration histograms behind the percentiles: 1 s to 7 days.
DURATION_BOUNDS: tuple[float, ...] = (
    1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800,
)  # fmt: skip

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WindowSpec:
    """Windows of ``size_seconds`` starting every ``step_seconds`` (tumbling when equal)."""

    size_seconds: int
    step_seconds: int

    def __post_init__(self) -> None:
        if self.size_seconds <= 0 or self.step_seconds <= 0:
            raise ValueError("window size and step must be positive")
        if self.size_seconds % self.step_seconds:
            raise ValueError("window size must be a multiple of its step")

    @property
    def name(self) -> str:
        if self.size_seconds == self.step_seconds:
            return f"tumbling_{self.size_seconds}s"
        return f"hopping_{self.size_seconds}s_every_{self.step_seconds}s"

    def starts_of(self, at: float) -> list[int]:
        """Start times of the windows that contain the instant ``at``, oldest first."""
        last = math.floor(at / self.step_seconds) * self.step_seconds
        count = self.size_seconds // self.step_seconds
        return [last - i * self.step_seconds for i in reversed(range(count))]


def dimensions(**labels: str) -> Dimensions:
    return tuple(sorted(labels.items()))


def dimension_key(dims: Dimensions) -> str:
    """Canonical ``k=v,k=v`` form, the record key of a snapshot."""
    return ",".join(f"{k}={v}" for k, v in dims)


@dataclass
class Figures:
    """Sums and duration histograms of one window under one dimension key."""

    sums: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, list[int]] = field(default_factory=dict)

    def add(self, sums: Mapping[str, float], durations: Mapping[str, float]) -> None:
        for name, value in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        for name, seconds in durations.items():
            counts = self.histograms.setdefault(name, [0] * (len(DURATION_BOUNDS) + 1))
            counts[bisect.bisect_left(DURATION_BOUNDS, seconds)] += 1

    def values(self) -> dict[str, float]:
        """The sums plus the KPIs derived from them."""
        values = dict(self.sums)
        volume = self.sums.get("volume", 0.0)
        if volume:
            positive, negative = self.sums.get("positive", 0.0), self.sums.get("negative", 0.0)
            values["net_sentiment"] = (positive - negative) / volume
            values["mean_sentiment_score"] = self.sums.get("sentiment_score_sum", 0.0) / volume
            for polarity in ("positive", "neutral", "negative"):
                values[f"{polarity}_ratio"] = self.sums.get(polarity, 0.0) / volume
        judged = self.sums.get("sla_met", 0.0) + self.sums.get("sla_breached", 0.0)
        if judged:
            values["sla_compliance_ratio"] = self.sums.get("sla_met", 0.0) / judged
        for name, counts in self.histograms.items():
            for quantile in (0.5, 0.9, 0.99):
                values[f"{name}_p{round(quantile * 100)}"] = histogram_quantile(quantile, counts)
        return values


def figures_entry(
    size: int,
    step: int,
    start: int,
    dims: Iterable[Iterable[str]],
    sums: Mapping[str, float],
    histograms: Mapping[str, list[int]],
) -> list[Any]:
    """The snapshot entry of one window's figures under one dimension key (read back by
    ``WindowedKpis.restore``)."""
    return [size, step, start, [list(pair) for pair in dims], sums, histograms]


def histogram_quantile(quantile: float, counts: list[int]) -> float:
    """Quantile estimated from bucket counts, interpolating linearly inside a bucket."""
    total = sum(counts)
    if not total:
        return math.nan
    rank = quantile * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = DURATION_BOUNDS[index - 1] if index else 0.0
            upper = DURATION_BOUNDS[index] if index < len(DURATION_BOUNDS) else lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return DURATION_BOUNDS[-1]


@dataclass(frozen=True)
class ClosedWindow:
    window: str
    start: int
    end: int
    dimensions: Dimensions
    values: dict[str, float]


@dataclass(frozen=True)
class ShareOfVoice:
    """Own brands measured against competitors; empty ``competitors`` compares every brand."""

    own_brands: frozenset[str] = frozenset()
    competitors: frozenset[str] = frozenset()

    def shares(self, volume_by_brand: Mapping[str, float]) -> dict[str, float]:
        tracked = self.own_brands | self.competitors
        market = {
            brand: volume
            for brand, volume in volume_by_brand.items()
            if not self.competitors or brand in tracked
        }
        total = sum(market.values())
        if not total:
            return {}
        return {brand: volume / total for brand, volume in market.items()}


class WindowedKpis:
    """Open windows of every spec, keyed by (spec, start, dimensions)."""

    def __init__(
        self,
        specs: Iterable[WindowSpec],
        *,
        allowed_lateness_seconds: float,
        share_of_voice: ShareOfVoice | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self.allowed_lateness_seconds = allowed_lateness_seconds
        self.share_of_voice = share_of_voice
        self.watermark = -math.inf
        self.late_events = 0
        self._open: dict[tuple[WindowSpec, int], dict[Dimensions, Figures]] = {}

    def add(
        self,
        at: float,
        dims: Dimensions,
        sums: Mapping[str, float],
        durations: Mapping[str, float] | None = None,
    ) -> list[str]:
        """Add one observation at event time ``at`` to every open window that contains it.
        Returns the names of the windows that refused it (closed already), once per window:
        a hopping window's event may be refused by some windows and counted by others."""
        refused: list[str] = []
        for spec in self.specs:
            for start in spec.starts_of(at):
                if start + spec.size_seconds <= self.watermark:
                    refused.append(spec.name)
                    continue
                figures = self._open.setdefault((spec, start), {}).setdefault(dims, Figures())
                figures.add(sums, durations or {})
        if len(refused) == sum(spec.size_seconds // spec.step_seconds for spec in self.specs):
            self.late_events += 1
        return refused

    def next_close(self) -> float | None:
        """The watermark at which the next open window closes; None when none is open."""
        ends = [start + spec.size_seconds for spec, start in self._open]
        return min(ends) + self.allowed_lateness_seconds if ends else None

    def advance(self, watermark: float) -> list[ClosedWindow]:
        """Move the watermark to ``watermark`` (never back); return the windows it closed:
        those whose end plus the allowed lateness it reached."""
        self.watermark = max(self.watermark, watermark - self.allowed_lateness_seconds)
        closing = sorted(
            (key for key in self._open if key[1] + key[0].size_seconds <= self.watermark),
            key=lambda key: (key[1] + key[0].size_seconds, key[0].name),
        )
        closed: list[ClosedWindow] = []
        for spec, start in closing:
            by_dims = self._open.pop((spec, start))
            closed.extend(self._close(spec, start, by_dims))
        return closed

    def _close(
        self, spec: WindowSpec, start: int, by_dims: dict[Dimensions, Figures]
    ) -> list[ClosedWindow]:
        end = start + spec.size_seconds
        closed = [
            ClosedWindow(spec.name, start, end, dims, figures.values())
            for dims, figures in sorted(by_dims.items())
        ]
        if self.share_of_voice is not None:
            volume_by_brand: dict[str, float] = {}
            for dims, figures in by_dims.items():
                brand = dict(dims).get("brand")
                if brand is not None:
                    volume = figures.sums.get("volume", 0.0)
                    volume_by_brand[brand] = volume_by_brand.get(brand, 0.0) + volume
            for brand, share in sorted(self.share_of_voice.shares(volume_by_brand).items()):
                closed.append(
                    ClosedWindow(
                        spec.name,
                        start,
                        end,
                        dimensions(brand=brand),
                        {"volume": volume_by_brand[brand], "share_of_voice": share},
                    )
                )
        return closed

    def to_state(self) -> dict[str, Any]:
        """JSON-compatible state, restored by ``restore``. ``figures`` lists one small entry
        per (window, dimensions), so that a snapshot can split it at any entry."""
        return {
            "watermark": None if self.watermark == -math.inf else self.watermark,
            "late_events": self.late_events,
            "figures": [
                figures_entry(
                    spec.size_seconds, spec.step_seconds, start, dims, f.sums, f.histograms
                )
                for (spec, start), by_dims in self._open.items()
                for dims, f in by_dims.items()
            ],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        watermark = state.get("watermark")
        self.watermark = -math.inf if watermark is None else float(watermark)
        self.late_events = int(state.get("late_events", 0))
        known = {(s.size_seconds, s.step_seconds): s for s in self.specs}
        self._open = {}
        for size, step, start, dims, sums, histograms in state.get("figures", []):
            spec = known.get((size, step))
            if spec is None:
                continue  # a window spec no longer configured
            by_dims = self._open.setdefault((spec, int(start)), {})
            by_dims[tuple((k, v) for k, v in dims)] = Figures(
                dict(sums), {k: list(v) for k, v in histograms.items()}
            )
