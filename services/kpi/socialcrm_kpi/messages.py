"""The events the kpi service publishes, built from what closed or fired (pure: no I/O)."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract
from socialcrm.v1 import common_pb2, kpi_pb2
from socialcrm_kpi.spikes import Spike
from socialcrm_kpi.windows import ClosedWindow, dimension_key


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def event_time(header: common_pb2.EventHeader) -> float:
    """When the event occurred; never after it was ingested, so that a source's clock
    running ahead cannot push the watermark into the future and close windows early."""
    return min(_seconds(header.occurred_at), _seconds(header.ingested_at))


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _header(event_id: str, external_id: str, occurred_at: float) -> common_pb2.EventHeader:
    return common_pb2.EventHeader(
        event_id=event_id,
        external_id=external_id,
        occurred_at=_timestamp(occurred_at),
        ingested_at=contract.timestamp(),
        schema_version=contract.SCHEMA_VERSION,
        producer="kpi",
    )


def snapshot_of(closed: ClosedWindow) -> kpi_pb2.KpiSnapshot:
    dims = {"window": closed.window, **dict(closed.dimensions)}
    key = dimension_key(tuple(sorted(dims.items())))
    identity = f"{key}@{closed.start}"
    return kpi_pb2.KpiSnapshot(
        header=_header(contract.derived_event_id(identity, "kpi-snapshot"), identity, closed.end),
        window_start=_timestamp(closed.start),
        window_end=_timestamp(closed.end),
        dimensions=dims,
        dimension_key=key,
        values={k: v for k, v in closed.values.items() if v == v},  # NaN: no data
    )


def alert_of(spike: Spike) -> kpi_pb2.Alert:
    alert_key = f"viral_spike:{spike.brand}:{spike.topic}"
    identity = f"{alert_key}@{spike.bucket_start}"
    severity = kpi_pb2.SEVERITY_CRITICAL if spike.topic == "negative" else kpi_pb2.SEVERITY_WARNING
    return kpi_pb2.Alert(
        header=_header(contract.derived_event_id(identity, "alert"), identity, spike.detected_at),
        alert_key=alert_key,
        kind="viral_spike",
        severity=severity,
        summary=(
            f"Viral spike for {spike.brand} ({spike.topic}): {spike.count} interactions "
            f"since {time.strftime('%H:%M:%S', time.gmtime(spike.bucket_start))} UTC "
            f"against {spike.baseline:.1f} usually"
        ),
        detected_at=_timestamp(spike.detected_at),
        evidence={
            "count": spike.count,
            "baseline": spike.baseline,
            "score": spike.score,
            "z_score": spike.z_score,
            "p_value": spike.p_value,
            "bucket_start": spike.bucket_start,
        },
        sample_event_ids=[post.event_id for post in spike.top_posts],
        brand=spike.brand,
        topic=spike.topic,
        # Each author by the event id of their widest-reach post: no handle on the topic.
        top_authors=[kpi_pb2.AuthorReach(author=e, reach=r) for e, r in spike.top_authors],
    )


def severity_name(severity: kpi_pb2.Severity.ValueType) -> str:
    return kpi_pb2.Severity.Name(severity).removeprefix("SEVERITY_").lower()
