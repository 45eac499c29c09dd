"""The reply API's doors (no I/O): queue permissions per agent (and what an agent is told
it may work), rate limits per agent and per interaction with a fake clock, and the start-up
check of co-partitioning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from socialcrm.auth import ApiKeys
from socialcrm.settings import ServiceSettings
from socialcrm_router.api import api
from socialcrm_router.copartition import CoPartitioned, NotCoPartitioned, copartition_problem
from socialcrm_router.permissions import AgentQueues, InvalidAgentQueues, QueueForbidden
from socialcrm_router.rate_limit import Rate, ReplyLimiter, TooManyReplies
from socialcrm_router.reply_desk import ReplyDesk

ENRICHED, COMMANDS, REPLIES = "social.enriched.v1", "router.sla-commands.v1", "social.replies.v1"


def test_without_the_setting_every_agent_works_every_queue() -> None:
    queues = AgentQueues.parse("")
    assert queues.allows("anyone", "billing", "billing")


def test_an_agent_works_only_the_queues_or_teams_it_is_given() -> None:
    queues = AgentQueues.parse("agent-1=care-fr, care-en; agent-2=*; agent-3=billing")
    assert queues.allows("agent-1", "care-fr", "customer-service")
    assert not queues.allows("agent-1", "billing", "billing")
    assert queues.allows("agent-2", "billing", "billing")
    assert queues.allows("agent-3", "billing-night", "billing")  # by its team
    assert not queues.allows("stranger", "care-fr", "customer-service")
    with pytest.raises(QueueForbidden, match="'billing'") as refused:
        queues.check("agent-1", "billing", "billing")
    assert refused.value.status_code == 403


def test_a_star_entry_applies_to_agents_without_their_own() -> None:
    queues = AgentQueues.parse("*=care-fr;lead=*")
    assert queues.allows("anyone", "care-fr", "customer-service")
    assert not queues.allows("anyone", "billing", "billing")
    assert queues.allows("lead", "billing", "billing")


def test_an_agent_is_told_the_queues_it_may_work() -> None:
    assert AgentQueues.parse("").queues_of("anyone") == ["*"]
    queues = AgentQueues.parse("agent-1=care-fr, care-en, billing; agent-2=care-fr,*; *=press")
    assert queues.queues_of("agent-1") == ["billing", "care-en", "care-fr"]
    assert queues.queues_of("agent-2") == ["*"]
    assert queues.queues_of("stranger") == ["press"]  # the "*" entry
    assert AgentQueues.parse("agent-1=care-fr").queues_of("stranger") == []


def test_agents_me_answers_the_keys_agent_and_its_queues() -> None:
    agent_key, read_key = "agent-key-0123456789", "read-key-0123456789"
    keys = ApiKeys.parse(f"{agent_key}=agent:agent-1;{read_key}=read:viewer")
    queues = AgentQueues.parse("agent-1=care-fr,care-en")
    # Only the permissions are used by this route: the rest of the desk stays unset.
    desk = ReplyDesk(
        cast(Any, {}),
        cast(Any, None),
        lambda: datetime.now(UTC),
        cast(Any, None),
        queues,
        cast(Any, None),
    )
    app = FastAPI()
    app.include_router(api(desk, cast(Any, None), keys))
    client = TestClient(app)
    me = client.get("/v1/agents/me", headers={"Authorization": f"Bearer {agent_key}"})
    assert me.status_code == 200
    assert me.json() == {"agent_id": "agent-1", "queues": ["care-en", "care-fr"]}
    viewer = client.get("/v1/agents/me", headers={"X-API-Key": read_key})
    assert viewer.json() == {"agent_id": "viewer", "queues": []}
    assert client.get("/v1/agents/me").status_code == 401


@pytest.mark.parametrize("spec", ["agent-1", "agent-1=", "=care-fr", "a=x;a=y"])
def test_a_malformed_setting_is_refused_naming_the_entry(spec: str) -> None:
    with pytest.raises(InvalidAgentQueues, match="ROUTER_AGENT_QUEUES entry"):
        AgentQueues.parse(spec)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_replies_to_one_interaction_are_limited_with_a_retry_after() -> None:
    """Issue 25 (low): 300 replies to one interaction in 5.8 s went through."""
    clock = Clock()
    limiter = ReplyLimiter(Rate(20, 200), Rate(6 / 60, 10), clock)
    for _ in range(10):
        limiter.take("agent-1", "interaction-1")
    with pytest.raises(TooManyReplies) as refused:
        limiter.take("agent-1", "interaction-1")
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "10"}
    limiter.take("agent-1", "interaction-2")  # another interaction is not held back
    clock.now += 10
    limiter.take("agent-1", "interaction-1")


def test_an_agent_is_limited_over_all_interactions() -> None:
    clock = Clock()
    limiter = ReplyLimiter(Rate(2, 5), Rate(1, 10), clock)
    for n in range(5):
        limiter.take("agent-1", f"interaction-{n}")
    with pytest.raises(TooManyReplies, match="agent 'agent-1'") as refused:
        limiter.take("agent-1", "interaction-9")
    assert refused.value.headers == {"Retry-After": "1"}
    limiter.take("agent-2", "interaction-9")
    clock.now += 0.5
    limiter.take("agent-1", "interaction-9")
    # The refused request took nothing: two tokens taken, half a second refilled.
    assert limiter.interactions.tokens("interaction-9", clock.now) == 8.5


def test_full_buckets_are_swept_so_memory_follows_active_callers() -> None:
    clock = Clock()
    limiter = ReplyLimiter(Rate(1000, 1000), Rate(1, 2), clock)
    for n in range(10_001):
        limiter.take("agent-1", f"interaction-{n}")
        clock.now += 0.01
    assert len(limiter.interactions) < 10_001


def test_the_agents_a_command_may_name_are_those_of_the_api_keys() -> None:
    keys = ApiKeys.parse("k3y-for-agent-1=agent:agent-1;k3y-for-reader=read:reader-1")
    assert keys.agent_ids("agent") == frozenset({"agent-1"})


def test_co_partitioned_inputs_pass_and_others_are_named() -> None:
    assert copartition_problem({ENRICHED: 6, COMMANDS: 6, REPLIES: 6}, ENRICHED) is None
    problem = copartition_problem({ENRICHED: 6, COMMANDS: 3, REPLIES: 6}, ENRICHED)
    assert problem is not None
    assert "router.sla-commands.v1 has 3" in problem
    assert "social.enriched.v1 (6 partitions)" in problem


def test_the_router_refuses_to_start_unless_its_inputs_are_co_partitioned() -> None:
    """Issue 23, item 8: nothing checked it."""
    counts = {ENRICHED: 6, COMMANDS: 6, REPLIES: 12}

    async def partitions_of(_: ServiceSettings, topic: str) -> int:
        return counts[topic]

    step = CoPartitioned(ServiceSettings(), ENRICHED, [COMMANDS, REPLIES], partitions_of)
    with pytest.raises(NotCoPartitioned, match=r"social\.replies\.v1 has 12"):
        asyncio.run(step.start())
    counts[REPLIES] = 6
    asyncio.run(step.start())
