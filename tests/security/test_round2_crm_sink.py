"""Second security round, crm-sink's findings (issue 25).

Finding 2: one 32 KB message froze the CRM API and its consumers (quadratic regexes).
Finding 3 (CRM side): a spoofed email From took over a customer's contact.
Finding 4 (CRM side): display names acted as identities (reviews, anonymous authors).
Finding 7: an erased person's case still took changes; anonymised ids led back to posts.
Finding 10 (connector): a hostile external CRM held the connector with a huge body, a drip
or a Retry-After of 3,170 years, and its URL's credentials reached the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from socialcrm.v1 import common_pb2, routed_pb2
from socialcrm_crm_sink.connector import ExternalCrmConnector, ExternalCrmRefused
from socialcrm_devstack.stack import LOCAL_AGENT_API_KEY, LOCAL_READ_API_KEY, LocalStack
from tests.fixtures import events
from tests.fixtures.kafka import publish
from tests.fixtures.waiting import eventually
from tests.security.test_crm_doors import ADMIN, contact_by_email, new_customer, send_chat

pytestmark = pytest.mark.security

READER = {"X-API-Key": LOCAL_READ_API_KEY}
AGENT = {"Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"}


def private_message(
    text: str,
    author: common_pb2.Author,
    *,
    channel: common_pb2.Channel.ValueType = common_pb2.CHANNEL_X,
    kind: str = "dm",
    public: bool = False,
) -> routed_pb2.RoutedInteraction:
    """A routed interaction as the router publishes it, straight to crm-sink's input."""
    item = events.interaction(
        f"sec-crm-{uuid.uuid4().hex}",
        text=text,
        author=author,
        channel=channel,
        kind=kind,
        is_public=public,
    )
    return events.routed(events.enriched(item))


def send(platform: LocalStack, *messages: routed_pb2.RoutedInteraction) -> None:
    asyncio.run(publish(platform.kafka.bootstrap, *messages))


def contacts(platform: LocalStack, **query: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{platform.url('crm-sink')}/v1/contacts", params=query, headers=READER)
    assert found.status_code == 200, found.text
    listed: list[dict[str, Any]] = found.json()["contacts"]
    return listed


@pytest.mark.e2e
def test_a_hostile_32_kb_message_does_not_stop_the_crm_api(platform: LocalStack) -> None:
    """Finding 2: the API answers all along while the sink records a pathological message."""
    crm = platform.url("crm-sink")
    handle = f"hostile_{uuid.uuid4().hex[:10]}"
    # Each part made one of the former patterns backtrack quadratically (about 40 s in all).
    hostile = "client" + " " * 24_000 + "1" * 12_000 + " " + "a." * 6_000
    assert len(hostile) > 32_000
    send(platform, private_message(hostile, common_pb2.Author(handle=handle)))
    slowest, calls = 0.0, 0
    deadline = time.monotonic() + 90
    while not contacts(platform, handle=handle):
        assert time.monotonic() < deadline, "the hostile message was never recorded"
        started = time.monotonic()
        answer = httpx.get(f"{crm}/v1/cases", params={"limit": 1}, headers=READER, timeout=10)
        assert answer.status_code == 200, answer.text
        slowest, calls = max(slowest, time.monotonic() - started), calls + 1
        time.sleep(0.1)
    # Generous for a busy machine; the freeze it replaces lasted tens of seconds.
    assert slowest < 5, f"the CRM API took {slowest:.1f} s to answer while recording it"
    follower = f"after_{uuid.uuid4().hex[:10]}"
    send(platform, private_message("Bonjour", common_pb2.Author(handle=follower)))
    eventually(lambda: contacts(platform, handle=follower), 30, what="the next message recorded")


@pytest.mark.e2e
def test_display_names_are_not_identities(platform: LocalStack) -> None:
    """Finding 4: namesakes stay apart, a name that is an address merges nothing, anonymous
    reviewers are not one contact."""
    address, customer = new_customer(platform)
    name = f"Jean Dupont {uuid.uuid4().hex[:6]}"
    marker = uuid.uuid4().hex[:8]

    def review(reviewer: str) -> routed_pb2.RoutedInteraction:
        author = common_pb2.Author(handle=reviewer or "anonymous", display_name=reviewer)
        text = f"Avis {marker} : service lent"
        return private_message(
            text, author, channel=common_pb2.CHANNEL_GOOGLE_REVIEWS, kind="review", public=True
        )

    send(platform, review(name), review(name), review(address), review(""), review(""))

    def both_namesakes() -> list[dict[str, Any]] | None:
        found = contacts(platform, name=name)
        return found if len(found) == 2 else None

    namesakes = eventually(both_namesakes, 30, what="both namesakes recorded")
    assert namesakes[0]["id"] != namesakes[1]["id"]
    held = contact_by_email(platform, address)
    assert held is not None
    assert held["id"] == customer["id"]
    view = httpx.get(f"{platform.url('crm-sink')}/v1/contacts/{customer['id']}", headers=READER)
    assert not [e for e in view.json()["timeline"] if marker in (e.get("text") or "")]
    with mongo(platform) as db:
        anonymous = eventually(
            lambda: (
                (
                    found := db.timeline.find(
                        {"channel": "google_reviews", "text": {"$regex": marker}}
                    ).to_list()
                )
                and len(found) == 5
                and found
            ),
            30,
            what="the five reviews recorded",
        )
    assert len({e["contact_id"] for e in anonymous}) == 5


@pytest.mark.e2e
def test_a_spoofed_sender_only_suggests_and_takes_over_nothing(platform: LocalStack) -> None:
    """Finding 3 (CRM side): an email From the gateway did not verify, saying "my new address
    is A", links nothing to the customer; the attacker's chat with A stays apart."""
    victim_address, victim = new_customer(platform)
    attacker_address = f"attacker-{uuid.uuid4().hex[:10]}@example.net"
    spoofed = private_message(
        f"Bonjour, ma nouvelle adresse est {attacker_address}",
        common_pb2.Author(handle=victim_address, channel_user_id=victim_address),
        channel=common_pb2.CHANNEL_EMAIL,
        kind="email",
    )
    send(platform, spoofed)

    def suggested() -> dict[str, Any] | None:
        listed = httpx.get(f"{platform.url('crm-sink')}/v1/merge-suggestions", headers=READER)
        pairs = listed.json()["merge_suggestions"]
        return next((s for s in pairs if victim["id"] in s["contact_ids"]), None)

    suggestion = eventually(suggested, 30, what="a merge suggestion for the spoofed sender")
    assert suggestion["identity_keys"] == [f"email:{victim_address}"]
    send_chat(platform, attacker_address, "Bonjour, où en est ma commande ?")
    attacker = eventually(lambda: contact_by_email(platform, attacker_address), 30)
    assert attacker["id"] != victim["id"]
    held = contact_by_email(platform, victim_address)
    assert held is not None
    assert held["id"] == victim["id"]
    assert f"email:{attacker_address}" not in {i["key"] for i in held["identities"]}


@contextlib.contextmanager
def mongo(platform: LocalStack) -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri, tz_aware=True)
    try:
        yield client.socialcrm
    finally:
        client.close()


@pytest.mark.e2e
def test_an_erased_persons_case_refuses_changes_and_keeps_no_public_id(
    platform: LocalStack,
) -> None:
    """Finding 7, and the low finding on anonymised ids derived from public ids."""
    crm = platform.url("crm-sink")
    _, contact = new_customer(platform)
    view = httpx.get(f"{crm}/v1/contacts/{contact['id']}", headers=READER).json()
    [case] = view["open_cases"]
    entry_ids = [e["id"] for e in view["timeline"]]
    # MongoDB keeps milliseconds: the erasure's time is not before this one.
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    erased = httpx.delete(f"{crm}/v1/contacts/{contact['id']}", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    with mongo(platform) as db:
        assert db.cases.find_one({"_id": case["id"]}) is None
        assert db.timeline.count_documents({"_id": {"$in": entry_ids}}) == 0
        # This test's erasure is the only one since ``before`` (tests run one at a time).
        [anonymised] = db.cases.find({"erased_at": {"$gte": before}}).to_list()
        assert anonymised["opened_at"] == datetime.fromisoformat(case["opened_at"])
        assert not {case["id"], case["conversation_id"]} & {str(v) for v in anonymised.values()}
    note = {"note": "nouvelle adresse: 3 rue des Lilas, jean@example.com, 06 12 34 56 78"}
    for case_id in (anonymised["_id"], case["id"]):
        changed = httpx.patch(f"{crm}/v1/cases/{case_id}", json=note, headers=AGENT)
        assert changed.status_code in (404, 410), changed.text
    changed = httpx.patch(f"{crm}/v1/cases/{anonymised['_id']}", json=note, headers=AGENT)
    assert changed.status_code == 410
    assert "erased" in changed.json()["detail"]
    with mongo(platform) as db:
        kept = db.cases.find_one({"_id": anonymised["_id"]})
    assert kept is not None
    assert kept["history"] == []


# --- Finding 10: the connector against a hostile external CRM on 127.0.0.1 ---------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def hostile_crm(behaviour: Behaviour) -> AsyncIterator[str]:
    """A local HTTP server answering every request with ``behaviour``; its URL."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            await behaviour(reader, writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://sync:hunter2-pass@127.0.0.1:{port}/hooks?token=s3cr3t-t0ken"
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5)


def connector(url: str, **overrides: Any) -> ExternalCrmConnector:
    settings: dict[str, Any] = {
        "secret": "signing-secret-value",
        "max_attempts": 2,
        "first_backoff_seconds": 0.01,
        "timeout_seconds": 2.0,
        "max_response_bytes": 16_384,
        "max_retry_after_seconds": 0.5,
    } | overrides
    return ExternalCrmConnector(None, url=url, **settings)  # type: ignore[arg-type]


PAYLOAD = {"eventId": "e-1", "subscriptionType": "contact.creation", "objectId": "c-1"}


async def deliver_within(target: ExternalCrmConnector, seconds: float) -> str:
    """Deliver once; the dead-letter reason. Fails if the connector is still busy after
    ``seconds`` (what the hostile server offers lasts far longer)."""
    await target.start()
    try:
        async with asyncio.timeout(seconds):
            with pytest.raises(ExternalCrmRefused) as refused:
                await target.deliver(PAYLOAD)
    finally:
        await target.stop()
    return str(refused.value)


async def test_a_huge_error_body_is_read_only_up_to_the_cap() -> None:
    sent = 0

    async def huge(__: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 300000000\r\n\r\n")
        chunk = b"x" * 65_536
        for _ in range(300_000_000 // len(chunk)):  # 300 MB at most, if anyone reads it
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    async with hostile_crm(huge) as url:
        reason = await deliver_within(connector(url, timeout_seconds=30.0), 60)
    assert "HTTP 500" in reason
    # The rest was never read: the server stopped when the connection was dropped.
    assert sent < 32_000_000, f"{sent} bytes were taken from a 300 MB body"


async def test_a_dripping_answer_is_cut_at_the_call_deadline() -> None:
    async def drip(__: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(600):  # one byte every 0.1 s: a minute at most
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)

    async with hostile_crm(drip) as url:
        reason = await deliver_within(connector(url, timeout_seconds=0.5), 20)
    assert "no complete answer within 0.5 s" in reason


async def test_a_huge_retry_after_waits_the_ceiling_only() -> None:
    async def busy(__: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 429 Slow down\r\nRetry-After: 99999999999\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()

    async with hostile_crm(busy) as url:
        reason = await deliver_within(connector(url, max_attempts=3), 20)
    assert "failed 3 times" in reason


async def test_secrets_stay_out_of_every_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def echo(__: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = b"bad token s3cr3t-t0ken for sync:hunter2-pass, key signing-secret-value"
        writer.write(b"HTTP/1.1 503 Down\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    caplog.set_level(logging.DEBUG)
    async with hostile_crm(echo) as url:
        reason = await deliver_within(connector(url), 20)
    logged = [r.getMessage() for r in caplog.records] + [
        str(v) for r in caplog.records for v in vars(r).values() if isinstance(v, str)
    ]
    assert any("/hooks" in line for line in logged), "the HTTP client's request line"
    for secret in ("s3cr3t-t0ken", "hunter2-pass", "signing-secret-value"):
        assert secret not in reason
        assert not [line for line in logged if secret in line], secret
