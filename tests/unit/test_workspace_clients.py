"""The workspace's router client without a network (httpx's MockTransport): the queues of
the signed-in key, asked with that key, and what the workspace does with a bad answer."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from socialcrm_workspace.clients import RouterClient, UpstreamRefused, UpstreamUnavailable


def client_answering(status: int, body: Any, seen: list[httpx.Request]) -> RouterClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=1.0)
    return RouterClient(http, "http://router.test/")


def test_the_queues_are_asked_with_the_agents_key() -> None:
    seen: list[httpx.Request] = []
    router = client_answering(200, {"agent_id": "marie", "queues": ["care", "care-fr"]}, seen)
    assert asyncio.run(router.agent_queues("key-of-marie")) == {"care", "care-fr"}
    assert [(r.method, str(r.url)) for r in seen] == [("GET", "http://router.test/v1/agents/me")]
    assert seen[0].headers["authorization"] == "Bearer key-of-marie"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"agent_id": "marie"}, UpstreamUnavailable),
        (200, {"queues": "care"}, UpstreamUnavailable),
        (200, {"queues": [1]}, UpstreamUnavailable),
        (401, {"detail": "unknown API key"}, UpstreamRefused),
        (503, {"detail": "starting"}, UpstreamUnavailable),
    ],
)
def test_an_answer_without_a_list_of_queues_is_no_answer(
    status: int, body: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        asyncio.run(client_answering(status, body, []).agent_queues("k"))
