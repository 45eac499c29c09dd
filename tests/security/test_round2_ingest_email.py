"""Second security round, ingest's email and identity findings (issue 25), on the running platform.

Finding 1: an HTML-only email of many "<" froze ingest for every channel (a quadratic regex
over the whole body, holding the GIL so the parse timeout could not fire).
Finding 3 (ingest side): a spoofed From took over a customer's contact; ingest read no
verdict of the mail gateway.
Finding 4 (ingest side): display names acted as identities (reviews, YouTube comments).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from socialcrm import contract
from socialcrm.v1 import interaction_pb2
from socialcrm_devstack.stack import LocalStack
from socialcrm_ingest.backfill.importer import Options, run_backfill
from socialcrm_ingest.backfill.settings import BackfillSettings
from socialcrm_ingest.security.mail_verdict import VERDICT_HEADER
from tests.fixtures.kafka import read_keyed
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import post_webhook
from tests.security.test_crm_doors import contact_by_email, new_customer
from tests.security.test_ingest_limits import forum_post, post_email

pytestmark = [pytest.mark.security, pytest.mark.e2e]

# Ingest's default MAX_BODY_BYTES, which the local stack keeps: the largest email it reads.
MAX_BODY_BYTES = 1_048_576
# Shapes that were quadratic: the old regex on each, html.parser of Python 3.11 on the others.
HOSTILE_UNITS = ("<", "<a ", "<!--", "<?")
# A call to another door that takes longer than this counts as a frozen ingest. Generous: a
# busy machine answers a forum post in well under a second.
ANSWER_WITHIN_SECONDS = 10


def hostile_email(unit: str) -> bytes:
    """An HTML-only email filling the body cap with ``unit``."""
    marker = uuid.uuid4().hex
    head = (
        f"From: Client <client-{marker}@example.fr>\r\nMessage-ID: <{marker}@example.fr>\r\n"
        "Subject: commande\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    ).encode()
    room = MAX_BODY_BYTES - len(head)
    return head + (unit * (room // len(unit))).encode()


def test_finding_1_hostile_html_emails_leave_every_door_answering(platform: LocalStack) -> None:
    started = threading.Event()
    done = threading.Event()
    others: list[int] = []

    def other_doors() -> None:
        # Forum posts and health checks, one after the other, all the while the emails are in.
        while not done.is_set() or len(others) < 4:
            started.set()
            others.append(
                post_webhook(
                    platform, "/v1/webhooks/forum", forum_post(), timeout=ANSWER_WITHIN_SECONDS
                ).status_code
            )
            health = httpx.get(platform.url("ingest") + "/healthz", timeout=ANSWER_WITHIN_SECONDS)
            others.append(health.status_code)

    with ThreadPoolExecutor(len(HOSTILE_UNITS) + 1) as pool:
        calling = pool.submit(other_doors)
        started.wait(ANSWER_WITHIN_SECONDS)
        emails = [pool.submit(post_email, platform, hostile_email(unit)) for unit in HOSTILE_UNITS]
        try:
            answers = [email.result() for email in emails]
        finally:
            done.set()
        # A call that timed out raises here, naming the door.
        calling.result()
    for unit, answer in zip(HOSTILE_UNITS, answers, strict=True):
        # Read, its text cut at the limit: the email is accepted, as a long one is.
        assert answer.status_code == 200, (unit, answer.text)
        assert answer.json()["accepted"] == 1
    assert set(others) == {200}, others


def published(platform: LocalStack, conversation_id: str) -> interaction_pb2.Interaction:
    """The interaction ingest published for a conversation of one message."""
    [record] = asyncio.run(
        read_keyed(platform.kafka.bootstrap, "social.interactions.v1", conversation_id.encode(), 1)
    )
    return contract.decode(interaction_pb2.Interaction, record.value)


def forged_email(sender: str, verdict: str, text: str) -> tuple[str, bytes]:
    """An email "from" ``sender`` carrying ``verdict``: its Message-ID and bytes."""
    message_id = f"{uuid.uuid4().hex}@mail.example.net"
    return message_id, (
        f"{VERDICT_HEADER}: {verdict}\r\n"
        f"From: Client <{sender}>\r\nTo: support@acme.example\r\nSubject: changement\r\n"
        f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def test_finding_3_a_forged_from_takes_over_no_contact(platform: LocalStack) -> None:
    """A forged email "from" a customer, with a verdict the gateway never signed, saying
    "my new address is A": its author is unverified, and the customer's contact keeps
    neither the message nor A."""
    victim_address, victim = new_customer(platform)
    attacker_address = f"attacker-{uuid.uuid4().hex[:10]}@example.net"
    marker = uuid.uuid4().hex[:10]
    domain = victim_address.rpartition("@")[2]
    verdict = f"dmarc=pass; dkim=pass; header.from={domain}; header.d={domain}; sig={'0' * 64}"
    message_id, forged = forged_email(
        victim_address, verdict, f"Bonjour {marker}, ma nouvelle adresse est {attacker_address}"
    )
    answer = post_email(platform, forged)
    assert answer.status_code == 200, answer.text

    author = published(platform, message_id).author
    assert author.handle == victim_address
    assert not author.verified

    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri, tz_aware=True)
    try:
        recorded = eventually(
            lambda: client.socialcrm.timeline.find_one({"text": {"$regex": marker}}),
            30,
            what="the forged email recorded",
        )
    finally:
        client.close()
    assert recorded["contact_id"] != victim["id"]
    held = contact_by_email(platform, victim_address)
    assert held is not None
    assert held["id"] == victim["id"]
    assert f"email:{attacker_address}" not in {i["key"] for i in held["identities"]}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def google_review(marker: str, reviewer: dict[str, Any]) -> dict[str, Any]:
    """A Google Business Profile ``Review`` resource."""
    review_id = f"AbFvOq{uuid.uuid4().hex}"
    return {
        "name": f"accounts/107254123456789012345/locations/4356745123456789012/reviews/{review_id}",
        "reviewId": review_id,
        "reviewer": reviewer,
        "starRating": "ONE",
        "comment": f"Avis {marker} : commande jamais livrée",
        "createTime": now_iso(),
        "updateTime": now_iso(),
    }


def youtube_thread(marker: str, display_name: str, channel_id: str) -> dict[str, Any]:
    """A ``youtube#commentThread`` of one top-level comment."""
    comment_id = f"Ugz{uuid.uuid4().hex}"
    return {
        "kind": "youtube#commentThread",
        "id": comment_id,
        "snippet": {
            "channelId": "UCacmeOfficialChannel0001",
            "videoId": "dQw4w9WgXcQ",
            "topLevelComment": {
                "kind": "youtube#comment",
                "id": comment_id,
                "snippet": {
                    "videoId": "dQw4w9WgXcQ",
                    "textDisplay": f"Commentaire {marker} : toujours pas livré",
                    "textOriginal": f"Commentaire {marker} : toujours pas livré",
                    "authorDisplayName": display_name,
                    "authorChannelId": {"value": channel_id},
                    "likeCount": 0,
                    "publishedAt": now_iso(),
                    "updatedAt": now_iso(),
                },
            },
            "totalReplyCount": 0,
            "isPublic": True,
        },
    }


def test_finding_4_public_names_link_nobody(platform: LocalStack, tmp_path: Path) -> None:
    """Reviews and comments imported through ingest's own normalizers: namesakes stay apart, a
    name that is a customer's address reaches nobody's contact, anonymous reviewers are not
    pooled, and a YouTube author renamed is still one person (their channel)."""
    victim_address, victim = new_customer(platform)
    marker = uuid.uuid4().hex[:10]
    namesake = {"displayName": f"Jean Dupont {marker}", "isAnonymous": False}
    anonymous = {"displayName": "A Google user", "isAnonymous": True}
    channel = f"UC{uuid.uuid4().hex[:22]}"
    envelopes = [
        {"format": "google-business-reviews", "payload": google_review(marker, reviewer)}
        for reviewer in (namesake, namesake, {"displayName": victim_address}, anonymous, anonymous)
    ] + [
        {"format": "youtube-comment-threads", "payload": youtube_thread(marker, name, channel_id)}
        for name, channel_id in (
            ("@jean_dupont", channel),
            ("Jean Dupont", channel),
            ("Jean Dupont", f"UC{uuid.uuid4().hex[:22]}"),
        )
    ]
    lines = tmp_path / "public.jsonl"
    lines.write_text("".join(json.dumps(envelope) + "\n" for envelope in envelopes))
    summary = asyncio.run(
        run_backfill(
            Options(path=lines, fmt=None, brand="acme", checkpoint=tmp_path / "cp.json"),
            BackfillSettings(kafka_bootstrap_servers=platform.kafka.bootstrap),
            io.StringIO(),
        )
    )
    assert (summary.published, summary.bad) == (8, 0)

    client: MongoClient[dict[str, Any]] = MongoClient(platform.mongo.uri, tz_aware=True)
    try:

        def all_recorded() -> list[dict[str, Any]] | None:
            found = client.socialcrm.timeline.find({"text": {"$regex": marker}}).to_list()
            return found if len(found) == len(envelopes) else None

        recorded = eventually(all_recorded, 30, what="the reviews and comments recorded")
    finally:
        client.close()
    reviews = [e for e in recorded if e["channel"] == "google_reviews"]
    comments = [e for e in recorded if e["channel"] == "youtube"]
    # Five reviews, five authors: no name links two reviews, nor one to the customer.
    assert len({e["contact_id"] for e in reviews}) == 5
    assert victim["id"] not in {e["contact_id"] for e in recorded}
    held = contact_by_email(platform, victim_address)
    assert held is not None
    assert held["id"] == victim["id"]
    # Two YouTube channels: the renamed author is one contact, their namesake another.
    assert len({e["contact_id"] for e in comments}) == 2
