"""A viral negative burst posted through ingest pages on-call: kpi detects the spike,
Prometheus fires the rule, Alertmanager routes it, the local receiver gets the page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.pages import Page
from socialcrm_devstack.stack import LocalStack
from tests.deploy.tools import REPO
from tests.fixtures.browser import open_page, png_distinct_bytes
from tests.fixtures.metrics import metric_value
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.e2e

# A served brand no other end-to-end test posts about, so its spike series is this test's.
BRAND = "acme-fr"
BURST_CALLS = 4
POSTS_PER_CALL = 20
# kpi alerts only on a series with 15 minutes (buckets) of history: one post 20 minutes
# before the burst gives the series that history, its baseline staying near zero.
HISTORY = timedelta(minutes=20)
# Spike, scrape (5 s), rule evaluation (5 s), Alertmanager's group wait (5 s), plus the
# pipeline on a loaded 2-core machine: generous, never a measure of speed.
PAGE_WAIT_SECONDS = 180


def send(platform: LocalStack, stream: DemoStream, posts: int, moment: datetime) -> None:
    delivery = stream.burst_delivery(posts, now=moment)
    response = post_webhook(platform, delivery.path, delivery.body, params={"brand": BRAND})
    assert response.status_code == 200, response.text


def kpi_counted(platform: LocalStack) -> float:
    """Interactions of the brand kpi has counted."""
    text = httpx.get(f"{platform.url('kpi')}/metrics", timeout=10).text
    return metric_value(text, "socialcrm_interactions_total", brand=BRAND)


def test_a_negative_burst_pages_with_severity_summary_and_runbook(
    platform: LocalStack, observability: Observability, tmp_path: Path
) -> None:
    stream = DemoStream(seed=18)
    send(platform, stream, 1, datetime.now(UTC) - HISTORY)
    # The history must reach kpi before the burst: the burst's posts travel on other
    # partitions, and a stage's fetch can hand them on first (a fetch waits up to 100 ms
    # for more records), which would leave the older post out of a bucket already closed.
    eventually(lambda: kpi_counted(platform) >= 1, what="the history post counted by kpi")
    burst_began = datetime.now(UTC)
    for _ in range(BURST_CALLS):
        send(platform, stream, POSTS_PER_CALL, datetime.now(UTC))

    def page() -> Page | None:
        return next(
            (
                page
                for page in observability.receiver.pages_since(burst_began.timestamp())
                if page.alertname == "NegativeViralSpike"
                and page.firing
                and dict(page.labels).get("brand") == BRAND
            ),
            None,
        )

    received = eventually(page, PAGE_WAIT_SECONDS)
    assert received.severity == "critical"
    assert BRAND in received.summary
    assert received.runbook_url == "docs/runbook.md#negativeviralspike"
    runbook = (REPO / "docs" / "runbook.md").read_text()
    assert "\n## NegativeViralSpike\n" in runbook

    # What on-call opens from the address the demo prints: Alertmanager's own web UI (built
    # by bin/setup with its assets), with the firing alert and a way to silence it. Filtered
    # to the brand's incident, its one group shows expanded: the alert with its labels.
    image = tmp_path / "alertmanager-alerts.png"
    incident = quote(f'{{alertname="NegativeViralSpike",brand="{BRAND}"}}', safe="")
    dom = open_page(
        f"{observability.alertmanager_url}/#/alerts?silenced=false&inhibited=true"
        f"&filter={incident}",
        tmp_path / "profile",
        screenshot=image,
    )
    assert "The Debian package of the alertmanager does not include" not in dom
    assert 'severity="critical"' in dom, dom[-3000:]
    # The alert's own silence form, prefilled with its labels.
    assert "#/silences/new?filter=%7Balertname%3D%22NegativeViralSpike%22" in dom
    assert png_distinct_bytes(image) > 64, f"blank screenshot {image}"
