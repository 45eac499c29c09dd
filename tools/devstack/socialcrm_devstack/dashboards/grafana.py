"""Grafana dashboards built with grafana-foundation-sdk (Grafana's typed builders)."""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, ValueMap, ValueMappingResult

from socialcrm_devstack.dashboards.panels import Dashboard, Panel

# The uid of the data source that deploy/grafana/provisioning/datasources declares.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
PANEL_HEIGHT = 8
# Grafana's grid is 24 columns wide: two panels a row.
PANEL_WIDTH = 12


def targets(panel: Panel) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + index))
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend)
        for index, query in enumerate(panel.queries)
    ]


def timeseries_panel(panel: Panel) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.NONE)
        )
        .targets(list(targets(panel)))
    )


def stat_panel(panel: Panel) -> stat.Panel:
    built = (
        stat.Panel()
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(
            common.BigValueColorMode.BACKGROUND
            if panel.value_texts
            else common.BigValueColorMode.VALUE
        )
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
        )
        .targets(list(targets(panel)))
    )
    if panel.value_texts:
        built = built.mappings(
            [
                ValueMap(
                    options={
                        item.value: ValueMappingResult(text=item.text, color=item.color)
                        for item in panel.value_texts
                    }
                )
            ]
        )
    return built


def grafana_panel(panel: Panel, panel_id: int) -> timeseries.Panel | stat.Panel:
    built = timeseries_panel(panel) if panel.kind == "timeseries" else stat_panel(panel)
    return (
        built.id(panel_id)
        .title(panel.title)
        .description(panel.description)
        .datasource(DATASOURCE)
        .unit(panel.unit)
        .height(PANEL_HEIGHT)
        .span(PANEL_WIDTH)
    )


def grafana_dashboard(dashboard: Dashboard) -> dashboard_builders.Dashboard:
    built = (
        dashboard_builders.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags(["socialcrm"])
        .timezone("browser")
        .readonly()
        .version(1)
        .refresh("30s")
        .time("now-1h", "now")
    )
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        built = built.with_panel(grafana_panel(panel, panel_id))
    return built


def dashboard_json(dashboard: Dashboard) -> str:
    """The dashboard as Grafana's JSON model, as committed under deploy/grafana/dashboards."""
    model = grafana_dashboard(dashboard).build()
    return json.dumps(model, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
