"""The CRM's doors on the running platform (issue 16).

Finding 5: a chat naming another customer's address merged two customers.
Finding 8: ``assignee`` and the case history grew without bound toward MongoDB's 16 MB cap.
Finding 10: erasure fingerprints were plain SHA-256, reversible by brute force.
Finding 12: identity value ``"  @  "`` created ``x:``; a 1,000-character name search gave 500;
at DEBUG the database driver's command log held handles, emails and texts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from socialcrm_devstack.processes import ManagedProcess, free_port
from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_AGENT_ID,
    LOCAL_CRM_API_KEY,
    LOCAL_FINGERPRINT_SECRET,
    LOCAL_READ_API_KEY,
    SERVICES,
    LocalStack,
)
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook

pytestmark = [pytest.mark.security, pytest.mark.e2e]

ADMIN = {"Authorization": f"Bearer {LOCAL_CRM_API_KEY}"}
AGENT = {"Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"}
READER = {"X-API-Key": LOCAL_READ_API_KEY}


def chat(visitor_email: str, text: str) -> dict[str, Any]:
    """A chat transcript of one visitor message, as the chat platform posts it."""
    marker = uuid.uuid4().hex[:12]
    return {
        "conversation_id": f"c-{marker}",
        "language": "fr",
        "visitor": {"id": f"v-{marker}", "name": "Client Test", "email": visitor_email},
        "messages": [
            {
                "id": "1",
                "from": "visitor",
                "text": text,
                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    }


def send_chat(platform: LocalStack, visitor_email: str, text: str) -> None:
    response = post_webhook(platform, "/v1/webhooks/chat", chat(visitor_email, text))
    assert response.status_code == 200, response.text


def contact_by_email(platform: LocalStack, address: str) -> dict[str, Any] | None:
    found = httpx.get(
        f"{platform.url('crm-sink')}/v1/contacts", params={"email": address}, headers=READER
    )
    assert found.status_code == 200, found.text
    contacts: list[dict[str, Any]] = found.json()["contacts"]
    return contacts[0] if contacts else None


def interactions_of(platform: LocalStack, contact_id: str) -> int:
    view = httpx.get(f"{platform.url('crm-sink')}/v1/contacts/{contact_id}", headers=READER)
    assert view.status_code == 200, view.text
    return sum(1 for e in view.json()["timeline"] if e["type"] == "interaction")


def new_customer(platform: LocalStack) -> tuple[str, dict[str, Any]]:
    """A customer known by a chat with their email: (address, contact)."""
    address = f"client-{uuid.uuid4().hex[:10]}@example.com"
    send_chat(platform, address, "Bonjour, ma commande n'est pas arrivée")
    return address, eventually(lambda: contact_by_email(platform, address))


@pytest.fixture(scope="module")
def case(platform: LocalStack) -> dict[str, Any]:
    """An open case of a new customer."""
    _, contact = new_customer(platform)
    view = httpx.get(f"{platform.url('crm-sink')}/v1/contacts/{contact['id']}", headers=READER)
    [opened] = view.json()["open_cases"]
    return {**opened, "contact_id": contact["id"]}


def test_a_typed_address_only_suggests_a_merge_decided_by_an_agent(platform: LocalStack) -> None:
    """Finding 5."""
    crm = platform.url("crm-sink")
    a_address, a = new_customer(platform)
    b_address, b = new_customer(platform)
    send_chat(platform, a_address, f"Bonjour, mon autre email est {b_address}")
    eventually(lambda: interactions_of(platform, a["id"]) >= 2)

    def suggestion() -> dict[str, Any] | None:
        listed = httpx.get(f"{crm}/v1/merge-suggestions", headers=READER)
        assert listed.status_code == 200, listed.text
        pairs = listed.json()["merge_suggestions"]
        return next((s for s in pairs if set(s["contact_ids"]) == {a["id"], b["id"]}), None)

    found = eventually(suggestion)
    assert found["status"] == "pending"
    assert found["identity_keys"] == [f"email:{b_address}"]
    still_b = contact_by_email(platform, b_address)
    assert still_b is not None
    assert still_b["id"] == b["id"]
    still_a = contact_by_email(platform, a_address)
    assert still_a is not None
    assert f"email:{b_address}" not in {i["key"] for i in still_a["identities"]}
    export = httpx.get(f"{crm}/v1/contacts/{a['id']}/export", headers=ADMIN)
    assert b_address not in {i.get("handle") for i in export.json()["contact"]["identities"]}

    assert (
        httpx.post(f"{crm}/v1/merge-suggestions/{found['id']}/accept", headers=READER).status_code
        == 403
    )
    accepted = httpx.post(f"{crm}/v1/merge-suggestions/{found['id']}/accept", headers=AGENT)
    assert accepted.status_code == 200, accepted.text
    assert {f"email:{a_address}", f"email:{b_address}"} <= {
        i["key"] for i in accepted.json()["identities"]
    }
    decided = httpx.get(f"{crm}/v1/merge-suggestions", params={"status": "accepted"}, headers=AGENT)
    [audited] = [s for s in decided.json()["merge_suggestions"] if s["id"] == found["id"]]
    assert audited["decided_by"] == LOCAL_AGENT_ID
    assert audited["decided_at"]
    again = httpx.post(f"{crm}/v1/merge-suggestions/{found['id']}/reject", headers=AGENT)
    assert again.status_code == 409


def test_case_fields_history_and_identities_are_bounded(
    platform: LocalStack, case: dict[str, Any]
) -> None:
    """Finding 8 (CRM): no call grows a case or a contact toward the 16 MB cap."""
    crm = platform.url("crm-sink")
    url = f"{crm}/v1/cases/{case['id']}"
    huge = httpx.patch(url, json={"assignee": "a" * 100_000}, headers=AGENT)
    assert huge.status_code == 422
    assert "assignee" in huge.text
    assert "128" in huge.text
    # A case that grew big before the bound (1,000 entries of 1 KB, as a few calls made
    # them): the next change trims it to its newest 200 entries, and never answers 500.
    grown = [
        {"at": datetime.now(UTC), "by": "agent", "note": f"{i:04}" + "x" * 1000}
        for i in range(1000)
    ]
    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri)
    try:
        client.socialcrm.cases.update_one(
            {"_id": case["id"]}, {"$push": {"history": {"$each": grown}}}
        )
    finally:
        client.close()
    noted = httpx.patch(url, json={"note": "after"}, headers=AGENT)
    assert noted.status_code == 200, noted.text
    kept = noted.json()
    assert len(kept["history"]) == 200
    assert kept["history_dropped"] >= 801
    assert kept["history"][-1]["note"] == "after"

    links = f"{crm}/v1/contacts/{case['contact_id']}/identities"
    held = len(
        httpx.get(f"{crm}/v1/contacts/{case['contact_id']}", headers=READER).json()["identities"]
    )
    for n in range(50 - held):
        linked = httpx.post(
            links,
            json={"kind": "customer_number", "value": f"{uuid.uuid4().int % 10**9}{n}"},
            headers=ADMIN,
        )
        assert linked.status_code == 200, linked.text
    beyond = httpx.post(
        links, json={"kind": "customer_number", "value": "1234509876"}, headers=ADMIN
    )
    assert beyond.status_code == 422
    assert "50" in beyond.text


def test_erasure_fingerprints_are_keyed(platform: LocalStack) -> None:
    """Finding 10 (fingerprints): not plain SHA-256 of the identity key."""
    address, contact = new_customer(platform)
    erased = httpx.delete(f"{platform.url('crm-sink')}/v1/contacts/{contact['id']}", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    key = f"email:{address}".encode()
    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri)
    try:
        fingerprints = {e["_id"] for e in client.socialcrm.erasures.find()}
    finally:
        client.close()
    assert hashlib.sha256(key).hexdigest() not in fingerprints
    keyed = hmac.new(LOCAL_FINGERPRINT_SECRET.encode(), key, hashlib.sha256).hexdigest()
    assert keyed in fingerprints


def test_blank_identities_long_searches_and_driver_logs(
    platform: LocalStack, case: dict[str, Any], tmp_path: Path
) -> None:
    """Finding 12 (CRM)."""
    crm = platform.url("crm-sink")
    blank = httpx.post(
        f"{crm}/v1/contacts/{case['contact_id']}/identities",
        json={"kind": "x", "value": "  @  "},
        headers=ADMIN,
    )
    assert blank.status_code == 422
    assert "value" in blank.text
    view = httpx.get(f"{crm}/v1/contacts/{case['contact_id']}", headers=READER).json()
    assert "x:" not in {i["key"] for i in view["identities"]}

    long_name = httpx.get(f"{crm}/v1/contacts", params={"name": "é(" * 500}, headers=READER)
    assert long_name.status_code == 422
    assert "200" in long_name.text
    regex = httpx.get(f"{crm}/v1/contacts", params={"name": "(a+)+$["}, headers=READER)
    assert regex.status_code == 200

    with debug_crm_sink(platform, tmp_path) as (url, log_path):
        address = f"debug-{uuid.uuid4().hex[:10]}@example.com"
        secret_text = f"texte-{uuid.uuid4().hex[:10]}"
        send_chat(platform, address, f"Bonjour {secret_text}")

        def recorded() -> bool:
            found = httpx.get(f"{url}/v1/contacts", params={"email": address}, headers=READER)
            return bool(found.json()["contacts"])

        eventually(recorded)
        logged = log_path.read_text()
    assert '"level": "debug"' in logged
    assert address not in logged
    assert secret_text not in logged


@contextlib.contextmanager
def debug_crm_sink(platform: LocalStack, work_dir: Path) -> Iterator[tuple[str, Path]]:
    """A second crm-sink at LOG_LEVEL=DEBUG, in a consumer group and a database of its own."""
    marker = uuid.uuid4().hex[:8]
    port = free_port()
    spec = next(s for s in SERVICES if s.name == "crm-sink")
    log_path = work_dir / "crm-sink-debug.log"
    process = ManagedProcess(
        "crm-sink-debug",
        [sys.executable, "-m", spec.module],
        log_path,
        env={
            **platform.service_env(spec),
            "HTTP_PORT": str(port),
            "LOG_LEVEL": "DEBUG",
            "SERVICE_NAME": f"crm-sink-debug-{marker}",
            "MONGODB_DATABASE": f"crm_debug_{marker}",
            "OTEL_TRACES_EXPORTER": "none",
        },
    )
    url = f"http://127.0.0.1:{port}"
    process.start()
    try:
        process.wait_until(
            lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, 90, "ready"
        )
        yield url, log_path
    finally:
        process.stop()
        client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri)
        client.drop_database(f"crm_debug_{marker}")
        client.close()
