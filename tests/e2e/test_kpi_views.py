"""The KPI console views that Prometheus serves, opened in headless Chromium while the
platform runs with traffic: every panel draws a graph of its series, and the page's
screenshot (saved under the test's temporary folder) is not blank."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from socialcrm_devstack.dashboards.panels import DASHBOARDS, Dashboard
from socialcrm_devstack.observability import Observability
from socialcrm_devstack.stack import LocalStack
from tests.fixtures.browser import open_page, png_distinct_bytes
from tests.fixtures.kpi_traffic import two_rounds_scraped, without_data

pytestmark = pytest.mark.e2e

# PromConsole's time control reads its range from the URL hash: the last 10 minutes,
# the test's whole traffic.
LAST_10_MINUTES = '#pctc{"duration":600,"endTime":0}'


@pytest.fixture(scope="module")
def prometheus_with_data(platform: LocalStack, observability: Observability) -> str:
    """The Prometheus's URL once every panel's query has data from two rounds of traffic."""
    prometheus = observability.prometheus
    brand, queue = f"brand-{uuid.uuid4().hex[:6]}", "e2e-views"  # a known queue
    two_rounds_scraped(platform, prometheus, brand, queue)
    empty = without_data(
        prometheus, [q.expr for d in DASHBOARDS for p in d.panels for q in p.queries]
    )
    assert not empty, "queries without data:\n" + "\n".join(empty)
    return prometheus.url


def panel_sections(dom: str) -> list[str]:
    """The rendered DOM of each panel of a view, in page order."""
    return re.split(r'<div class="col-lg-6 socialcrm-panel">', dom)[1:]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=[d.slug for d in DASHBOARDS])
def test_console_view_draws_every_panel_with_data(
    prometheus_with_data: str, dashboard: Dashboard, tmp_path: Path
) -> None:
    url = f"{prometheus_with_data}/consoles/{dashboard.slug}.html{LAST_10_MINUTES}"
    image = tmp_path / f"{dashboard.slug}.png"
    dom = open_page(url, tmp_path / "profile", screenshot=image)
    sections = panel_sections(dom)
    assert len(sections) == len(dashboard.panels), dom[-2000:]
    for panel, section in zip(dashboard.panels, sections, strict=True):
        assert "prom_graph_error" not in section, f"{panel.title}: error or no data"
        assert "prom_graph_loading" not in section, f"{panel.title}: still loading"
        assert "<svg" in section, f"{panel.title}: no graph drawn"
        # Rickshaw's legend holds one labelled line per series drawn.
        assert 'class="label"' in section, f"{panel.title}: no series in the legend"
    assert png_distinct_bytes(image) > 64, f"blank screenshot {image}"


def test_console_index_links_every_view(observability: Observability, tmp_path: Path) -> None:
    dom = open_page(f"{observability.prometheus_url}/consoles/index.html", tmp_path / "profile")
    for dashboard in DASHBOARDS:
        assert f'href="{dashboard.slug}.html' in dom, dashboard.slug
        assert dashboard.title in dom
