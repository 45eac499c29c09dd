"""Sampling of the tracer a service configures: nothing recorded without an exporter, while
the trace context still travels."""

from __future__ import annotations

import pytest

from socialcrm.telemetry import configure_tracing, extract_context, inject_headers


def test_without_an_exporter_new_traces_are_not_sampled_but_still_propagated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    tracer = configure_tracing("test").get_tracer(__name__)

    with tracer.start_as_current_span("root") as span:
        recording = span.is_recording()
        headers = dict(inject_headers())

    assert not recording
    _, trace_id, _, flags = headers["traceparent"].decode().split("-")
    assert trace_id == format(span.get_span_context().trace_id, "032x")
    assert int(flags, 16) & 1 == 0  # the sampled flag


def test_a_sampled_caller_is_still_followed_without_an_exporter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    tracer = configure_tracing("test").get_tracer(__name__)
    caller = [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")]

    with tracer.start_as_current_span("child", context=extract_context(caller)) as span:
        recording = span.is_recording()

    assert recording
    assert span.get_span_context().trace_id == int("a" * 32, 16)


def test_a_configured_sampler_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    tracer = configure_tracing("test").get_tracer(__name__)

    with tracer.start_as_current_span("root") as span:
        recording = span.is_recording()

    assert recording
