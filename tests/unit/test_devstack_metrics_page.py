"""The one parser of the services' /metrics pages in the code (demo summary, benchmarks)."""

from __future__ import annotations

from socialcrm_devstack import metrics_page

PAGE = """# HELP socialcrm_interactions Interactions counted.
# TYPE socialcrm_interactions counter
socialcrm_interactions_total{brand="acme",queue="care"} 3.0
socialcrm_interactions_total{brand="acme",queue="sales"} 2.0
socialcrm_interactions_created{brand="acme",queue="care"} 1.7e9
# TYPE socialcrm_viral_spike_active gauge
socialcrm_viral_spike_active{topic="negative",brand="a \\"b\\""} 1.0
# TYPE socialcrm_event_processing_seconds histogram
socialcrm_event_processing_seconds_bucket{le="+Inf",topic="t"} 4.0
socialcrm_event_processing_seconds_count{topic="t"} 4.0
socialcrm_event_processing_seconds_sum{topic="t"} 0.5
"""


def test_samples_by_name_and_labels() -> None:
    samples = metrics_page.parse(PAGE)
    assert metrics_page.values(samples, "socialcrm_interactions_total") == [3.0, 2.0]
    assert metrics_page.values(samples, "socialcrm_interactions_total", queue="care") == [3.0]
    assert metrics_page.values(samples, "socialcrm_event_processing_seconds_count") == [4.0]
    gauge = metrics_page.values(samples, "socialcrm_viral_spike_active", brand='a "b"')
    assert gauge == [1.0]


def test_an_empty_or_broken_page_has_no_samples() -> None:
    assert metrics_page.values(metrics_page.parse(""), "socialcrm_interactions_total") == []
    assert metrics_page.parse("not{ a page") == {}
