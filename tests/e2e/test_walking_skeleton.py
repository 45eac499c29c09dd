"""An X post sent to ingest travels through all five services into the CRM and the KPIs."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from socialcrm_devstack.stack import LOCAL_CRM_API_KEY, SERVICES, LocalStack
from tests.fixtures.metrics import metric_value
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def unique_tweet_id() -> str:
    return str(uuid.uuid4().int)[:19]


def kpi_count(stack: LocalStack, **labels: str) -> float:
    text = httpx.get(f"{stack.url('kpi')}/metrics").text
    return metric_value(text, "socialcrm_interactions_total", **labels)


@pytest.fixture
def crm(platform: LocalStack) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]]
    with MongoClient(platform.mongo.uri, tz_aware=True) as client:
        yield client["socialcrm"]


def test_every_service_is_healthy_and_ready(platform: LocalStack) -> None:
    for spec in SERVICES:
        assert httpx.get(f"{platform.url(spec.name)}/healthz").status_code == 200
        ready = httpx.get(f"{platform.url(spec.name)}/readyz")
        assert ready.status_code == 200, ready.text
        assert "socialcrm_events_" in httpx.get(f"{platform.url(spec.name)}/metrics").text or (
            spec.name == "ingest"
        )


def test_x_post_becomes_contact_timeline_and_case(
    platform: LocalStack, crm: Database[dict[str, Any]]
) -> None:
    tweet_id = unique_tweet_id()
    handle = f"client_{tweet_id[-6:]}"
    before = kpi_count(platform, channel="x", language="fr", polarity="negative")
    response = post_webhook(
        platform,
        "/v1/webhooks/x",
        x_tweet_event(
            tweet_id, screen_name=handle, text="Colis toujours pas livré, c'est une honte !"
        ),
    )
    assert response.status_code == 200, response.text
    [event_id] = response.json()["event_ids"]

    entry = eventually(lambda: crm.timeline.find_one({"event_id": event_id}))
    assert entry["language"] == "fr"
    assert entry["polarity"] == "negative"
    assert entry["queue"] == "customer-service-fr"
    contact = crm.contacts.find_one({"_id": entry["contact_id"]})
    assert contact is not None
    assert contact["identities"][0]["key"] == f"x:{handle}"
    case = crm.cases.find_one({"_id": entry["case_id"]})
    assert case is not None
    assert case["status"] == "new"
    assert case["opened_by_event_id"] == event_id
    assert case["sla_deadline"] > case["opened_at"]
    eventually(
        lambda: kpi_count(platform, channel="x", language="fr", polarity="negative") == before + 1
    )
    view = httpx.get(
        f"{platform.url('crm-sink')}/v1/contacts",
        params={"handle": f"@{handle}"},
        headers={"Authorization": f"Bearer {LOCAL_CRM_API_KEY}"},
    )
    assert [c["id"] for c in view.json()["contacts"]] == [contact["_id"]]


def test_stream_services_export_their_consumer_lag_per_partition(platform: LocalStack) -> None:
    def lag_lines(service: str) -> list[str]:
        text = httpx.get(f"{platform.url(service)}/metrics").text
        return [
            line for line in text.splitlines() if line.startswith("socialcrm_consumer_lag_records{")
        ]

    for service in ("sentiment", "router", "crm-sink", "kpi"):
        lines = eventually(lambda service=service: lag_lines(service))  # type: ignore[misc]
        # A service's groups are named after it ("router", "router-replies"...).
        assert all(f'group="{service}' in line and 'partition="' in line for line in lines)


def test_redelivered_webhook_creates_nothing_new(
    platform: LocalStack, crm: Database[dict[str, Any]]
) -> None:
    tweet_id = unique_tweet_id()
    payload = x_tweet_event(tweet_id, text="Thanks for the quick refund, great service!", lang="en")
    first = post_webhook(platform, "/v1/webhooks/x", payload).json()
    [event_id] = first["event_ids"]
    eventually(lambda: crm.timeline.find_one({"event_id": event_id}))
    counted = eventually(lambda: kpi_count(platform, language="en", polarity="positive"))

    again = post_webhook(platform, "/v1/webhooks/x", payload).json()
    assert again["event_ids"] == [event_id]
    marker_id = unique_tweet_id()
    marker = post_webhook(platform, "/v1/webhooks/x", x_tweet_event(marker_id, lang="en")).json()
    # Once a later event has gone through, the redelivered one has been processed too.
    eventually(lambda: crm.timeline.find_one({"event_id": marker["event_ids"][0]}))
    assert crm.timeline.count_documents({"event_id": event_id}) == 1
    assert crm.cases.count_documents({"opened_by_event_id": event_id}) == 1
    assert kpi_count(platform, language="en", polarity="positive") == counted


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"tweet_create_events": [{"text": "x"}]}', 422, "tweet_create_events[0].id_str"),
    ],
)
def test_malformed_webhooks_get_a_clear_4xx(
    platform: LocalStack, body: bytes, status: int, reason: str
) -> None:
    response = post_webhook(platform, "/v1/webhooks/x", body)
    assert response.status_code == status
    assert reason in response.json()["detail"]


def test_sigterm_stops_a_service_cleanly_and_it_resumes(
    platform: LocalStack, crm: Database[dict[str, Any]]
) -> None:
    process = platform.services["sentiment"]
    platform.stop_service("sentiment")
    assert process.process is not None
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as is conventional.
    assert process.process.returncode in (0, -signal.SIGTERM)
    log = process.log_path.read_text()
    assert "service stopped" in log
    assert "component failed to stop" not in log

    tweet_id = unique_tweet_id()
    [event_id] = post_webhook(platform, "/v1/webhooks/x", x_tweet_event(tweet_id)).json()[
        "event_ids"
    ]
    # Accepted means written to the topic with acks=all: there it waits, sentiment down.
    assert crm.timeline.find_one({"event_id": event_id}) is None
    platform.start_service("sentiment")
    eventually(lambda: crm.timeline.find_one({"event_id": event_id}))
