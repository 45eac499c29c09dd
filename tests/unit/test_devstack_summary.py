"""The demo's summary lines: the burst, the pages with their delay, FRT and SLA, escalations."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from socialcrm_devstack.agents import AgentStats
from socialcrm_devstack.metrics_page import Samples
from socialcrm_devstack.summary import Figures, Story, drained, render

BURST_BEGAN = datetime(2026, 11, 30, 22, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class FakePage:
    alertname: str
    severity: str
    summary: str
    runbook_url: str
    status: str
    received_at: float
    notification: int = 1


def kpi_samples() -> Samples:
    return {
        "socialcrm_interactions_total": {
            (("channel", "x"), ("polarity", "negative")): 30.0,
            (("channel", "email"), ("polarity", "positive")): 10.0,
        },
        "socialcrm_first_response_seconds_count": {(("queue", "community"),): 4.0},
        "socialcrm_first_response_seconds_sum": {(("queue", "community"),): 100.0},
        "socialcrm_replies_total": {
            (("queue", "community"), ("sla_status", "met")): 3.0,
            (("queue", "community"), ("sla_status", "breached")): 1.0,
        },
        "socialcrm_escalations_total": {(("queue", "community"),): 2.0},
        "socialcrm_viral_spike_active": {(("brand", "acme"), ("topic", "negative")): 1.0},
        "socialcrm_alerts_total": {(("kind", "viral_spike"), ("severity", "critical")): 1.0},
        "socialcrm_backlog_items": {(("queue", "community"),): 7.0},
    }


def figures() -> Figures:
    router: Samples = {
        "socialcrm_router_sla_escalations_total": {(("level", "1"),): 5.0, (("level", "2"),): 1.0}
    }
    return Figures(metrics={"kpi": kpi_samples(), "router": router}, contacts=3, open_cases=2)


def story(pages: int) -> Story:
    page = FakePage(
        "NegativeViralSpike",
        "critical",
        "Negative viral spike for acme",
        "docs/runbook.md#negativeviralspike",
        "firing",
        BURST_BEGAN + 42,
    )
    return Story(
        scenario="story",
        phase="viral burst under way",
        elapsed=120,
        sent=40,
        burst_due_after=75,
        burst_began_at=BURST_BEGAN,
        burst_posts=60,
        agents=AgentStats(planned=9, replies=4, within_sla=3, late=1, resolved=2),
        pages=[replace(page, notification=n) for n in range(1, pages + 1)],
    )


def line(lines: list[str], prefix: str) -> str:
    return next(item for item in lines if item.startswith(prefix))


def test_the_summary_tells_the_burst_the_pages_and_the_reply_figures() -> None:
    lines = render(figures(), story(pages=1), BURST_BEGAN + 60)
    assert "posts=60" in line(lines, "burst ")
    assert "spike alerts=1" in line(lines, "burst ")
    assert "received=1" in line(lines, "pages ")
    page = next(item for item in lines if "NegativeViralSpike" in item)
    assert "(critical) 42s after the burst began" in page
    assert "runbook docs/runbook.md#negativeviralspike" in page
    assert "replies=4  within SLA=3  late=1  resolved=2" in line(lines, "agents ")
    first_response = line(lines, "first response ")
    assert "mean FRT=25s" in first_response
    assert "compliance=75%" in first_response
    assert "SLA level 1=5  SLA level 2=1" in line(lines, "escalations ")
    stages = line(lines, "events per stage").split(maxsplit=3)[3]
    assert dict(item.split("=") for item in stages.split())["kpi"] == "40"
    assert "backlog=7" in line(lines, "KPIs ")


def test_a_screen_lists_only_the_newest_pages_that_fit() -> None:
    assert (
        len(render(figures(), story(pages=9), BURST_BEGAN, max_pages=2))
        == len(render(figures(), story(pages=0), BURST_BEGAN)) + 2
    )


def test_before_the_burst_the_summary_says_when_it_is_due() -> None:
    early = Story(scenario="story", phase="steady traffic", elapsed=5, sent=5, burst_due_after=75)
    lines = render(figures(), early, BURST_BEGAN)
    assert "due at 75s" in line(lines, "burst ")
    assert "received=0" in line(lines, "pages ")


def test_the_pipeline_is_drained_when_every_stage_handled_every_post_kpi_once() -> None:
    counts = {"sent": 10, "ingest": 10, "sentiment": 11, "router": 10, "crm-sink": 10, "kpi": 10}
    assert drained(counts)
    assert not drained({**counts, "crm-sink": 9})
    assert not drained({**counts, "kpi": 11})


def test_the_alerts_of_one_notification_are_one_page_led_by_the_most_severe() -> None:
    critical = FakePage(
        "NegativeViralSpike", "critical", "acme", "docs/runbook.md#x", "firing", BURST_BEGAN + 42
    )
    warning = replace(critical, alertname="ViralSpike", severity="warning")
    incident = replace(story(pages=0), pages=[warning, critical])
    lines = render(figures(), incident, BURST_BEGAN + 60)
    assert "received=1" in line(lines, "pages ")
    page = next(item for item in lines if "NegativeViralSpike" in item)
    assert page.strip().startswith("firing   NegativeViralSpike (critical)")
    assert page.endswith("grouped: ViralSpike")


def test_a_notification_of_a_resolved_incident_is_no_page() -> None:
    firing = FakePage(
        "NegativeViralSpike", "critical", "acme", "docs/runbook.md#x", "firing", BURST_BEGAN + 42
    )
    resolved = replace(firing, status="resolved", received_at=BURST_BEGAN + 90, notification=2)
    incident = replace(story(pages=0), pages=[firing, resolved])
    lines = render(figures(), incident, BURST_BEGAN + 120)
    assert "received=1  resolved=1" in line(lines, "pages ")
