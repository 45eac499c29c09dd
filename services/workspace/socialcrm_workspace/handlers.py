"""What each page and form of the workspace does, given the view and the two APIs.

The view (view.py) answers the lists; the conversation page adds the customer from the
CRM; replies and status changes go to the router with the agent's key. Nothing here
changes the view: the Reply the router's owner publishes on ``social.replies.v1`` does,
for every replica and every agent alike.

An agent sees and acts on the items of the queues it may work only, as the router says at
sign-in (``queues_of``): the router's ``ROUTER_AGENT_QUEUES`` is the one source, and a
router that cannot say fails the sign-in rather than showing everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from socialcrm.errors import DomainError
from socialcrm_workspace.clients import UpstreamRefused, UpstreamUnavailable
from socialcrm_workspace.sessions import Session
from socialcrm_workspace.view import Filters, Item, OpenView, visible

Status = Literal["pending", "resolved", "open"]
STATUSES: tuple[Status, ...] = ("pending", "resolved", "open")
REPLY_TEXT_MAX_LENGTH = 10_000
# Merge suggestions read to find a contact's (the CRM lists them newest first).
SUGGESTIONS_READ = 200


class NotInWorkspace(DomainError):
    status_code = 404


class ReadOnly(DomainError):
    """The key lacks the ``agent`` scope: it may read, never act."""

    status_code = 403


class InvalidForm(DomainError):
    status_code = 422


class NotYourQueue(DomainError):
    """The item is in a queue the agent may not work (the router would refuse its reply)."""

    status_code = 403


class QueuesUnknown(DomainError):
    """The router could not say which queues the key's agent may work: no sign-in."""

    status_code = 503


class RouterApi(Protocol):
    async def reply(
        self, key: str, event_id: str, *, text: str, is_private: bool, status: str
    ) -> str: ...

    async def set_status(self, key: str, event_id: str, status: str) -> str: ...

    async def agent_queues(self, key: str) -> frozenset[str]: ...


class CrmApi(Protocol):
    async def search(self, key: str, **query: str) -> list[dict[str, Any]]: ...

    async def contact(self, key: str, contact_id: str, limit: int) -> dict[str, Any]: ...

    async def merge_suggestions(self, key: str, limit: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Customer:
    """The customer behind an item, as the CRM knows them (``contact`` None: not yet)."""

    contact: dict[str, Any] | None = None
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    unavailable: bool = False


@dataclass(frozen=True)
class Conversation:
    item: Item
    thread: list[Item]
    customer: Customer
    previous_id: str | None
    next_id: str | None


def identity_keys(item: Item) -> set[str]:
    """The CRM identity keys the author of ``item`` may be known by (crm-sink's README,
    identity resolution): the handle or the stable id on the channel, the address of an
    email's sender."""
    keys = set()
    if item.author_handle:
        keys.add(f"{item.channel}:{item.author_handle.strip().lstrip('@').lower()}")
    if item.author_user_id:
        keys.add(f"{item.channel}:{item.author_user_id.strip()}")
    if item.channel == "email" and item.author_handle:
        address = item.author_handle.strip().lower()
        keys |= {f"email:{address}", f"unverified_email:{address}"}
    return keys


def searches(item: Item) -> list[dict[str, str]]:
    """The CRM searches that can find the author of ``item``, most specific first."""
    found = []
    if item.channel == "email" and item.author_handle:
        found.append({"email": item.author_handle.strip()})
    elif item.author_handle:
        found.append({"handle": item.author_handle.strip()})
    if item.author_user_id:
        found.append({"handle": item.author_user_id.strip()})
    return found


class Workspace:
    def __init__(self, view: OpenView, router: RouterApi, crm: CrmApi, timeline_limit: int) -> None:
        self.view = view
        self.router = router
        self.crm = crm
        self.timeline_limit = timeline_limit

    async def queues_of(self, key: str) -> frozenset[str]:
        """The queues the key's agent may work, from the router; QueuesUnknown when the
        router cannot say (fail closed: no session rather than every queue)."""
        try:
            return await self.router.agent_queues(key)
        except (UpstreamUnavailable, UpstreamRefused) as exc:
            raise QueuesUnknown(f"the router could not say which queues you work ({exc})") from None

    def queue(self, session: Session, filters: Filters) -> list[Item]:
        return self.view.queue(filters, session.queues)

    def choices(self, session: Session) -> dict[str, list[str]]:
        return self.view.choices(session.queues)

    def item(self, session: Session, event_id: str) -> Item:
        found = self.view.get(event_id)
        if found is None:
            raise NotInWorkspace(f"no interaction {event_id} in the workspace")
        if not visible(found, session.queues):
            raise NotYourQueue(f"interaction {event_id} is in a queue you may not work")
        return found

    async def conversation(self, session: Session, event_id: str, filters: Filters) -> Conversation:
        item = self.item(session, event_id)
        order = [i.event_id for i in self.queue(session, filters)]
        previous_id = next_id = None
        if event_id in order:
            at = order.index(event_id)
            previous_id = order[at - 1] if at > 0 else None
            next_id = order[at + 1] if at + 1 < len(order) else None
        return Conversation(
            item=item,
            thread=self.view.conversation(item.conversation_id, session.queues),
            customer=await self.customer(session.api_key, item),
            previous_id=previous_id,
            next_id=next_id,
        )

    async def customer(self, key: str, item: Item) -> Customer:
        """The author's contact with its timeline across channels, and the merges the CRM
        suggests for it; a CRM that cannot answer leaves the rest of the page working."""
        wanted = identity_keys(item)
        try:
            for query in searches(item):
                for contact in await self.crm.search(key, **query):
                    held = {i.get("key") for i in contact.get("identities", ())}
                    if held & wanted:
                        return await self._contact(key, str(contact["id"]))
        except UpstreamUnavailable:
            return Customer(unavailable=True)
        return Customer()

    async def _contact(self, key: str, contact_id: str) -> Customer:
        contact = await self.crm.contact(key, contact_id, self.timeline_limit)
        live_id = str(contact.get("id", contact_id))
        suggestions = [
            s
            for s in await self.crm.merge_suggestions(key, SUGGESTIONS_READ)
            if live_id in s.get("contact_ids", ())
        ]
        return Customer(contact=contact, suggestions=suggestions)

    async def reply(
        self, session: Session, event_id: str, *, text: str, is_private: bool, status: str
    ) -> str:
        self._may_act(session)
        text = text.strip()
        if not text:
            raise InvalidForm("the reply is empty")
        if len(text) > REPLY_TEXT_MAX_LENGTH:
            raise InvalidForm(f"the reply is longer than {REPLY_TEXT_MAX_LENGTH} characters")
        if status and status not in STATUSES:
            raise InvalidForm(f"status must be one of {', '.join(STATUSES)}")
        self.item(session, event_id)
        return await self.router.reply(
            session.api_key, event_id, text=text, is_private=is_private, status=status
        )

    async def set_status(self, session: Session, event_id: str, status: str) -> str:
        self._may_act(session)
        if status not in STATUSES:
            raise InvalidForm(f"status must be one of {', '.join(STATUSES)}")
        self.item(session, event_id)
        return await self.router.set_status(session.api_key, event_id, status)

    @staticmethod
    def _may_act(session: Session) -> None:
        if not session.can("agent"):
            raise ReadOnly("this API key may read only: replies and status changes need 'agent'")
