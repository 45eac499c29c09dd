"""The CRM API on the running crm-sink app (lifespan, real broker and database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from pymongo import AsyncMongoClient

from socialcrm import contract
from socialcrm.v1 import common_pb2, crm_pb2, reply_pb2, routed_pb2
from socialcrm_crm_sink.app import build_app
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.settings import CrmSinkSettings
from socialcrm_crm_sink.store import CrmStore
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from tests.conftest import Infra
from tests.fixtures.kafka import publish_raw, read_to_end
from tests.fixtures.waiting import eventually_async
from tests.integration.test_crm_sink_identity import email, record, x_dm, x_post

pytestmark = pytest.mark.integration

T = TypeVar("T")

READER = {"X-API-Key": "it-reader-key"}
AGENT = {"Authorization": "Bearer it-agent-key"}
ADMIN = {"Authorization": "Bearer it-admin-key"}


@dataclass
class Api:
    client: httpx.AsyncClient
    store: CrmStore
    bootstrap: str


@pytest.fixture
async def api(infra: Infra) -> AsyncIterator[Api]:
    marker = uuid.uuid4().hex[:8]
    settings = CrmSinkSettings(
        service_name=f"crm-sink-it-{marker}",
        kafka_bootstrap_servers=infra.kafka.bootstrap,
        mongodb_uri=infra.mongo.uri,
        mongodb_database=f"crm_api_{marker}",
        api_keys="it-reader-key=read:reader-1;it-agent-key=agent:agent-7;it-admin-key=admin:admin-1",
        # Replies of other tests answer interactions this database never saw.
        crm_reply_wait_seconds=1.0,
        crm_fingerprint_secret=LOCAL_FINGERPRINT_SECRET,
    )
    app = build_app(settings)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo.uri, tz_aware=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm") as client:
            store = CrmStore(
                mongo[settings.mongodb_database], fingerprint_secret=LOCAL_FINGERPRINT_SECRET
            )
            yield Api(client, store, infra.kafka.bootstrap)
    await mongo.drop_database(settings.mongodb_database)
    await mongo.close()


async def test_auth_scopes(api: Api) -> None:
    assert (await api.client.get("/v1/cases")).status_code == 401
    assert (await api.client.get("/v1/cases", headers={"X-API-Key": "nope"})).status_code == 401
    assert (await api.client.get("/v1/cases", headers=READER)).status_code == 200
    patch = await api.client.patch("/v1/cases/x", json={"status": "open"}, headers=READER)
    assert patch.status_code == 403
    merge = await api.client.post(
        "/v1/contacts/a/merge", json={"other_contact_id": "b"}, headers=AGENT
    )
    assert merge.status_code == 403
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/metrics")).status_code == 200


async def test_contact_timeline_search_and_case_workflow(api: Api) -> None:
    events = [
        x_post("700", "marie", 0),
        x_dm("701", "marie", "mon email est marie@example.com", 1),
        email("702", "marie@example.com", "Toujours rien reçu", 2),
    ]
    recorded = [await record(api.store, e) for e in events]
    contact_id = recorded[0].contact_id

    found = await api.client.get(
        "/v1/contacts", params={"email": "Marie@example.com"}, headers=READER
    )
    assert [c["id"] for c in found.json()["contacts"]] == [contact_id]
    by_handle = await api.client.get("/v1/contacts", params={"handle": "@Marie"}, headers=READER)
    assert [c["id"] for c in by_handle.json()["contacts"]] == [contact_id]

    page = (await api.client.get(f"/v1/contacts/{contact_id}?limit=2", headers=READER)).json()
    assert page["identities"][0]["key"] == "x:marie"
    assert len(page["timeline"]) == 2
    assert page["timeline"][0]["channel"] == "email"
    rest = (
        await api.client.get(
            f"/v1/contacts/{contact_id}",
            params={"limit": 2, "cursor": page["next_cursor"]},
            headers=READER,
        )
    ).json()
    assert len(rest["timeline"]) == 1
    assert rest["next_cursor"] is None
    assert page["sentiment_trend"][0]["interactions"] == 3

    case_id = next(r.case_id for r in recorded if r.case_id)
    bad = await api.client.patch(f"/v1/cases/{case_id}", json={"status": "closed"}, headers=AGENT)
    assert bad.status_code == 409
    for status in ("open", "pending_customer", "resolved", "closed"):
        moved = await api.client.patch(
            f"/v1/cases/{case_id}",
            json={"status": status, "assignee": "agent-7", "note": f"now {status}"},
            headers=AGENT,
        )
        assert moved.status_code == 200, moved.text
    case = moved.json()
    assert case["status"] == "closed"
    assert [h["note"] for h in case["history"]][-1] == "now closed"
    listed = await api.client.get("/v1/cases", params={"status": "closed"}, headers=READER)
    assert [c["id"] for c in listed.json()["cases"]] == [case_id]
    assert (await api.client.get("/v1/contacts/nobody", headers=READER)).status_code == 404


async def test_link_and_merge_over_http(api: Api) -> None:
    first = await record(api.store, x_post("710", "tom", 0))
    second = await record(api.store, x_post("711", "tom_alt", 1))
    link = await api.client.post(
        f"/v1/contacts/{first.contact_id}/identities",
        json={"kind": "customer_number", "value": "998877"},
        headers=ADMIN,
    )
    assert link.status_code == 200
    taken = await api.client.post(
        f"/v1/contacts/{second.contact_id}/identities",
        json={"kind": "customer_number", "value": "998877"},
        headers=ADMIN,
    )
    assert taken.status_code == 409
    merged = await api.client.post(
        f"/v1/contacts/{first.contact_id}/merge",
        json={"other_contact_id": second.contact_id},
        headers=ADMIN,
    )
    assert merged.status_code == 200
    redirected = await api.client.get(f"/v1/contacts/{second.contact_id}", headers=READER)
    assert redirected.json()["id"] == first.contact_id
    assert len(redirected.json()["timeline"]) == 2


async def records_of(bootstrap: str, topic: str) -> list[tuple[str, bytes | None]]:
    """Every (key, value) of ``topic`` up to its current end."""
    return [(r.key.decode() if r.key else "", r.value) for r in await read_to_end(bootstrap, topic)]


async def test_export_then_erasure_leaves_no_personal_data(api: Api) -> None:
    events = [
        x_post("720", "sophie_b", 0),
        x_dm("721", "sophie_b", "sophie.b@example.org, colis jamais arrivé", 1),
        email("722", "sophie.b@example.org", "Je relance pour mon colis", 2),
    ]
    recorded = [await record(api.store, e) for e in events]
    contact_id = recorded[0].contact_id
    personal = ["sophie", "example.org", "colis", "relance"]

    assert (
        await api.client.get(f"/v1/contacts/{contact_id}/export", headers=AGENT)
    ).status_code == 403
    export = await api.client.get(f"/v1/contacts/{contact_id}/export", headers=ADMIN)
    assert export.status_code == 200
    assert len(export.json()["timeline"]) == 3
    assert "sophie.b@example.org" in export.text

    # Mongo keeps milliseconds: the erasure's time is not before this one.
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    erased = await api.client.delete(f"/v1/contacts/{contact_id}", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased_contact_ids"] == [contact_id]

    # The app's consumer also records other tests' interactions here: look at the person's,
    # now under random ids (none derived from the posts' ids).
    db = api.store.db
    event_ids = [e.enriched.interaction.header.event_id for e in events]
    assert await db.contacts.count_documents({"_id": contact_id}) == 0
    derived = [f"{event_id}:interaction" for event_id in event_ids]
    assert await db.timeline.count_documents({"_id": {"$in": derived}}) == 0
    assert await db.cases.count_documents({"interaction_event_ids": {"$in": event_ids}}) == 0
    timeline = await db.timeline.find({"erased_at": {"$gte": before}}).to_list()
    cases = await db.cases.find({"erased_at": {"$gte": before}}).to_list()
    assert len(timeline) == 3
    assert cases
    refused = await api.client.patch(
        f"/v1/cases/{cases[0]['_id']}", json={"note": "jean@example.com"}, headers=AGENT
    )
    assert refused.status_code == 410
    assert "erased" in refused.json()["detail"]
    assert {e["contact_id"] for e in [*timeline, *cases]} == {None}
    assert {e["external_id"] for e in timeline} == {""}
    assert {e["language"] for e in timeline} <= {"fr", "en", "und"}
    for document in [*timeline, *cases]:
        assert not [word for word in personal if word in str(document).lower()], document
    everything = [await db[name].find().to_list() for name in ("contacts", "timeline", "cases")]
    assert "sophie" not in str(everything).lower()
    assert "example.org" not in str(everything).lower()

    erase_commands = {
        (command.interaction_event_id, command.conversation_id)
        for command in (
            contract.decode(routed_pb2.SlaCommand, value)
            for _, value in await records_of(api.bootstrap, "router.sla-commands.v1")
            if value is not None
        )
        if command.WhichOneof("command") == "erase"
    }
    assert {
        (e.enriched.interaction.header.event_id, e.enriched.interaction.conversation_id)
        for e in events
    } <= erase_commands
    contact_records = await records_of(api.bootstrap, "crm.contacts.v1")
    assert (contact_id, None) in contact_records
    erasure_events = [
        contract.decode(crm_pb2.CrmEvent, value)
        for key, value in await records_of(api.bootstrap, "crm.events.v1")
        if key == contact_id and value is not None
    ]
    assert [e.type for e in erasure_events][-1] == crm_pb2.CRM_EVENT_TYPE_CONTACT_ERASED

    # A replay of the person's older events does not bring them back; a new message does.
    assert await api.store.record(plan_write(events[0])) is None
    assert await db.contacts.count_documents({"_id": contact_id}) == 0
    later = x_post("723", "sophie_b", 0)
    later.enriched.interaction.header.occurred_at.GetCurrentTime()
    assert (await record(api.store, later)).contact_id == contact_id
    assert (await api.client.get(f"/v1/contacts/{contact_id}", headers=READER)).status_code == 200
    gone = await api.client.delete("/v1/contacts/nobody", headers=ADMIN)
    assert gone.status_code == 404


async def test_replies_join_the_timeline_and_move_the_case_once(api: Api) -> None:
    routed = x_post("730", "hugo", 0)
    recorded = await record(api.store, routed)
    assert recorded.case_id is not None
    answer = reply_pb2.Reply(
        header=common_pb2.EventHeader(
            event_id=f"reply-{uuid.uuid4().hex}",
            external_id="reply:730",
            occurred_at=contract.timestamp(datetime.now(UTC)),
            ingested_at=contract.timestamp(datetime.now(UTC)),
        ),
        interaction_event_id=routed.enriched.interaction.header.event_id,
        agent_id="agent-2",
        text="Bonjour Hugo, pouvez-vous nous écrire en privé ?",
        status="pending",
    )
    redelivered = [(b"conversation-730", contract.encode(answer))] * 3
    await publish_raw(api.bootstrap, "social.replies.v1", redelivered)

    async def moved() -> dict[str, Any] | None:
        case = await api.store.db.cases.find_one({"_id": recorded.case_id})
        return case if case and case["status"] == "pending_customer" else None

    case = await eventually_async(moved)
    assert [h["by"] for h in case["history"]] == ["agent-2"]
    answered_at = answer.header.occurred_at.ToDatetime(tzinfo=UTC)
    assert abs((case["first_response_at"] - answered_at).total_seconds()) < 0.001  # BSON: ms
    entries = await api.store.db.timeline.find({"contact_id": recorded.contact_id}).to_list()
    assert sorted(e["type"] for e in entries) == ["interaction", "reply"]
    updates = [
        event
        for key, value in await records_of(api.bootstrap, "crm.events.v1")
        if key == recorded.contact_id and value is not None
        for event in [contract.decode(crm_pb2.CrmEvent, value)]
        if event.type == crm_pb2.CRM_EVENT_TYPE_CASE_UPDATED
    ]
    assert [(u.case_id, u.case_status) for u in updates] == [(recorded.case_id, "pending_customer")]
