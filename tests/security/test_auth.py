"""API keys at the router's and the CRM's doors, on the running platform (issue 16).

Finding 1: the router's reply, status and read endpoints answered without a key.
Finding 8: the reply's ``agent_id`` was unbounded free text.
Finding 12: the CRM recorded the first characters of the API key as the actor, and a key
with only the ``agent`` scope got 403 on the reads an agent needs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_AGENT_ID,
    LOCAL_READ_API_KEY,
    LocalStack,
)
from tests.fixtures.payloads import x_tweet_event
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = [pytest.mark.security, pytest.mark.e2e]

AGENT = {"Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"}
READER = {"X-API-Key": LOCAL_READ_API_KEY}


@dataclass(frozen=True)
class Complaint:
    event_id: str
    handle: str


@pytest.fixture(scope="module")
def complaint(platform: LocalStack) -> Complaint:
    """A French complaint on X, routed: the router tracks it and waits for an answer."""
    handle = f"sec{uuid.uuid4().hex[:10]}"
    tweet = x_tweet_event(
        str(uuid.uuid4().int)[:19],
        text="Ma commande n'est jamais arrivée, c'est inadmissible",
        screen_name=handle,
    )
    response = post_webhook(platform, "/v1/webhooks/x", tweet)
    assert response.status_code == 200, response.text
    [event_id] = response.json()["event_ids"]
    router = platform.url("router")
    eventually(
        lambda: httpx.get(f"{router}/v1/interactions/{event_id}", headers=READER).status_code == 200
    )
    return Complaint(event_id, handle)


def locations(response: httpx.Response) -> list[list[str | int]]:
    """Where each field error of a 422 answer is (shared error shape, or FastAPI's)."""
    body = response.json()
    errors = body.get("errors") or body["detail"]
    return [error["loc"] for error in errors]


def test_the_router_api_answers_401_without_a_known_key(
    platform: LocalStack, complaint: Complaint
) -> None:
    router = platform.url("router")
    interaction = f"{router}/v1/interactions/{complaint.event_id}"
    calls = [
        ("POST", f"{interaction}/replies", {"text": "Réponse non autorisée"}),
        ("POST", f"{interaction}/status", {"status": "resolved"}),
        ("GET", interaction, None),
        ("GET", f"{router}/v1/rules", None),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-key-of-ours"}, {"X-API-Key": "guess"}):
        for method, url, body in calls:
            response = httpx.request(method, url, json=body, headers=headers)
            assert response.status_code == 401, (method, url, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
    # Nothing was answered or resolved: the interaction is still waiting.
    state = httpx.get(interaction, headers=READER).json()
    assert state["first_response_at"] is None
    assert state["status"] == "open"


def test_a_read_key_cannot_reply_or_change_a_status(
    platform: LocalStack, complaint: Complaint
) -> None:
    interaction = f"{platform.url('router')}/v1/interactions/{complaint.event_id}"
    for path, body in (("replies", {"text": "Bonjour"}), ("status", {"status": "resolved"})):
        response = httpx.post(f"{interaction}/{path}", json=body, headers=READER)
        assert response.status_code == 403, response.text
        assert "'agent' scope" in response.json()["detail"]
    assert httpx.get(f"{platform.url('router')}/v1/rules", headers=READER).status_code == 200


def test_over_long_or_unknown_fields_are_refused_naming_the_field(
    platform: LocalStack, complaint: Complaint
) -> None:
    interaction = f"{platform.url('router')}/v1/interactions/{complaint.event_id}"
    too_long = httpx.post(f"{interaction}/replies", json={"text": "x" * 10_001}, headers=AGENT)
    assert too_long.status_code == 422, too_long.text
    assert locations(too_long) == [["body", "text"]]
    # The agent comes from the key: a 100 kB agent_id in the body no longer grows the case.
    spoofed = httpx.post(
        f"{interaction}/replies", json={"text": "Bonjour", "agent_id": "a" * 100_000}, headers=AGENT
    )
    assert spoofed.status_code == 422, spoofed.text
    assert locations(spoofed) == [["body", "agent_id"]]
    long_id = httpx.get(f"{platform.url('router')}/v1/interactions/{'e' * 200}", headers=READER)
    assert long_id.status_code == 422, long_id.text
    assert locations(long_id) == [["path", "event_id"]]


def test_an_agent_key_replies_as_its_agent_and_reads_what_it_needs_in_the_crm(
    platform: LocalStack, complaint: Complaint
) -> None:
    interaction = f"{platform.url('router')}/v1/interactions/{complaint.event_id}"
    reply = httpx.post(
        f"{interaction}/replies",
        json={"text": "Bonjour, nous regardons votre commande"},
        headers=AGENT,
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["reply_event_id"]

    crm = platform.url("crm-sink")

    def answered_case() -> tuple[dict[str, Any], dict[str, Any]] | None:
        found = httpx.get(
            f"{crm}/v1/contacts", params={"handle": f"@{complaint.handle}"}, headers=AGENT
        )
        assert found.status_code == 200, found.text
        if not found.json()["contacts"]:
            return None
        [contact] = found.json()["contacts"]
        view = httpx.get(f"{crm}/v1/contacts/{contact['id']}", headers=AGENT)
        assert view.status_code == 200, view.text
        # A case has no history until its first change: the reply may be recorded after
        # the complaint's case is created.
        cases = [c for c in view.json()["open_cases"] if c.get("history")]
        return (view.json(), cases[0]) if cases else None

    contact, case = eventually(answered_case)
    assert [h["by"] for h in case["history"]] == [LOCAL_AGENT_ID]
    [entry] = [e for e in contact["timeline"] if e["type"] == "reply"]
    assert entry["agent_id"] == LOCAL_AGENT_ID
    cases = httpx.get(f"{crm}/v1/cases", params={"status": "open"}, headers=AGENT)
    assert cases.status_code == 200, cases.text

    # The CRM's own case change records the key's agent too, never a piece of the key.
    moved = httpx.patch(
        f"{crm}/v1/cases/{case['id']}",
        json={"status": "pending_customer", "note": "waiting for the order number"},
        headers=AGENT,
    )
    assert moved.status_code == 200, moved.text
    actors = [h["by"] for h in moved.json()["history"]]
    assert actors == [LOCAL_AGENT_ID, LOCAL_AGENT_ID]
