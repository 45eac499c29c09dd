"""The figures of ``bench/paging.py`` (pure): what was sent when, the pages received, and
the report printed from them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from socialcrm_devstack.pages import Page

PAGE_ALERT = "NegativeViralSpike"


@dataclass(frozen=True)
class Options:
    rate: float
    steady_minutes: float
    burst_rate: float
    burst_seconds: float
    history_minutes: float
    catch_up_rate: float
    page_timeout: float
    seed: int
    json: bool


@dataclass
class Timeline:
    """Wall-clock moments (epoch seconds) of the run, and what was sent."""

    catch_up_started: float = 0.0
    live_started: float | None = None
    burst_started: float | None = None
    spike_seen: float | None = None
    alert_firing: float | None = None
    steady_events: int = 0
    burst_posts_offered: int = 0
    burst_posts_accepted: int = 0
    failed_calls: dict[str, int] = field(default_factory=dict)


def page_after_burst(pages: list[Page], timeline: Timeline) -> Page | None:
    """The first page of an alert that began after the burst did: a false alarm still
    firing when the burst starts is repeated by Alertmanager, but is not the burst's page."""
    started = timeline.burst_started
    if started is None:
        return None
    return min(
        (
            p
            for p in first_pages(pages)
            if p.starts_at >= started and p.alertname == PAGE_ALERT and p.firing
        ),
        key=lambda p: p.received_at,
        default=None,
    )


def figures(options: Options, timeline: Timeline, pages: list[Page]) -> dict[str, Any]:
    live = timeline.live_started or math.inf
    burst_at = timeline.burst_started or math.inf
    page = page_after_burst(pages, timeline)

    def since_burst(moment: float | None) -> float | None:
        if moment is None or timeline.burst_started is None:
            return None
        return round(moment - timeline.burst_started, 1)

    def firing(keep: Callable[[Page], bool]) -> list[Page]:
        return [p for p in first_pages(pages) if p.firing and keep(p)]

    return {
        "rate": options.rate,
        "history_minutes": options.history_minutes,
        "catch_up_s": round(live - timeline.catch_up_started, 1),
        "steady_minutes": options.steady_minutes,
        "steady_events_sent": timeline.steady_events,
        "burst_rate": options.burst_rate,
        "burst_seconds": options.burst_seconds,
        "burst_posts_offered": timeline.burst_posts_offered,
        "burst_posts_accepted": timeline.burst_posts_accepted,
        "failed_calls": timeline.failed_calls,
        "spike_gauge_s": since_burst(timeline.spike_seen),
        "alert_firing_s": since_burst(timeline.alert_firing),
        "page_latency_s": since_burst(page.received_at if page else None),
        "false_alarm_pages": len(firing(lambda p: live <= p.received_at < burst_at)),
        "pages_during_history": len(firing(lambda p: p.received_at < live)),
        "pages": [
            {**asdict(p), "labels": dict(p.labels), "since_burst_s": since_burst(p.received_at)}
            for p in first_pages(pages)
        ],
    }


def first_pages(pages: list[Page]) -> list[Page]:
    """The first notification of each alert and status: Alertmanager repeats a group's
    alerts, still firing, every time the group changes."""
    seen: set[tuple[object, ...]] = set()
    first = []
    for page in pages:
        key = (page.alertname, page.labels, page.starts_at, page.status)
        if key not in seen:
            seen.add(key)
            first.append(page)
    return first


def report(named: dict[str, Any]) -> str:
    def seconds(key: str) -> str:
        value = named[key]
        return "never" if value is None else f"{value:.1f} s"

    lines = [
        "",
        f"history replayed           {named['history_minutes']:g} min of event time at "
        f"{named['rate']:g}/s, caught up in {named['catch_up_s']:.0f} s",
        f"steady traffic             {named['steady_minutes']:g} min at {named['rate']:g}/s "
        f"({named['steady_events_sent']} interactions, every channel)",
        f"false alarms (steady)      {named['false_alarm_pages']} pages"
        f"   (during the history replay: {named['pages_during_history']})",
        f"burst                      {named['burst_posts_accepted']}/"
        f"{named['burst_posts_offered']} posts accepted at {named['burst_rate']:g}/s offered",
        "from the burst's first post:",
        f"  kpi spike gauge          {seconds('spike_gauge_s')}",
        f"  Prometheus alert firing  {seconds('alert_firing_s')}",
        f"  page at the receiver     {seconds('page_latency_s')}   ({PAGE_ALERT})",
        f"failed calls               {named['failed_calls'] or 0}",
        "pages received:",
    ]
    for page in named["pages"]:
        at = page["since_burst_s"]
        lines.append(
            f"  {page['status']:<8} {page['alertname']:<20} {page['severity']:<8} "
            f"{'' if at is None else f'{at:+.1f} s'}  {page['summary']}"
        )
    return "\n".join(lines)
