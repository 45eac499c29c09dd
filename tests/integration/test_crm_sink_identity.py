"""Identity resolution against the real MongoDB-protocol server: one person, one contact."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from socialcrm.v1 import common_pb2, routed_pb2
from socialcrm_crm_sink.errors import IdentityTaken, SuggestionDecided
from socialcrm_crm_sink.records import plan_write
from socialcrm_crm_sink.store import CrmStore
from socialcrm_crm_sink.writes import Recorded
from socialcrm_devstack.stack import LOCAL_FINGERPRINT_SECRET
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_router.decide import route
from socialcrm_sentiment.enrich import enrich
from tests.conftest import Infra
from tests.fixtures.payloads import x_tweet_event

pytestmark = pytest.mark.integration

_START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(infra: Infra) -> AsyncIterator[CrmStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo.uri, tz_aware=True)
    db: AsyncDatabase[dict[str, Any]] = client[f"crm_{uuid.uuid4().hex[:8]}"]
    crm = CrmStore(db, fingerprint_secret=LOCAL_FINGERPRINT_SECRET)
    await crm.migrate()
    yield crm
    await client.drop_database(db.name)
    await client.close()


def x_post(tweet_id: str, handle: str, minute: int) -> routed_pb2.RoutedInteraction:
    [interaction] = normalize_account_activity(
        x_tweet_event(tweet_id, screen_name=handle), brand="acme", ingested_at=datetime.now(UTC)
    )
    interaction.header.occurred_at.FromDatetime(_START + timedelta(minutes=minute))
    return route(enrich(interaction))


def x_dm(tweet_id: str, handle: str, text: str, minute: int) -> routed_pb2.RoutedInteraction:
    routed = x_post(tweet_id, handle, minute)
    interaction = routed.enriched.interaction
    interaction.is_public = False
    interaction.kind = "dm"
    interaction.text = text
    return routed


def email(
    message_id: str, address: str, text: str, minute: int, *, verified: bool = True
) -> routed_pb2.RoutedInteraction:
    """An email; ``verified``: the mail gateway's signed DMARC verdict said pass."""
    routed = x_post(message_id.removeprefix("m"), "unused", minute)
    interaction = routed.enriched.interaction
    interaction.header.channel = common_pb2.CHANNEL_EMAIL
    interaction.header.event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"email/{message_id}"))
    interaction.author.handle = address
    interaction.author.channel_user_id = ""
    interaction.author.verified = verified
    interaction.is_public = False
    interaction.kind = "email"
    interaction.conversation_id = f"mail-{message_id}"
    interaction.text = text
    return routed


async def record(store: CrmStore, routed: routed_pb2.RoutedInteraction) -> Recorded:
    """Record an event of a person who was never erased."""
    recorded = await store.record(plan_write(routed))
    assert recorded is not None
    return recorded


async def snapshot(crm: CrmStore) -> dict[str, list[dict[str, Any]]]:
    return {name: await crm.db[name].find().to_list() for name in ("contacts", "timeline", "cases")}


async def test_x_then_email_from_the_same_person_is_one_contact(store: CrmStore) -> None:
    events = [
        x_post("900", "jean", 0),
        x_dm("901", "jean", "mon email est Jean@Example.com", 1),
        email("m1", "jean@example.com", "Toujours pas de réponse à ma réclamation", 2),
    ]
    recorded = [await record(store, e) for e in events]
    assert len({r.contact_id for r in recorded}) == 1
    before = await snapshot(store)
    for event in events:
        await record(store, event)
    assert await snapshot(store) == before
    [contact] = before["contacts"]
    assert contact["identities"][0]["key"] == "x:jean"
    assert {i["key"] for i in contact["identities"]} == {"x:jean", "email:jean@example.com"}
    assert {e["contact_id"] for e in before["timeline"]} == {contact["_id"]}
    assert len(before["timeline"]) == 3


async def test_an_address_typed_in_a_dm_suggests_a_merge_that_an_agent_accepts(
    store: CrmStore,
) -> None:
    by_mail = await record(store, email("m2", "lea@example.com", "Bonjour", 0))
    by_x = await record(store, x_post("910", "lea_x", 1))
    dm = x_dm("911", "lea_x", "c'est moi, lea@example.com, client 12345678", 2)
    linked = await record(store, dm)
    # Nobody checked that the address is lea_x's: no merge, but a suggestion. The customer
    # number nobody holds is linked to its author.
    assert linked.contact_id == by_x.contact_id
    x_contact = await store.db.contacts.find_one({"_id": by_x.contact_id})
    assert x_contact is not None
    assert {i["key"] for i in x_contact["identities"]} == {"x:lea_x", "customer_number:12345678"}
    [suggestion] = await store.suggestions.listed(status="pending", limit=10)
    assert suggestion["identity_keys"] == ["email:lea@example.com"]
    assert set(suggestion["contact_ids"]) == {by_mail.contact_id, by_x.contact_id}
    assert suggestion["event_id"] == dm.enriched.interaction.header.event_id
    await record(store, dm)  # redelivered: still one suggestion
    assert len(await store.suggestions.listed(status=None, limit=10)) == 1

    merged = await store.accept_suggestion(suggestion["_id"], actor="agent-7")
    assert merged["_id"] == by_mail.contact_id
    live = await store.db.contacts.find({"merged_into": {"$exists": False}}).to_list()
    assert [c["_id"] for c in live] == [by_mail.contact_id]
    assert {i["key"] for i in live[0]["identities"]} == {
        "email:lea@example.com",
        "x:lea_x",
        "customer_number:12345678",
    }
    loser = await store.db.contacts.find_one({"_id": by_x.contact_id})
    assert loser is not None
    assert loser["merged_into"] == by_mail.contact_id
    timeline = await store.db.timeline.find().to_list()
    assert {e["contact_id"] for e in timeline} == {by_mail.contact_id}
    cases = await store.db.cases.find().to_list()
    assert {c["contact_id"] for c in cases} == {by_mail.contact_id}
    [decided] = await store.suggestions.listed(status="accepted", limit=10)
    assert decided["decided_by"] == "agent-7"
    assert decided["decided_at"]
    with pytest.raises(SuggestionDecided):
        await store.accept_suggestion(suggestion["_id"], actor="agent-8")
    # A redelivered post of the merged author resolves to the surviving contact.
    again = await record(store, x_post("910", "lea_x", 1))
    assert again.contact_id == by_mail.contact_id


async def test_a_rejected_suggestion_stays_rejected_and_erasure_forgets_it(
    store: CrmStore,
) -> None:
    by_mail = await record(store, email("m3", "max@example.com", "Bonjour", 0))
    by_x = await record(store, x_post("940", "max_x", 1))
    await record(store, x_dm("941", "max_x", "max@example.com c'est moi", 2))
    [suggestion] = await store.suggestions.listed(status="pending", limit=10)
    rejected = await store.suggestions.claim(suggestion["_id"], status="rejected", actor="agent-2")
    assert rejected["decided_by"] == "agent-2"
    await record(store, x_dm("942", "max_x", "je répète : max@example.com", 3))
    [still] = await store.suggestions.listed(status=None, limit=10)
    assert still["status"] == "rejected"
    assert by_x.contact_id != by_mail.contact_id
    await store.erase(await store.plan_erasure(by_x.contact_id))
    assert await store.suggestions.listed(status=None, limit=10) == []


async def test_a_verified_address_still_merges_two_contacts(store: CrmStore) -> None:
    by_mail = await record(store, email("m4", "ines@example.com", "Bonjour", 0))
    by_chat = await record(store, chat("m43", "someone_else@example.com", 1))
    # The chat platform gives the visitor's account email: that one links and merges.
    joined = await record(store, chat("m44", "ines@example.com", 2))
    assert joined.contact_id == by_mail.contact_id
    assert by_chat.contact_id != by_mail.contact_id
    assert await store.suggestions.listed(status=None, limit=10) == []


async def test_manual_link_and_merge(store: CrmStore) -> None:
    first = await record(store, x_post("920", "ann", 0))
    second = await record(store, x_post("921", "ann_two", 1))
    identity = {"key": "phone:+33612345678", "channel": "phone", "handle": "+33612345678"}
    await store.link(first.contact_id, identity)
    with pytest.raises(IdentityTaken):
        await store.link(second.contact_id, identity)
    merged = await store.merge(first.contact_id, second.contact_id)
    assert {i["key"] for i in merged["identities"]} == {"x:ann", "x:ann_two", "phone:+33612345678"}
    assert await store.db.timeline.count_documents({"contact_id": first.contact_id}) == 2
    assert (await store.merge(first.contact_id, second.contact_id))["_id"] == first.contact_id


def chat(message_id: str, address: str, minute: int) -> routed_pb2.RoutedInteraction:
    routed = email(message_id, address, "Bonjour, ma commande n'est pas arrivée", minute)
    interaction = routed.enriched.interaction
    interaction.header.channel = common_pb2.CHANNEL_CHAT
    interaction.header.event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"chat/{message_id}"))
    interaction.kind = "chat"
    interaction.conversation_id = f"chat-{message_id}"
    return routed


async def test_a_chat_visitor_known_by_email_joins_the_email_contact(store: CrmStore) -> None:
    by_mail = await record(store, email("m40", "Paul@Example.com", "Où est mon colis ?", 0))
    by_chat = await record(store, chat("m41", "paul@example.com", 1))
    assert by_chat.contact_id == by_mail.contact_id
    [contact] = await store.db.contacts.find({"merged_into": {"$exists": False}}).to_list()
    assert {i["key"] for i in contact["identities"]} == {
        "email:paul@example.com",
        "chat:paul@example.com",
    }


async def test_posts_without_an_author_are_not_one_shared_contact(store: CrmStore) -> None:
    mentions = [x_post(f"93{i}", "unused", i) for i in range(2)]
    for i, routed in enumerate(mentions):
        interaction = routed.enriched.interaction
        interaction.header.channel = common_pb2.CHANNEL_INSTAGRAM
        interaction.author.handle = ""
        interaction.author.channel_user_id = ""
        interaction.conversation_id = f"media-{i}"
    recorded = [await record(store, routed) for routed in mentions]
    assert recorded[0].contact_id != recorded[1].contact_id


async def test_a_spoofed_sender_takes_over_nobody(store: CrmStore) -> None:
    """Issue 25, finding 3: a From the gateway did not verify, and what its body types, only
    suggest merges; the attacker's chat with the address typed stays apart."""
    victim = await record(store, email("m50", "victim@example.com", "Bonjour", 0))
    spoofed = email(
        "m51", "victim@example.com", "ma nouvelle adresse est a@evil.test", 1, verified=False
    )
    claimed = await record(store, spoofed)
    assert claimed.contact_id != victim.contact_id
    [suggestion] = await store.suggestions.listed(status="pending", limit=10)
    assert suggestion["identity_keys"] == ["email:victim@example.com"]
    assert set(suggestion["contact_ids"]) == {victim.contact_id, claimed.contact_id}
    assert await store.db.contacts.count_documents({"identities.key": "email:a@evil.test"}) == 0
    attacker = await record(store, chat("m52", "a@evil.test", 2))
    assert attacker.contact_id not in (victim.contact_id, claimed.contact_id)
    held = await store.db.contacts.find_one({"_id": victim.contact_id})
    assert held is not None
    assert {i["key"] for i in held["identities"]} == {"email:victim@example.com"}
    # The same sender verified later is the customer.
    proven = await record(store, email("m53", "victim@example.com", "Re", 3))
    assert proven.contact_id == victim.contact_id


async def test_a_youtube_author_is_their_channel_found_by_its_id(store: CrmStore) -> None:
    """Issue 25, finding 4: the channel id, not the display name, is the author."""
    comments = [x_post(f"95{i}", "unused", i) for i in range(3)]
    for routed, (name, channel_id) in zip(
        comments,
        [("Jean Dupont", "UCa9B"), ("Jean Dupont", "UCz0Q"), ("Jeannot", "UCa9B")],
        strict=True,
    ):
        interaction = routed.enriched.interaction
        interaction.header.channel = common_pb2.CHANNEL_YOUTUBE
        interaction.author.handle = channel_id
        interaction.author.channel_user_id = channel_id
        interaction.author.display_name = name
    recorded = [await record(store, routed) for routed in comments]
    assert recorded[0].contact_id == recorded[2].contact_id != recorded[1].contact_id
    [found] = await store.search(handle="UCa9B", email=None, name=None, limit=10)
    assert found["_id"] == recorded[0].contact_id
