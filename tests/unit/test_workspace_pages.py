"""The workspace's pages and forms without I/O: fakes stand for the router and the CRM.

Sign-in, sessions and CSRF, scopes, the queues each agent works (from the router), hostile
text rendered inert, the security headers, the customer found in the CRM, the SSE stream.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from socialcrm import contract
from socialcrm.auth import ApiKeys
from socialcrm.v1 import common_pb2, routed_pb2
from socialcrm_workspace.api import CSP, install_workspace
from socialcrm_workspace.clients import UpstreamRefused, UpstreamUnavailable
from socialcrm_workspace.handlers import Workspace
from socialcrm_workspace.i18n import MESSAGES, negotiate
from socialcrm_workspace.live import ChangeHub
from socialcrm_workspace.pages import Flags, Pages, countdown, static_files
from socialcrm_workspace.sessions import SessionStore
from socialcrm_workspace.view import Change, OpenView
from tests.fixtures import events

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
AGENT_KEY = "agent-key-0123456789"
READ_KEY = "read-key-0123456789"
BILLING_KEY = "billing-key-0123456789"
KEYS = ApiKeys.parse(f"{AGENT_KEY}=agent:marie;{READ_KEY}=read:viewer;{BILLING_KEY}=agent:paul")
# What the router's ROUTER_AGENT_QUEUES lets each key's agent work.
QUEUES = {AGENT_KEY: {"*"}, READ_KEY: {"*"}, BILLING_KEY: {"billing"}}
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


class FakeRouter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.down = False

    async def reply(
        self, key: str, event_id: str, *, text: str, is_private: bool, status: str
    ) -> str:
        if text == "refused":
            raise UpstreamRefused("router", 403, "agent marie may not work queue legal-press")
        self.calls.append((key, event_id, {"text": text, "private": is_private, "status": status}))
        return "reply-1"

    async def set_status(self, key: str, event_id: str, status: str) -> str:
        self.calls.append((key, event_id, {"status": status}))
        return "status-1"

    async def agent_queues(self, key: str) -> frozenset[str]:
        if self.down:
            raise UpstreamUnavailable("router unreachable (ConnectError)")
        return frozenset(QUEUES[key])


class FakeCrm:
    contact_doc: ClassVar[dict[str, Any]] = {
        "id": "c-1",
        "display_name": "Marie",
        "identities": [{"key": "x:marie", "channel": "x", "handle": "marie"}],
        "timeline": [
            {"type": "interaction", "channel": "email", "text": "Mon colis", "occurred_at": "x"},
            {"type": "interaction", "channel": "x", "text": HOSTILE, "occurred_at": "x"},
        ],
        "open_cases": [],
    }

    async def search(self, key: str, **query: str) -> list[dict[str, Any]]:
        return [self.contact_doc] if query.get("handle") == "marie" else []

    async def contact(self, key: str, contact_id: str, limit: int) -> dict[str, Any]:
        return self.contact_doc

    async def merge_suggestions(self, key: str, limit: int) -> list[dict[str, Any]]:
        return [{"contact_ids": ["c-1", "c-2"], "identity_keys": ["email:m@example.com"]}]


def routed_post(
    text: str = "Colis perdu", minutes: int = 30, queue: str = "customer-service-fr"
) -> routed_pb2.RoutedInteraction:
    author = common_pb2.Author(handle="marie", display_name="Marie")
    item = events.interaction(text=text, author=author, is_public=True)
    return events.routed(
        events.enriched(item),
        queue=queue,
        sla_deadline=contract.timestamp(NOW + timedelta(minutes=minutes)),
        next_best_channel="private_message",
    )


@pytest.fixture
def view() -> OpenView:
    return OpenView(ttl=timedelta(hours=72), max_items=100)


@pytest.fixture
def router() -> FakeRouter:
    return FakeRouter()


@pytest.fixture
def client(view: OpenView, router: FakeRouter) -> TestClient:
    app = FastAPI()
    install_workspace(
        app,
        Workspace(view, router, FakeCrm(), 30),
        SessionStore(
            lambda: NOW, lifetime=timedelta(hours=1), idle=timedelta(hours=1), max_sessions=10
        ),
        KEYS,
        Pages(Flags(0.6, 0.6)),
        ChangeHub(10),
        secure_cookie=False,
        stream_seconds=0.2,
        static=static_files(),
        clock=lambda: NOW,
    )
    return TestClient(app, base_url="http://127.0.0.1")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, key: str) -> str:
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": key}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/queue").text)


def test_pages_need_a_session_and_the_cookie_is_httponly_strict(client: TestClient) -> None:
    assert client.get("/queue", follow_redirects=False).headers["location"] == "/sign-in"
    cookie = client.get("/sign-in").headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_an_unknown_key_is_refused_and_signing_in_changes_the_session_id(
    client: TestClient,
) -> None:
    page = client.get("/sign-in")
    before = client.cookies["workspace_session"]
    bad = client.post("/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": "nope"})
    assert bad.status_code == 401
    sign_in(client, AGENT_KEY)
    assert client.cookies["workspace_session"] != before


def test_a_post_without_the_session_csrf_token_is_refused(
    client: TestClient, view: OpenView, router: FakeRouter
) -> None:
    post = routed_post()
    view.apply_routed(post, NOW)
    sign_in(client, AGENT_KEY)
    for token in ("", "forged"):
        answer = client.post(
            f"/interactions/{post.header.event_id}/reply",
            data={"csrf_token": token, "text": "Bonjour"},
        )
        assert answer.status_code == 403
    page = client.get("/sign-in")
    assert client.post("/sign-in", data={"api_key": AGENT_KEY}).status_code == 403
    assert page.status_code == 200
    assert router.calls == []


def test_an_agent_replies_with_its_own_key_and_a_read_key_cannot(
    client: TestClient, view: OpenView, router: FakeRouter
) -> None:
    post = routed_post()
    view.apply_routed(post, NOW)
    event_id = post.header.event_id
    csrf = sign_in(client, READ_KEY)
    page = client.get(f"/interactions/{event_id}")
    assert 'id="reply-form"' not in page.text
    assert 'id="resolve-form"' not in page.text
    assert 'class="resolve"' not in client.get("/queue").text
    refused = client.post(
        f"/interactions/{event_id}/reply", data={"csrf_token": csrf, "text": "Bonjour"}
    )
    assert refused.status_code == 403
    assert router.calls == []

    client.cookies.clear()
    csrf = sign_in(client, AGENT_KEY)
    assert 'id="reply-form"' in client.get(f"/interactions/{event_id}").text
    sent = client.post(
        f"/interactions/{event_id}/reply",
        data={"csrf_token": csrf, "text": "Bonjour", "private": "1", "status": "pending"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/interactions/{event_id}?sent=reply-1"
    assert router.calls == [
        (AGENT_KEY, event_id, {"text": "Bonjour", "private": True, "status": "pending"})
    ]


def test_a_refusal_of_the_router_is_shown_as_it_said_it(client: TestClient, view: OpenView) -> None:
    post = routed_post()
    view.apply_routed(post, NOW)
    csrf = sign_in(client, AGENT_KEY)
    answer = client.post(
        f"/interactions/{post.header.event_id}/reply", data={"csrf_token": csrf, "text": "refused"}
    )
    assert answer.status_code == 403
    assert "may not work queue legal-press" in answer.text


def test_hostile_customer_text_is_rendered_as_text(client: TestClient, view: OpenView) -> None:
    post = routed_post(text=HOSTILE)
    view.apply_routed(post, NOW)
    sign_in(client, AGENT_KEY)
    for page in (client.get("/queue"), client.get(f"/interactions/{post.header.event_id}")):
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP
        assert "unsafe-inline" not in CSP
    assert client.get("/healthz").status_code == 404  # the bare test app has no health route


def test_the_conversation_shows_the_customer_across_channels_and_suggestions(
    client: TestClient, view: OpenView
) -> None:
    post = routed_post()
    view.apply_routed(post, NOW)
    sign_in(client, AGENT_KEY)
    page = client.get(f"/interactions/{post.header.event_id}").text
    assert 'id="timeline"' in page
    assert 'data-channel="email"' in page
    assert 'id="merge-suggestions"' in page
    assert "c-2" in page
    assert "private_message" in page


def test_the_interface_follows_the_browser_and_switches_language(client: TestClient) -> None:
    page = client.get("/sign-in", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.text
    assert "Se connecter" in page.text
    switched = client.post(
        "/language",
        data={"csrf_token": csrf_of(page.text), "language": "en", "next": "//evil.example"},
        follow_redirects=False,
    )
    assert switched.headers["location"] == "/queue"
    assert '<html lang="en">' in client.get("/sign-in", headers={"Accept-Language": "fr"}).text
    assert negotiate("de, en;q=0.2, fr;q=0.8") == "fr"
    assert negotiate("") == "en"


def test_every_message_exists_in_both_languages_and_none_shadows_a_dict_method() -> None:
    assert MESSAGES["en"].keys() == MESSAGES["fr"].keys()
    assert not set(MESSAGES["en"]) & set(dir(dict))


def test_the_countdown_and_the_static_files() -> None:
    assert countdown(NOW + timedelta(minutes=61, seconds=5), NOW) == "1:01:05"
    assert countdown(NOW - timedelta(seconds=5), NOW) == "-0:00:05"
    assert set(static_files()) == {"workspace.js", "workspace.css"}


def test_the_live_stream_carries_the_changes() -> None:
    async def scenario() -> list[str]:
        hub = ChangeHub(2)
        stream = await hub.stream(1.0, frozenset({"billing"}))
        chunks = [await anext(stream)]
        hub.publish(
            [
                Change("e-0", "c-0", "opened", frozenset({"care-fr", "care"})),
                Change("e-1", "c-1", "answered", frozenset({"billing"})),
            ]
        )
        chunks.append(await anext(stream))
        await stream.aclose()  # type: ignore[attr-defined]
        return chunks

    first, change = asyncio.run(scenario())
    assert first.startswith("retry:")
    assert change.startswith("event: change\n")
    assert '"kind": "answered"' in change  # the change of care-fr never reached this agent


def test_an_agent_sees_and_opens_only_the_queues_the_router_lets_it_work(
    client: TestClient, view: OpenView, router: FakeRouter
) -> None:
    care, bill = routed_post(minutes=10), routed_post("Facture", 20, queue="billing")
    view.apply_routed(care, NOW)
    view.apply_routed(bill, NOW)
    csrf = sign_in(client, BILLING_KEY)
    page = client.get("/queue").text
    assert bill.header.event_id in page
    assert care.header.event_id not in page
    assert 'value="customer-service-fr"' not in page  # nor offered as a filter
    assert care.header.event_id not in client.get("/queue/rows").text
    for path in (
        f"/interactions/{care.header.event_id}",
        f"/interactions/{care.header.event_id}/replies",
    ):
        refused = client.get(path)
        assert refused.status_code == 403
        assert MESSAGES["en"]["not_your_queue"] in refused.text
        assert "Colis perdu" not in refused.text
    answer = client.post(
        f"/interactions/{care.header.event_id}/reply", data={"csrf_token": csrf, "text": "Bonjour"}
    )
    assert answer.status_code == 403
    assert router.calls == []
    assert client.get(f"/interactions/{bill.header.event_id}").status_code == 200

    client.cookies.clear()
    sign_in(client, AGENT_KEY)  # "*": every queue
    page = client.get("/queue").text
    assert care.header.event_id in page
    assert bill.header.event_id in page


def test_sign_in_fails_closed_when_the_router_cannot_say_the_queues(
    client: TestClient, view: OpenView, router: FakeRouter
) -> None:
    view.apply_routed(routed_post(), NOW)
    router.down = True
    page = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={"csrf_token": csrf_of(page.text), "api_key": AGENT_KEY},
        follow_redirects=False,
    )
    assert answer.status_code == 503
    assert MESSAGES["en"]["queues_unknown"] in answer.text
    assert client.get("/queue", follow_redirects=False).headers["location"] == "/sign-in"
