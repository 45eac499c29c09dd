"""The agents' workspace in a real headless Chromium (Debian's), driven by Playwright.

Interactions are published on ``social.enriched.v1``: the router routes them, crm-sink
records the customer, the workspace lists them. The agent signs in, sees the queue by
deadline, opens an interaction with the customer's timeline across channels, replies, and
sees the item leave the list and the Reply's SLA outcome, which the test also reads on
``social.replies.v1``. Every wait is a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, expect, sync_playwright

from socialcrm.v1 import common_pb2, enriched_pb2, reply_pb2
from socialcrm_devstack.stack import (
    LOCAL_AGENT_API_KEY,
    LOCAL_AGENT_ID,
    LOCAL_CRM_API_KEY,
    LOCAL_READ_API_KEY,
    LocalStack,
)
from tests.fixtures import events
from tests.fixtures.kafka import publish, read_until
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Routing, recording and the live stream take a few seconds; a loaded machine more.
WAIT_MS = 60_000
# Every expectation waits as long: a page that calls the CRM and the router took over
# Playwright's default 5 s with one core busy.
expect.set_options(timeout=WAIT_MS)
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
T = TypeVar("T")


def run(work: Callable[[], Awaitable[T]]) -> T:
    """An asyncio call (Kafka) from a test that Playwright's sync API drives."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()  # type: ignore[arg-type]


def post(
    text: str,
    *,
    minutes_ago: float,
    channel: common_pb2.Channel.ValueType = common_pb2.CHANNEL_X,
    author: common_pb2.Author | None = None,
    is_public: bool = True,
) -> enriched_pb2.EnrichedInteraction:
    """A negative French post, routed to customer-service-fr with the router's default
    rules (an SLA of about an hour): the older, the sooner its deadline."""
    author = author or common_pb2.Author(handle=f"client_{uuid.uuid4().hex[:8]}")
    item = events.interaction(
        text=text,
        channel=channel,
        author=author,
        is_public=is_public,
        occurred_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )
    return events.enriched(item, sentiment_score=-0.7)


def published(platform: LocalStack, *posts: enriched_pb2.EnrichedInteraction) -> list[str]:
    run(lambda: publish(platform.kafka.bootstrap, *posts))
    return [p.header.event_id for p in posts]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip("chromium not found: bin/setup installs the Debian package chromium")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Page, platform: LocalStack, key: str) -> str:
    workspace = platform.url("workspace")
    page.goto(f"{workspace}/sign-in")
    page.get_by_label("API key").fill(key)
    page.locator("#sign-in").click()
    page.wait_for_url(f"{workspace}/queue", timeout=WAIT_MS)
    return workspace


def row(page: Page, event_id: str) -> Locator:
    return page.locator(f'#rows tr[data-event-id="{event_id}"]')


def test_an_agent_answers_from_the_queue_and_sees_the_sla_outcome(
    platform: LocalStack, page: Page, tmp_path: Path
) -> None:
    address = f"marie.{uuid.uuid4().hex[:8]}@example.com"
    # The customer wrote on the chat first (the chat platform gives its logged-in visitor's
    # email as the handle), then by a verified email: one contact across two channels.
    chat = post(
        "Bonjour, j'ai un problème avec ma commande",
        minutes_ago=58,
        channel=common_pb2.CHANNEL_CHAT,
        author=common_pb2.Author(handle=address, display_name="Marie"),
        is_public=False,
    )
    email = post(
        "Ma commande n'est toujours pas arrivée, c'est inadmissible",
        minutes_ago=55,
        channel=common_pb2.CHANNEL_EMAIL,
        author=common_pb2.Author(handle=address, display_name="Marie", verified=True),
        is_public=False,
    )
    later, latest = (
        post("Colis perdu, aucune réponse", minutes_ago=10),
        post("Toujours rien reçu", minutes_ago=1),
    )
    chat_id, email_id, later_id, latest_id = published(platform, chat, email, later, latest)

    crm = platform.url("crm-sink")
    auth = {"Authorization": f"Bearer {LOCAL_CRM_API_KEY}"}

    def customer_on_both_channels() -> bool:
        found = httpx.get(f"{crm}/v1/contacts", params={"email": address}, headers=auth).json()
        if not found["contacts"]:
            return False
        contact_id = found["contacts"][0]["id"]
        held = httpx.get(f"{crm}/v1/contacts/{contact_id}", headers=auth).json()
        return {e.get("channel") for e in held["timeline"]} >= {"chat", "email"}

    eventually(customer_on_both_channels, 90, what="the customer's chat and email in the CRM")

    workspace = sign_in(page, platform, LOCAL_AGENT_API_KEY)
    for event_id in (chat_id, email_id, later_id, latest_id):
        expect(row(page, event_id)).to_have_count(1, timeout=WAIT_MS)
    page.reload()
    rows = page.locator("#rows tr.item")
    order = [rows.nth(i).get_attribute("data-event-id") for i in range(rows.count())]
    deadlines = [
        int(d)
        for d in page.locator("#rows time.countdown").evaluate_all(
            "els => els.map(e => e.dataset.deadlineMs)"
        )
    ]
    assert deadlines == sorted(deadlines), "the queue is not ordered by SLA deadline"
    mine = [event_id for event_id in order if event_id in {chat_id, email_id, later_id, latest_id}]
    assert mine == [chat_id, email_id, later_id, latest_id]
    queue_shot = tmp_path / "workspace-queue.png"
    page.screenshot(path=str(queue_shot), full_page=True)

    row(page, email_id).locator("a.open").click()
    page.wait_for_url(f"{workspace}/interactions/{email_id}*", timeout=WAIT_MS)
    timeline = page.locator("#timeline")
    expect(timeline.locator('li[data-channel="chat"]')).to_have_count(1)
    expect(timeline.locator('li[data-channel="email"]')).to_have_count(1)
    expect(page.locator("#post-text")).to_have_text(email.interaction.text)
    conversation_shot = tmp_path / "workspace-conversation.png"
    page.screenshot(path=str(conversation_shot), full_page=True)

    page.get_by_label("Your reply").fill("Bonjour Marie, nous retrouvons votre colis.")
    page.locator("#send-reply").click()
    page.wait_for_url(f"{workspace}/interactions/{email_id}?sent=*", timeout=WAIT_MS)
    # The outcome appears once the router's owner published the Reply (live, no reload).
    outcome = page.locator("#replies .sla-outcome")
    expect(outcome).to_have_count(1, timeout=WAIT_MS)
    assert outcome.get_attribute("data-sla") in {"met", "breached"}
    page.screenshot(path=str(tmp_path / "workspace-answered.png"), full_page=True)

    page.locator("#back-link").click()
    expect(row(page, email_id)).to_have_count(0, timeout=WAIT_MS)
    expect(row(page, later_id)).to_have_count(1)

    def reply_of(records: list[Any]) -> bool:
        return any(
            reply_pb2.Reply.FromString(r.value).interaction_event_id == email_id for r in records
        )

    records = run(lambda: read_until(platform.kafka.bootstrap, "social.replies.v1", reply_of))
    [reply] = [
        r
        for r in (reply_pb2.Reply.FromString(rec.value) for rec in records)
        if r.interaction_event_id == email_id
    ]
    assert reply.agent_id == LOCAL_AGENT_ID
    assert reply.is_private
    assert reply.first_response
    assert reply.sla_status in (reply_pb2.SLA_STATUS_MET, reply_pb2.SLA_STATUS_BREACHED)
    print(f"\nscreenshots: {queue_shot} {conversation_shot}")


def test_hostile_customer_text_shows_as_text(platform: LocalStack, page: Page) -> None:
    [event_id] = published(platform, post(HOSTILE, minutes_ago=5))
    dialogs: list[str] = []

    def dialog_opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dialog_opened)
    sign_in(page, platform, LOCAL_AGENT_API_KEY)
    expect(row(page, event_id)).to_have_count(1, timeout=WAIT_MS)
    expect(row(page, event_id).locator("a.open")).to_contain_text("<script>")
    workspace = platform.url("workspace")
    row(page, event_id).locator("a.open").click()
    page.wait_for_url(f"{workspace}/interactions/{event_id}*", timeout=WAIT_MS)
    expect(page.locator("#post-text")).to_have_text(HOSTILE)
    # A public complaint: the router suggests taking it to a private message.
    expect(page.locator("#next-best-channel")).to_contain_text("private_message")
    assert page.locator("#post-text img, #post-text script").count() == 0
    assert page.evaluate("window.pwned === undefined")
    assert not dialogs


def test_forms_without_the_session_csrf_token_are_refused(platform: LocalStack, page: Page) -> None:
    [event_id] = published(platform, post("Colis abîmé", minutes_ago=5))
    workspace = sign_in(page, platform, LOCAL_AGENT_API_KEY)
    expect(row(page, event_id)).to_have_count(1, timeout=WAIT_MS)
    for token in ("", "not-the-session-token"):
        # The browser's own cookies: only the token is missing or wrong.
        answer = page.request.post(
            f"{workspace}/interactions/{event_id}/reply",
            form={"csrf_token": token, "text": "Bonjour"},
        )
        assert answer.status == 403
    page.reload()
    expect(row(page, event_id)).to_have_count(1)


def test_a_read_key_reads_but_cannot_act(platform: LocalStack, page: Page) -> None:
    [event_id] = published(platform, post("Remboursement jamais reçu", minutes_ago=5))
    workspace = sign_in(page, platform, LOCAL_READ_API_KEY)
    expect(page.locator("#agent")).to_have_text("local-reader")
    expect(row(page, event_id)).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#rows form.resolve")).to_have_count(0)
    page.goto(f"{workspace}/interactions/{event_id}")
    expect(page.locator("#post-text")).to_have_text("Remboursement jamais reçu")
    expect(page.locator("#reply-form")).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    answer = page.request.post(
        f"{workspace}/interactions/{event_id}/reply",
        form={"csrf_token": token or "", "text": "Bonjour"},
    )
    assert answer.status == 403
    # The queues it was given at sign-in, from the router: the local stack sets no
    # ROUTER_AGENT_QUEUES, so the demo's agents work (and see) every queue.
    me = httpx.get(
        f"{platform.url('router')}/v1/agents/me",
        headers={"Authorization": f"Bearer {LOCAL_READ_API_KEY}"},
    )
    assert me.json() == {"agent_id": "local-reader", "queues": ["*"]}, me.text


def test_the_list_follows_the_topics_without_reload(platform: LocalStack, page: Page) -> None:
    sign_in(page, platform, LOCAL_AGENT_API_KEY)
    page.evaluate("window.sameDocument = true")
    [event_id] = published(platform, post("Livraison en retard", minutes_ago=1))
    expect(row(page, event_id)).to_have_count(1, timeout=WAIT_MS)

    # Answered by someone else, through the router's API: it leaves this agent's list.
    router = platform.url("router")
    answered = httpx.post(
        f"{router}/v1/interactions/{event_id}/replies",
        json={"text": "Nous regardons"},
        headers={"Authorization": f"Bearer {LOCAL_AGENT_API_KEY}"},
    )
    assert answered.status_code == 202, answered.text
    expect(row(page, event_id)).to_have_count(0, timeout=WAIT_MS)
    assert page.evaluate("window.sameDocument === true"), "the page was reloaded"


def test_keyboard_shortcuts_move_open_and_reply(platform: LocalStack, page: Page) -> None:
    first, second = post("Commande bloquée", minutes_ago=59), post("Bloqué", minutes_ago=58)
    _, second_id = published(platform, first, second)
    workspace = sign_in(page, platform, LOCAL_AGENT_API_KEY)
    expect(row(page, second_id)).to_have_count(1, timeout=WAIT_MS)
    page.keyboard.press("j")
    page.keyboard.press("j")
    selected = page.locator('#rows tr[aria-selected="true"]')
    expect(selected).to_have_count(1)
    chosen = selected.get_attribute("data-event-id")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{workspace}/interactions/{chosen}*", timeout=WAIT_MS)
    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()


def test_the_interface_speaks_french(platform: LocalStack, browser: Browser) -> None:
    context = browser.new_context(locale="fr-FR")
    try:
        french = context.new_page()
        french.goto(f"{platform.url('workspace')}/sign-in")
        expect(french.locator("h1")).to_have_text("Se connecter")
        french.locator("#switch-language").click()
        expect(french.locator("h1")).to_have_text("Sign in")
    finally:
        context.close()
