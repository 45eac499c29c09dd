"""Agents answering part of the demo's queue through the router's reply API, in a thread.

Each interaction ingest accepted is planned by ``scenarios.plan_reply``: left unanswered,
or answered at a fraction of its SLA window. An agent opens it with
``GET /v1/interactions/{event_id}`` (its queue and SLA deadline), then replies with
``POST /v1/interactions/{event_id}/replies`` at the planned time, resolving some cases.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from socialcrm_devstack.scenarios import Agents, Phase, ReplyPlan, plan_reply, reply_due, reply_text


@dataclass
class AgentStats:
    """What the agents did; written by the desk's thread, read by the summary."""

    planned: int = 0
    never_tracked: int = 0
    replies: int = 0
    within_sla: int = 0
    late: int = 0
    resolved: int = 0
    failed: int = 0


@dataclass
class _Task:
    event_id: str
    sent_at: float
    plan: ReplyPlan
    looks_done: int = 0
    queue: str = ""
    deadline: float = 0.0


class AgentDesk:
    """Works planned replies in time order until ``stop``; one HTTP call at a time, so the
    agents never load the router more than a person clicking would."""

    def __init__(self, router_url: str, api_key: str, agents: Agents, seed: int | None) -> None:
        self.router_url = router_url
        self.api_key = api_key
        self.agents = agents
        self.random = random.Random(seed)
        self.stats = AgentStats()
        self._due: list[tuple[float, int, _Task]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-agents", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def take(self, event_ids: list[str], sent_at: float, phase: Phase) -> None:
        """Plan the interactions of one accepted webhook call, sent at ``sent_at``."""
        for event_id in event_ids:
            plan = plan_reply(self.agents, phase, self.random)
            if plan is None:
                continue
            task = _Task(event_id, sent_at, plan)
            self.stats.planned += 1
            self._schedule(sent_at + self.agents.first_look_after, task)

    def _schedule(self, at: float, task: _Task) -> None:
        with self._lock:
            heapq.heappush(self._due, (at, next(self._order), task))

    def _next_due(self) -> _Task | None:
        with self._lock:
            if self._due and self._due[0][0] <= time.time():
                return heapq.heappop(self._due)[2]
        return None

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.router_url, headers=headers, timeout=10) as http:
            while not self._stopping.is_set():
                task = self._next_due()
                if task is None:
                    self._stopping.wait(0.1)
                    continue
                try:
                    self._work(http, task)
                except httpx.HTTPError:
                    self.stats.failed += 1

    def _work(self, http: httpx.Client, task: _Task) -> None:
        if not task.queue:
            self._open(http, task)
        else:
            self._reply(http, task)

    def _open(self, http: httpx.Client, task: _Task) -> None:
        found = http.get(f"/v1/interactions/{task.event_id}")
        if found.status_code == 404:
            task.looks_done += 1
            if task.looks_done < self.agents.looks:
                self._schedule(time.time() + self.agents.next_look_after(task.looks_done), task)
            else:
                self.stats.never_tracked += 1
            return
        found.raise_for_status()
        state = found.json()
        task.queue = state["queue"]
        task.deadline = datetime.fromisoformat(state["sla_deadline"]).timestamp()
        self._schedule(reply_due(task.sent_at, task.deadline, task.plan), task)

    def _reply(self, http: httpx.Client, task: _Task) -> None:
        body: dict[str, str] = {"text": reply_text(task.queue, task.plan.resolves)}
        if task.plan.resolves:
            body["status"] = "resolved"
        sent_at = time.time()
        answer = http.post(f"/v1/interactions/{task.event_id}/replies", json=body)
        if answer.status_code != 202:
            self.stats.failed += 1
            return
        # Accepted by the router, which applies it in order with the conversation's other
        # events: the SLA outcome is the one of the moment the agent sent it.
        self.stats.replies += 1
        if sent_at <= task.deadline:
            self.stats.within_sla += 1
        else:
            self.stats.late += 1
        if task.plan.resolves:
            self.stats.resolved += 1
