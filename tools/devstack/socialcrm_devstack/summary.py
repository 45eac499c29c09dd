"""The demo's live summary: figures scraped from the services, the story so far, the pages.

``render`` is pure: figures and story in, lines out. ``LiveSummary`` refreshes in its own
thread at a fixed interval (a cycle scrapes five /metrics endpoints concurrently: about 1 s
under load, sentiment's alone 1.6 s), so the stream never waits for it. On a terminal it
redraws one screen in place; piped, it prints plain lines.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from pymongo import MongoClient

from socialcrm_devstack import metrics_page
from socialcrm_devstack.agents import AgentStats
from socialcrm_devstack.metrics_page import Samples

OPEN_CASE_STATUSES = ["new", "open", "pending_customer"]
CHANNELS = ("x", "facebook", "instagram", "email", "chat", "community")
# Lines kept for notes (e.g. an answer of ingest other than 200) below the screen.
NOTES_KEPT = 3


class PageView(Protocol):
    """What the summary shows of a page received from Alertmanager."""

    @property
    def alertname(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def runbook_url(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def received_at(self) -> float: ...
    @property
    def notification(self) -> int: ...


@dataclass(frozen=True)
class Figures:
    """One scrape of every service's metrics, and the CRM's counts."""

    metrics: dict[str, Samples]
    contacts: int
    open_cases: int


@dataclass(frozen=True)
class Story:
    """What the demo itself knows: its scenario, what it sent, what came back."""

    scenario: str
    phase: str
    elapsed: float
    sent: int
    burst_due_after: float | None = None
    burst_began_at: float | None = None
    burst_posts: int = 0
    agents: AgentStats | None = None
    pages: Sequence[PageView] = field(default_factory=list)


def scrape(url: str) -> Samples:
    """Metric samples of one service, by sample name and labels; empty when unreachable."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return metrics_page.parse(text)


def total(samples: Samples, name: str, **match: str) -> int:
    return round(sum(metrics_page.values(samples, name, **match)))


def collect(urls: dict[str, str], mongo: MongoClient[dict[str, object]]) -> Figures:
    """Scrapes every service at once (the slowest one sets the time, not their sum)."""
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        scraped = dict(zip(urls, pool.map(scrape, urls.values()), strict=True))
    db = mongo["socialcrm"]
    return Figures(
        metrics=scraped,
        contacts=db.contacts.count_documents({"merged_into": {"$exists": False}}),
        open_cases=db.cases.count_documents({"status": {"$in": OPEN_CASE_STATUSES}}),
    )


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _since_burst(page: PageView, burst_began_at: float | None) -> str:
    if burst_began_at is None:
        return "no burst yet"
    after = page.received_at - burst_began_at
    return f"{after:.0f}s after the burst began" if after >= 0 else "before the burst"


def burst_lines(story: Story, kpi: Samples) -> list[str]:
    spikes_now = total(kpi, "socialcrm_viral_spike_active")
    spike_alerts = total(kpi, "socialcrm_alerts_total", kind="viral_spike")
    detected = f"viral spikes now={spikes_now}  spike alerts={spike_alerts}"
    if story.burst_began_at is not None:
        began = _clock(story.burst_began_at)
        return [f"burst             began={began}  posts={story.burst_posts}  {detected}"]
    if story.burst_due_after is not None:
        return [f"burst             due at {story.burst_due_after:.0f}s  {detected}"]
    return [f"burst             none in this scenario  {detected}"]


SEVERITY_ORDER = {"critical": 0, "warning": 1}


def _notifications(pages: Sequence[PageView]) -> list[list[PageView]]:
    """The pages of each notification, oldest first, its most severe alert first."""
    grouped: dict[int, list[PageView]] = {}
    for page in pages:
        grouped.setdefault(page.notification, []).append(page)
    return [
        sorted(alerts, key=lambda page: SEVERITY_ORDER.get(page.severity, 2))
        for alerts in grouped.values()
    ]


def page_lines(story: Story, max_pages: int | None) -> list[str]:
    """One line per page: a notification of Alertmanager, led by its most severe alert, with
    the alerts it grouped (one incident)."""
    pages = _notifications(story.pages)
    # A notification that only says an incident is over pages nobody.
    paged = sum(1 for lead, *_ in pages if lead.status == "firing")
    resolved = f"  resolved={len(pages) - paged}" if len(pages) > paged else ""
    lines = [f"pages             received={paged}{resolved}  (Alertmanager to the demo's receiver)"]
    shown = pages if max_pages is None else pages[-max_pages:] if max_pages > 0 else []
    for lead, *grouped in shown:
        also = f"  grouped: {', '.join(p.alertname for p in grouped)}" if grouped else ""
        lines.append(
            f"  {lead.status:<8} {lead.alertname} ({lead.severity}) "
            f"{_since_burst(lead, story.burst_began_at)}  runbook {lead.runbook_url}  "
            f"{lead.summary}{also}"
        )
    return lines


def reply_lines(story: Story, metrics: dict[str, Samples]) -> list[str]:
    kpi, router = metrics.get("kpi", {}), metrics.get("router", {})
    answered = total(kpi, "socialcrm_first_response_seconds_count")
    seconds = sum(kpi.get("socialcrm_first_response_seconds_sum", {}).values())
    mean = f"{seconds / answered:.0f}s" if answered else "-"
    met = total(kpi, "socialcrm_replies_total", sla_status="met")
    breached = total(kpi, "socialcrm_replies_total", sla_status="breached")
    compliance = f"{100 * met / (met + breached):.0f}%" if met + breached else "-"
    resolutions = total(kpi, "socialcrm_resolution_seconds_count")
    lines = []
    if story.agents is not None:
        agents = story.agents
        lines.append(
            f"agents            replies={agents.replies}  within SLA={agents.within_sla}  "
            f"late={agents.late}  resolved={agents.resolved}  planned={agents.planned}  "
            f"never routed={agents.never_tracked}"
        )
    lines += [
        f"first response    answered={answered}  mean FRT={mean}  SLA met={met}  "
        f"breached={breached}  compliance={compliance}  resolutions={resolutions}",
        f"escalations       high-risk at routing={total(kpi, 'socialcrm_escalations_total')}  "
        f"SLA level 1={total(router, 'socialcrm_router_sla_escalations_total', level='1')}  "
        f"SLA level 2={total(router, 'socialcrm_router_sla_escalations_total', level='2')}",
    ]
    return lines


def stage_counts(figures: Figures, sent: int) -> dict[str, int]:
    """Posts sent, and interactions out of each stage, in the pipeline's order."""
    metrics = figures.metrics
    produced = "socialcrm_events_produced_total"
    return {
        "sent": sent,
        "ingest": total(metrics.get("ingest", {}), "socialcrm_ingest_accepted_total"),
        "sentiment": total(metrics.get("sentiment", {}), produced, topic="social.enriched.v1"),
        "router": total(metrics.get("router", {}), produced, topic="social.routed.v1"),
        "crm-sink": total(
            metrics.get("crm-sink", {}), "socialcrm_events_consumed_total", topic="social.routed.v1"
        ),
        "kpi": total(metrics.get("kpi", {}), "socialcrm_interactions_total"),
    }


def drained(counts: dict[str, int]) -> bool:
    """Whether every stage handled every post sent: at least once (a stage whose commit a
    rebalance refused handles a few records again, as at-least-once delivery allows),
    and kpi, which counts each interaction once, exactly."""
    sent = counts["sent"]
    return all(count >= sent for count in counts.values()) and counts["kpi"] == sent


def stage_lines(figures: Figures, sent: int) -> list[str]:
    metrics = figures.metrics
    kpi = metrics.get("kpi", {})
    stages = stage_counts(figures, sent).items()
    polarity = {
        p: total(kpi, "socialcrm_interactions_total", polarity=p)
        for p in ("negative", "neutral", "positive")
    }
    counted = sum(polarity.values()) or 1
    channels = {c: total(kpi, "socialcrm_interactions_total", channel=c) for c in CHANNELS}
    dead = sum(total(m, "socialcrm_events_dead_lettered_total") for m in metrics.values())
    oldest = max(kpi.get("socialcrm_backlog_oldest_age_seconds", {}).values(), default=0.0)
    return [
        "events per stage  " + "  ".join(f"{name}={count}" for name, count in stages),
        "sentiment mix     "
        + "  ".join(f"{p}={n} ({100 * n / counted:.0f}%)" for p, n in polarity.items()),
        "channels          " + "  ".join(f"{c}={n}" for c, n in channels.items()),
        f"CRM               contacts={figures.contacts}  open cases={figures.open_cases}  "
        f"escalations={total(kpi, 'socialcrm_escalations_total')}",
        f"KPIs              backlog={total(kpi, 'socialcrm_backlog_items')}  "
        f"oldest unanswered={oldest:.0f}s  "
        f"viral spikes now={total(kpi, 'socialcrm_viral_spike_active')}  "
        f"KPI windows closed={total(kpi, 'socialcrm_kpi_windows_closed_total')}",
        f"alerts            alerts={total(kpi, 'socialcrm_alerts_total')}  dead letters={dead}",
    ]


def render(figures: Figures, story: Story, now: float, max_pages: int | None = None) -> list[str]:
    """The summary's lines; ``max_pages`` bounds the pages listed (the newest)."""
    kpi = figures.metrics.get("kpi", {})
    return [
        f"── {_clock(now)}  running {story.elapsed:5.0f}s  scenario {story.scenario}: "
        f"{story.phase}  (Ctrl-C to stop) ──",
        *burst_lines(story, kpi),
        *page_lines(story, max_pages),
        *reply_lines(story, figures.metrics),
        *stage_lines(figures, story.sent),
    ]


class LiveSummary:
    """Prints the summary every ``interval`` seconds from its own thread."""

    def __init__(
        self,
        urls: dict[str, str],
        mongo: MongoClient[dict[str, object]],
        story: Callable[[], Story],
        header: Sequence[str] = (),
        interval: float = 2.0,
    ) -> None:
        self.urls, self.mongo, self.story = urls, mongo, story
        self.header = list(header)
        self.interval = interval
        self.interactive = sys.stdout.isatty()
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-summary", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def note(self, message: str) -> None:
        """A message for the user: printed at once when piped, below the screen on a terminal."""
        with self._lock:
            if self.interactive:
                self.notes = [*self.notes[-(NOTES_KEPT - 1) :], message]
            else:
                print(message, flush=True)

    def figures(self) -> Figures:
        return collect(self.urls, self.mongo)

    def report(self, figures: Figures) -> list[str]:
        """The summary of ``figures``, in plain lines."""
        return render(figures, self.story(), time.time())

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            figures = collect(self.urls, self.mongo)
            with self._lock:
                if self.interactive:
                    self._redraw(figures)
                else:
                    print("\n".join(render(figures, self.story(), time.time())), flush=True)
            self._stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _redraw(self, figures: Figures) -> None:
        """One screen from its top-left corner: each line cleared to its end, lines past the
        terminal's width cut, the pages listed as far as the height allows."""
        width, height = shutil.get_terminal_size()
        story, now = self.story(), time.time()
        fixed = render(figures, story, now, max_pages=0)
        room = height - 1 - len(self.header) - len(fixed) - len(self.notes)
        lines = [
            *self.header,
            *render(figures, story, now, max_pages=max(0, room)),
            *self.notes,
        ][: height - 1]
        screen = "".join(f"{line[:width]}\x1b[K\n" for line in lines)
        sys.stdout.write(f"\x1b[H{screen}\x1b[J")
        sys.stdout.flush()
