"""Another system can read the topics with kcat and protoc and the .proto files alone."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from socialcrm_devstack.stack import SERVICES, LocalStack
from tests.fixtures.otlp import TraceReceiver
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WELL_KNOWN_PROTOS = Path("/usr/include")


def kcat(*args: str) -> bytes:
    return subprocess.run(["kcat", *args], check=True, capture_output=True, timeout=60).stdout


def find_record(bootstrap: str, topic: str, key: str) -> tuple[str, str]:
    """Partition and offset of the record with ``key``, scanning with kcat."""

    def position() -> tuple[str, str] | None:
        listing = kcat(
            "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %k\n"
        ).decode()
        for line in listing.splitlines():
            partition, offset, record_key = line.split(" ", 2)
            if record_key == key:
                return partition, offset
        return None

    return eventually(position, 30, what=f"a record with key {key} on {topic}")


def protoc_decode(message: str, proto: str, data: bytes) -> str:
    return subprocess.run(
        ["protoc", f"-I{REPO / 'proto'}", f"-I{WELL_KNOWN_PROTOS}", f"--decode={message}", proto],
        input=data,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by bin/setup")
def test_kcat_and_protoc_read_the_routed_topic(platform: LocalStack) -> None:
    tweet_id = str(uuid.uuid4().int)[:19]
    response = post_webhook(
        platform,
        "/v1/webhooks/x",
        x_tweet_event(tweet_id, text="Colis toujours pas livré, c'est une honte !"),
    )
    [event_id] = response.json()["event_ids"]
    bootstrap = platform.kafka.bootstrap
    partition, offset = find_record(bootstrap, "social.routed.v1", key=tweet_id)
    fetch = [
        "-b",
        bootstrap,
        "-C",
        "-t",
        "social.routed.v1",
        "-p",
        partition,
        "-o",
        offset,
        "-c",
        "1",
        "-e",
        "-q",
    ]
    value = kcat(*fetch, "-f", "%s")
    headers = kcat(*fetch, "-f", "%h").decode()

    decoded = protoc_decode("socialcrm.v1.RoutedInteraction", "socialcrm/v1/routed.proto", value)
    assert f'event_id: "{event_id}"' in decoded
    assert f'external_id: "{tweet_id}"' in decoded
    assert "channel: CHANNEL_X" in decoded
    assert 'queue: "customer-service-fr"' in decoded
    assert "traceparent=00-" in headers


def trace_id(kcat_headers: str) -> str:
    [traceparent] = [h for h in kcat_headers.split(",") if h.startswith("traceparent=")]
    return traceparent.removeprefix("traceparent=").split("-")[1]


def test_one_interaction_is_one_trace_across_topics_and_services(
    platform: LocalStack, traces: TraceReceiver
) -> None:
    tweet_id = str(uuid.uuid4().int)[:19]
    parent_trace = uuid.uuid4().hex
    response = post_webhook(
        platform,
        "/v1/webhooks/x",
        x_tweet_event(tweet_id),
        headers={"traceparent": f"00-{parent_trace}-{uuid.uuid4().hex[:16]}-01"},
    )
    assert response.status_code == 200
    bootstrap = platform.kafka.bootstrap
    trace_ids = {}
    for topic in ("social.interactions.v1", "social.enriched.v1", "social.routed.v1"):
        partition, offset = find_record(bootstrap, topic, key=tweet_id)
        headers = kcat(
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-p",
            partition,
            "-o",
            offset,
            "-c",
            "1",
            "-e",
            "-q",
            "-f",
            "%h",
        ).decode()
        trace_ids[topic] = trace_id(headers)
    assert set(trace_ids.values()) == {parent_trace}, trace_ids
    # Every service reported its spans of that trace to the OTLP endpoint.
    everyone = {spec.name for spec in SERVICES}
    deadline = time.monotonic() + 30
    while traces.services_in(parent_trace) != everyone and time.monotonic() < deadline:
        time.sleep(0.2)
    assert traces.services_in(parent_trace) == everyone
