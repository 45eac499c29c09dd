"""Security round two (issue 25), kpi's low finding: a reply's queue became a Prometheus
label bounded only by its length, so 300 forged replies made 4,200 new series.

Queues are label values only when they are known (``KPI_KNOWN_QUEUES``, by default the
queues of the router's default rules); any other queue counts as ``other``. The kpi
service runs for real on a broker of its own (forged records must not reach other tests'
consumers of the shared topics), and the records are forged as a client of the broker
would: straight onto ``social.replies.v1`` and ``social.routed.v1``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from socialcrm import contract
from socialcrm.labels import OTHER
from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_devstack.infra import KafkaBroker
from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LocalStack
from tests.fixtures import events
from tests.fixtures.kafka import publish
from tests.fixtures.metrics import metric_value
from tests.fixtures.waiting import eventually

pytestmark = [pytest.mark.security, pytest.mark.integration]

FORGED = 300
REPLIES = contract.topic_of(reply_pb2.Reply)
ROUTED = contract.topic_of(routed_pb2.RoutedInteraction)


@pytest.fixture
def kpi(tmp_path: Path) -> Iterator[LocalStack]:
    """kpi with its default settings on a broker of its own."""
    broker = KafkaBroker(tmp_path / "kafka", port=free_port())
    broker.start()
    stack = LocalStack(tmp_path / "stack", ephemeral_ports=True, kafka=broker)
    try:
        stack.start_service("kpi")
        yield stack
    finally:
        stack.stop_service("kpi")
        broker.stop()


def metrics_text(stack: LocalStack) -> str:
    return httpx.get(f"{stack.url('kpi')}/metrics", timeout=5).text


def queue_labels(text: str) -> set[str]:
    """Every value of a label that names a queue: ``queue``, and the spike topics
    ``queue:<queue>``."""
    values = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "queue" in sample.labels:
                values.add(sample.labels["queue"])
            if sample.labels.get("topic", "").startswith("queue:"):
                values.add(sample.labels["topic"])
    return values


def consumed(stack: LocalStack, topic: str) -> float:
    return metric_value(metrics_text(stack), "socialcrm_events_consumed_total", topic=topic)


async def test_forged_replies_and_interactions_with_random_queues_add_one_label_value(
    kpi: LocalStack,
) -> None:
    bootstrap = kpi.kafka.bootstrap
    # A genuine interaction and its reply first: the series of a known queue exist.
    genuine = events.routed(queue="community")
    await publish(bootstrap, genuine, events.reply(genuine, first_response=True))
    eventually(
        lambda: consumed(kpi, REPLIES) >= 1 and consumed(kpi, ROUTED) >= 1,
        60,
        what="the genuine records counted",
        tolerating=(httpx.HTTPError,),
    )

    # The spike gauges are refreshed every few seconds: wait for the genuine series.
    def genuine_series() -> set[str] | None:
        labels = queue_labels(metrics_text(kpi))
        return labels if {"community", "queue:community"} <= labels else None

    before = eventually(genuine_series, 30, what="the genuine queue's series")

    forged_interactions = [events.routed(queue=f"q-{uuid.uuid4().hex}") for _ in range(FORGED)]
    forged_replies = [
        events.reply(events.routed(queue=f"q-{uuid.uuid4().hex}"), first_response=True)
        for _ in range(FORGED)
    ]
    await publish(bootstrap, *forged_interactions, *forged_replies)
    eventually(
        lambda: consumed(kpi, REPLIES) >= 1 + FORGED and consumed(kpi, ROUTED) >= 1 + FORGED,
        60,
        what="the forged records counted",
    )
    # The backlog gauges are refreshed every few seconds: wait for the forged items.
    eventually(
        lambda: metric_value(metrics_text(kpi), "socialcrm_backlog_items", queue=OTHER) == FORGED,
        30,
        what="the forged interactions in the backlog of 'other'",
    )
    text = metrics_text(kpi)
    new = queue_labels(text) - before
    assert new <= {OTHER, f"queue:{OTHER}"}, sorted(new)[:10]
    assert len({value.removeprefix("queue:") for value in new}) <= 1
    assert metric_value(text, "socialcrm_replies_total", queue=OTHER) == FORGED
    assert metric_value(text, "socialcrm_interactions_total", queue=OTHER) == FORGED
