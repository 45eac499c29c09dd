"""The router's reply API and the CRM API, called with the signed-in agent's own key.

The workspace has no key of its own: what an agent does here, the router and the CRM see
done by the agent bound to the key the agent signed in with, under its scopes.
"""

from __future__ import annotations

from typing import Any

import httpx

from socialcrm.errors import DomainError


class UpstreamRefused(DomainError):
    """The router or the CRM refused the call (its status kept: 403, 404, 409, 429...)."""

    def __init__(self, service: str, status: int, detail: str) -> None:
        super().__init__(f"{service} answered {status}: {detail}")
        self.status_code = status if 400 <= status < 500 else 502
        self.detail = detail


class UpstreamUnavailable(DomainError):
    """The router or the CRM could not be reached or failed."""

    status_code = 503


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail[:300] if isinstance(detail, str) else response.reason_phrase


async def _call(
    http: httpx.AsyncClient, service: str, method: str, url: str, key: str, **kwargs: Any
) -> Any:
    try:
        response = await http.request(
            method, url, headers={"Authorization": f"Bearer {key}"}, **kwargs
        )
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"{service} unreachable ({type(exc).__name__})") from None
    if response.status_code >= 500:
        raise UpstreamUnavailable(f"{service} answered {response.status_code}")
    if response.status_code >= 400:
        raise UpstreamRefused(service, response.status_code, _detail(response))
    return response.json()


class RouterClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def reply(
        self, key: str, event_id: str, *, text: str, is_private: bool, status: str
    ) -> str:
        """Hand a reply to the router; the event id its Reply will carry."""
        body: dict[str, Any] = {"text": text, "is_private": is_private}
        if status:
            body["status"] = status
        url = f"{self.base_url}/v1/interactions/{event_id}/replies"
        accepted = await _call(self.http, "router", "POST", url, key, json=body)
        return str(accepted["reply_event_id"])

    async def set_status(self, key: str, event_id: str, status: str) -> str:
        url = f"{self.base_url}/v1/interactions/{event_id}/status"
        accepted = await _call(self.http, "router", "POST", url, key, json={"status": status})
        return str(accepted["reply_event_id"])

    async def agent_queues(self, key: str) -> frozenset[str]:
        """The queue or team names the key's agent may work (``*``: all), as the router
        applies them to replies (``GET /v1/agents/me``)."""
        me = await _call(self.http, "router", "GET", f"{self.base_url}/v1/agents/me", key)
        queues = me.get("queues") if isinstance(me, dict) else None
        if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            raise UpstreamUnavailable("router answered /v1/agents/me without a list of queues")
        return frozenset(queues)


class CrmClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")

    async def search(self, key: str, **query: str) -> list[dict[str, Any]]:
        found = await _call(
            self.http, "crm", "GET", f"{self.base_url}/v1/contacts", key, params=query
        )
        return list(found["contacts"])

    async def contact(self, key: str, contact_id: str, limit: int) -> dict[str, Any]:
        url = f"{self.base_url}/v1/contacts/{contact_id}"
        return dict(await _call(self.http, "crm", "GET", url, key, params={"limit": limit}))

    async def merge_suggestions(self, key: str, limit: int) -> list[dict[str, Any]]:
        url = f"{self.base_url}/v1/merge-suggestions"
        found = await _call(self.http, "crm", "GET", url, key, params={"limit": limit})
        return list(found["merge_suggestions"])
