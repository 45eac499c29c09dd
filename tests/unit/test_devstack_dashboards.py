"""Panel definitions and their two renderings: Grafana JSON and Prometheus console views."""

from __future__ import annotations

import json

from socialcrm_devstack.dashboards.consoles import console_files, console_view, legend_name
from socialcrm_devstack.dashboards.grafana import dashboard_json
from socialcrm_devstack.dashboards.panels import (
    DASHBOARDS,
    PLATFORM_HEALTH,
    Dashboard,
    Panel,
    Query,
)


def test_legend_labels_become_promconsole_placeholders() -> None:
    assert legend_name("p50 {{queue}}") == "p50 [[queue]]"
    assert legend_name("{{ job }} ← {{topic}}") == "[[job]] ← [[topic]]"
    assert legend_name("spikes") == "spikes"


def test_every_panel_has_a_known_unit_and_a_query() -> None:
    slugs = [dashboard.slug for dashboard in DASHBOARDS]
    assert len(set(slugs)) == len(slugs) == 4
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            assert panel.queries, panel.title
            assert panel.unit in {"short", "s", "ops", "percentunit", "none"}, panel.title


def test_console_view_graphs_each_panel_with_its_queries_and_legends() -> None:
    dashboard = Dashboard(
        "test",
        "Social CRM / Test",
        "A <test> view.",
        (
            Panel(
                "Latency",
                "s",
                (Query('max(x{a="b"})', "p50 {{job}}"), Query("min(x)", "{{job}}")),
            ),
        ),
    )
    view = console_view(dashboard, (dashboard,))
    assert '{{ template "prom_console_head" }}' in view
    assert "A &lt;test&gt; view." in view
    assert 'expr: ["max(x{a=\\"b\\"})", "min(x)"],' in view
    assert 'name: ["p50 [[job]]", "[[job]]"],' in view
    assert 'yUnits: "s",' in view


def test_index_links_every_view() -> None:
    files = console_files(DASHBOARDS)
    assert set(files) == {"index.html", *(f"{d.slug}.html" for d in DASHBOARDS)}
    for dashboard in DASHBOARDS:
        assert f'href="{dashboard.slug}.html#pctc' in files["index.html"]


def test_grafana_json_keeps_queries_legends_units_and_value_texts() -> None:
    model = json.loads(dashboard_json(PLATFORM_HEALTH))
    assert model["uid"] == "socialcrm-platform-health"
    for panel, definition in zip(model["panels"], PLATFORM_HEALTH.panels, strict=True):
        assert panel["type"] == definition.kind
        assert panel["fieldConfig"]["defaults"]["unit"] == definition.unit
        assert [(t["refId"], t["expr"], t["legendFormat"]) for t in panel["targets"]] == [
            (chr(ord("A") + i), q.expr, q.legend) for i, q in enumerate(definition.queries)
        ]
    [services_up] = [panel for panel in model["panels"] if panel["title"] == "Services up"]
    [mapping] = services_up["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"]["1"] == {"text": "UP", "color": "green"}
