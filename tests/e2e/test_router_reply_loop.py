"""The reply loop on the running platform: an X complaint is routed, then answered through
the router's API, which measures the first response against the SLA."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import httpx
import pytest

from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_AGENT_ID,
    LOCAL_CRM_API_KEY,
    LocalStack,
)
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = pytest.mark.e2e

T = TypeVar("T")

AGENT = {"Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"}


def test_a_routed_complaint_is_answered_and_resolved_through_the_router_api(
    platform: LocalStack,
) -> None:
    router = platform.url("router")
    tweet_id = str(uuid.uuid4().int)[:19]
    response = post_webhook(
        platform,
        "/v1/webhooks/x",
        x_tweet_event(tweet_id, text="Ma commande n'est jamais arrivée, c'est inadmissible"),
    )
    assert response.status_code == 200, response.text
    [event_id] = response.json()["event_ids"]

    def routed() -> dict[str, object] | None:
        found = httpx.get(f"{router}/v1/interactions/{event_id}", headers=AGENT)
        return found.json() if found.status_code == 200 else None

    state = eventually(routed)
    assert state["queue"] == "customer-service-fr"
    rules = httpx.get(f"{router}/v1/rules", headers=AGENT).json()
    assert state["rules_version"] == rules["version"]

    reply = httpx.post(
        f"{router}/v1/interactions/{event_id}/replies",
        json={"text": "Bonjour, nous regardons votre commande"},
        headers=AGENT,
    )
    # Accepted: the owner of the conversation's partition applies it, then every replica
    # shows the first response.
    assert reply.status_code == 202, reply.text
    assert reply.json()["interaction_event_id"] == event_id

    def answered() -> dict[str, object] | None:
        found = routed()
        return found if found and found["first_response_at"] else None

    # The fixture's tweet is old: its SLA levels may have fired, before the answer or as
    # it is applied; the answer is what the state shows.
    assert eventually(answered)["first_response_at"]

    resolved = httpx.post(
        f"{router}/v1/interactions/{event_id}/status",
        json={"status": "resolved"},
        headers=AGENT,
    )
    assert resolved.status_code == 202, resolved.text
    eventually(
        lambda: httpx.get(f"{router}/v1/interactions/{event_id}", headers=AGENT).status_code == 404,
        what="the resolved interaction to leave the router",
    )

    invalid = httpx.post(
        f"{router}/v1/interactions/{event_id}/replies", json={"text": ""}, headers=AGENT
    )
    assert invalid.status_code == 422

    # The CRM follows the loop: the answer and the resolution are on the customer's timeline
    # and the case carries them.
    crm = platform.url("crm-sink")
    auth = {"Authorization": f"Bearer {LOCAL_CRM_API_KEY}"}

    def resolved_case() -> dict[str, Any] | None:
        cases = httpx.get(f"{crm}/v1/cases", params={"status": "resolved"}, headers=auth).json()
        return next((c for c in cases["cases"] if event_id in c["interaction_event_ids"]), None)

    case = eventually(resolved_case)
    assert case["first_response_at"] <= case["last_activity_at"]
    assert [h.get("status") for h in case["history"]] == ["open", "resolved"]
    assert {h["by"] for h in case["history"]} == {LOCAL_AGENT_ID}
    contact = httpx.get(f"{crm}/v1/contacts/{case['contact_id']}", headers=auth).json()
    kinds = [entry["type"] for entry in reversed(contact["timeline"])]
    assert kinds[-3:] == ["interaction", "reply", "status_change"]
