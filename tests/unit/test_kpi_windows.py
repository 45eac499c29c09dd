"""Event-time windows of the kpi service: assignment, closing, derived KPIs, state."""

from __future__ import annotations

import json
import math

import pytest

from socialcrm_kpi.windows import (
    ShareOfVoice,
    WindowedKpis,
    WindowSpec,
    dimension_key,
    dimensions,
    histogram_quantile,
)

ACME = dimensions(brand="acme", channel="x", queue="customer-service-fr", language="fr")


def test_tumbling_window_holds_each_instant_once() -> None:
    spec = WindowSpec(60, 60)
    assert spec.name == "tumbling_60s"
    assert spec.starts_of(0) == [0]
    assert spec.starts_of(59.9) == [0]
    assert spec.starts_of(60) == [60]


def test_hopping_window_holds_each_instant_in_size_over_step_windows() -> None:
    spec = WindowSpec(300, 60)
    assert spec.name == "hopping_300s_every_60s"
    assert spec.starts_of(610) == [360, 420, 480, 540, 600]


def test_window_size_must_be_a_multiple_of_its_step() -> None:
    with pytest.raises(ValueError, match="multiple"):
        WindowSpec(100, 60)


def test_windows_close_when_the_watermark_passes_their_end() -> None:
    kpis = WindowedKpis([WindowSpec(60, 60)], allowed_lateness_seconds=10)
    kpis.add(5, ACME, {"volume": 1, "negative": 1, "sentiment_score_sum": -0.8})
    kpis.add(30, ACME, {"volume": 1, "positive": 1, "sentiment_score_sum": 0.6})
    kpis.add(40, ACME, {"volume": 1, "positive": 1, "sentiment_score_sum": 0.4})
    assert kpis.advance(69) == []  # 69 - 10 < 60: still open for late events
    kpis.add(55, ACME, {"volume": 1, "neutral": 1})
    [closed] = kpis.advance(70)
    assert (closed.window, closed.start, closed.end) == ("tumbling_60s", 0, 60)
    assert closed.dimensions == ACME
    assert closed.values["volume"] == 4
    assert closed.values["net_sentiment"] == pytest.approx((2 - 1) / 4)
    assert closed.values["negative_ratio"] == pytest.approx(0.25)
    assert closed.values["mean_sentiment_score"] == pytest.approx(0.2 / 4)


def test_events_after_their_window_closed_are_late_and_not_counted() -> None:
    kpis = WindowedKpis([WindowSpec(60, 60)], allowed_lateness_seconds=0)
    kpis.add(10, ACME, {"volume": 1})
    assert len(kpis.advance(120)) == 1
    assert kpis.add(20, ACME, {"volume": 1}) == ["tumbling_60s"]
    assert kpis.late_events == 1
    assert kpis.advance(200) == []


def test_hopping_windows_count_an_event_in_every_window_holding_it() -> None:
    kpis = WindowedKpis([WindowSpec(120, 60)], allowed_lateness_seconds=0)
    kpis.add(70, ACME, {"volume": 1})
    closed = kpis.advance(1000)
    assert [(c.start, c.values["volume"]) for c in closed] == [(0, 1), (60, 1)]


def test_share_of_voice_compares_own_brands_with_competitors_only() -> None:
    voice = ShareOfVoice(frozenset({"acme"}), frozenset({"globex"}))
    kpis = WindowedKpis([WindowSpec(60, 60)], allowed_lateness_seconds=0, share_of_voice=voice)
    for brand, count in (("acme", 3), ("globex", 1), ("initech", 5)):
        for _ in range(count):
            kpis.add(
                1, dimensions(brand=brand, channel="x", queue="q", language="en"), {"volume": 1}
            )
    closed = kpis.advance(60)
    shares = {dict(c.dimensions)["brand"]: c.values for c in closed if len(c.dimensions) == 1}
    assert shares["acme"]["share_of_voice"] == pytest.approx(0.75)
    assert shares["globex"]["share_of_voice"] == pytest.approx(0.25)
    assert "initech" not in shares


def test_response_percentiles_and_sla_compliance_per_queue() -> None:
    kpis = WindowedKpis([WindowSpec(3600, 3600)], allowed_lateness_seconds=0)
    queue = dimensions(queue="customer-service-fr")
    for seconds, met in ((100, True), (200, True), (400, True), (2000, False)):
        kpis.add(
            10,
            queue,
            {"first_responses": 1, "sla_met" if met else "sla_breached": 1},
            {"first_response_seconds": seconds},
        )
    [closed] = kpis.advance(3600)
    assert closed.values["sla_compliance_ratio"] == pytest.approx(0.75)
    assert 120 <= closed.values["first_response_seconds_p50"] <= 300
    assert 1800 <= closed.values["first_response_seconds_p90"] <= 3600


def test_histogram_quantile_of_nothing_is_nan() -> None:
    assert math.isnan(histogram_quantile(0.5, [0, 0, 0]))


def test_dimension_key_is_canonical() -> None:
    assert dimension_key(dimensions(queue="q", brand="b")) == "brand=b,queue=q"


def test_state_survives_a_json_round_trip() -> None:
    specs = [WindowSpec(60, 60), WindowSpec(300, 60)]
    kpis = WindowedKpis(specs, allowed_lateness_seconds=5)
    kpis.add(10, ACME, {"volume": 1}, {"first_response_seconds": 42})
    kpis.advance(10)
    restored = WindowedKpis(specs, allowed_lateness_seconds=5)
    restored.restore(json.loads(json.dumps(kpis.to_state())))
    restored.add(20, ACME, {"volume": 1})
    assert restored.watermark == kpis.watermark
    closed = restored.advance(400)
    assert {(c.window, c.start): c.values["volume"] for c in closed}[("tumbling_60s", 0)] == 2
