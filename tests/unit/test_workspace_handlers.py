"""The workspace's handlers without I/O: finding the customer, acting, refusing, and the
queues an agent works (from the router at sign-in)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialcrm.auth import Principal, implied_scopes
from socialcrm.v1 import common_pb2
from socialcrm_workspace.clients import UpstreamRefused, UpstreamUnavailable
from socialcrm_workspace.handlers import (
    InvalidForm,
    NotInWorkspace,
    NotYourQueue,
    QueuesUnknown,
    ReadOnly,
    Workspace,
    identity_keys,
    searches,
)
from socialcrm_workspace.sessions import Session, SessionStore
from socialcrm_workspace.view import Filters, OpenView, item_of
from tests.fixtures import events

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Router:
    def __init__(self, queues: Exception | frozenset[str] = frozenset({"*"})) -> None:
        self.replies: list[tuple[str, str, str]] = []
        self.queues = queues

    async def reply(
        self, key: str, event_id: str, *, text: str, is_private: bool, status: str
    ) -> str:
        self.replies.append((key, event_id, text))
        return "r-1"

    async def set_status(self, key: str, event_id: str, status: str) -> str:
        return "s-1"

    async def agent_queues(self, key: str) -> frozenset[str]:
        if isinstance(self.queues, Exception):
            raise self.queues
        return self.queues


class Crm:
    def __init__(self, contacts: list[dict[str, Any]], *, down: bool = False) -> None:
        self.contacts = contacts
        self.down = down
        self.searched: list[dict[str, str]] = []

    async def search(self, key: str, **query: str) -> list[dict[str, Any]]:
        if self.down:
            raise UpstreamUnavailable("crm unreachable")
        self.searched.append(query)
        return self.contacts

    async def contact(self, key: str, contact_id: str, limit: int) -> dict[str, Any]:
        return next(c for c in self.contacts if c["id"] == contact_id)

    async def merge_suggestions(self, key: str, limit: int) -> list[dict[str, Any]]:
        return [{"contact_ids": ["other", "c-2"]}, {"contact_ids": ["c-9", "x"]}]


def session(scope: str, queues: frozenset[str] = frozenset({"*"})) -> Session:
    store = SessionStore(
        lambda: NOW, lifetime=timedelta(hours=1), idle=timedelta(hours=1), max_sessions=5
    )
    principal = Principal("marie", implied_scopes(scope))  # type: ignore[arg-type]
    return store.sign_in(None, principal, "key-of-marie", queues)


def email_item() -> Any:
    author = common_pb2.Author(handle="Marie@Example.com", verified=True)
    post = events.interaction(channel=common_pb2.CHANNEL_EMAIL, author=author)
    return events.routed(events.enriched(post))


def test_the_author_is_looked_up_by_the_keys_the_crm_gives_them() -> None:
    item = item_of(email_item(), NOW)
    assert identity_keys(item) == {
        "email:marie@example.com",
        "unverified_email:marie@example.com",
    }
    assert searches(item) == [{"email": "Marie@Example.com"}]
    reviewer = common_pb2.Author(display_name="Jean", channel_user_id="UC42")
    review = events.interaction(channel=common_pb2.CHANNEL_YOUTUBE, author=reviewer)
    assert identity_keys(item_of(events.routed(events.enriched(review)), NOW)) == {"youtube:UC42"}


def test_the_customer_is_the_contact_holding_the_authors_key_never_a_namesake() -> None:
    view = OpenView(ttl=timedelta(hours=1), max_items=10)
    routed = email_item()
    view.apply_routed(routed, NOW)
    namesake = {"id": "c-1", "identities": [{"key": "chat:marie@example.com"}]}
    holder = {"id": "c-2", "identities": [{"key": "email:marie@example.com"}], "timeline": []}
    workspace = Workspace(view, Router(), Crm([namesake, holder]), 30)
    found = asyncio.run(workspace.conversation(session("read"), routed.header.event_id, Filters()))
    assert found.customer.contact == holder
    assert found.customer.suggestions == [{"contact_ids": ["other", "c-2"]}]


def test_an_unreachable_crm_leaves_the_page_working() -> None:
    view = OpenView(ttl=timedelta(hours=1), max_items=10)
    routed = email_item()
    view.apply_routed(routed, NOW)
    workspace = Workspace(view, Router(), Crm([], down=True), 30)
    found = asyncio.run(workspace.conversation(session("read"), routed.header.event_id, Filters()))
    assert found.customer.unavailable


def test_acting_needs_the_agent_scope_a_text_and_a_known_item() -> None:
    view = OpenView(ttl=timedelta(hours=1), max_items=10)
    routed = email_item()
    view.apply_routed(routed, NOW)
    router = Router()
    workspace = Workspace(view, router, Crm([]), 30)
    event_id = routed.header.event_id

    def reply(who: Session, text: str, target: str = event_id, status: str = "") -> str:
        return asyncio.run(workspace.reply(who, target, text=text, is_private=False, status=status))

    with pytest.raises(ReadOnly):
        reply(session("read"), "Bonjour")
    with pytest.raises(InvalidForm):
        reply(session("agent"), "   ")
    with pytest.raises(InvalidForm):
        reply(session("agent"), "Bonjour", status="closed")
    with pytest.raises(NotInWorkspace):
        reply(session("agent"), "Bonjour", target="unknown")
    assert router.replies == []
    assert reply(session("agent"), " Bonjour ") == "r-1"
    assert router.replies == [("key-of-marie", event_id, "Bonjour")]


def test_the_queues_come_from_the_router_and_no_answer_is_no_sign_in() -> None:
    view = OpenView(ttl=timedelta(hours=1), max_items=10)
    granted = frozenset({"care-fr", "care"})
    assert asyncio.run(Workspace(view, Router(granted), Crm([]), 30).queues_of("k")) == granted
    for failure in (
        UpstreamUnavailable("router unreachable (ConnectTimeout)"),
        UpstreamRefused("router", 401, "unknown API key"),
    ):
        workspace = Workspace(view, Router(failure), Crm([]), 30)
        with pytest.raises(QueuesUnknown, match="could not say which queues") as refused:
            asyncio.run(workspace.queues_of("k"))
        assert refused.value.status_code == 503


def test_an_item_of_a_queue_not_worked_is_neither_listed_opened_nor_answered() -> None:
    view = OpenView(ttl=timedelta(hours=1), max_items=10)
    routed = email_item()  # customer-service-fr
    view.apply_routed(routed, NOW)
    router = Router()
    workspace = Workspace(view, router, Crm([]), 30)
    event_id = routed.header.event_id
    billing = session("agent", frozenset({"billing"}))
    assert workspace.queue(billing, Filters()) == []
    assert workspace.choices(billing)["queue"] == []
    with pytest.raises(NotYourQueue) as refused:
        workspace.item(billing, event_id)
    assert refused.value.status_code == 403
    with pytest.raises(NotYourQueue):
        asyncio.run(workspace.conversation(billing, event_id, Filters()))
    with pytest.raises(NotYourQueue):
        asyncio.run(workspace.reply(billing, event_id, text="Bonjour", is_private=False, status=""))
    with pytest.raises(NotYourQueue):
        asyncio.run(workspace.set_status(billing, event_id, "resolved"))
    assert router.replies == []
    with pytest.raises(NotYourQueue):
        workspace.item(session("agent", frozenset()), event_id)  # nothing granted
    care = session("agent", frozenset({"customer-service-fr"}))
    assert [i.event_id for i in workspace.queue(care, Filters())] == [event_id]
    assert workspace.item(care, event_id).event_id == event_id
