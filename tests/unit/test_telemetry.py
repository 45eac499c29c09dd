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


def traceparent(trace_id: str, span_id: str, flags: str = "00") -> bytes:
    return f"00-{trace_id * 32}-{span_id * 16}-{flags}".encode()


def test_a_record_s_trace_context_goes_on_to_its_outputs_parsed_once_per_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    configure_tracing("test")
    first, second = traceparent("a", "b"), traceparent("c", "d")

    contexts = [extract_context([("traceparent", value)]) for value in (first, second, first)]

    assert contexts[0] is contexts[2]  # the same headers: the same (immutable) context
    carried = [dict(inject_headers(ctx))["traceparent"] for ctx in (*contexts, contexts[1])]
    assert carried == [first, second, first, second]
    assert extract_context(None) is extract_context([("traceparent", None)])  # type: ignore[list-item]


def test_the_current_context_is_injected_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    tracer = configure_tracing("test").get_tracer(__name__)

    seen = []
    for _ in range(2):
        with tracer.start_as_current_span("root") as span:
            seen.append((dict(inject_headers())["traceparent"], span.get_span_context().trace_id))

    assert seen[0][0] != seen[1][0]
    for header, trace_id in seen:
        assert header.decode().split("-")[1] == format(trace_id, "032x")
