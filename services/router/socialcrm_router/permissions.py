"""Which queues (or teams) each agent may work through the reply API (pure logic).

``ROUTER_AGENT_QUEUES``: entries ``<agent id>=<name>,<name>...`` separated by ``;``, where a
name is a queue or a team, and ``*`` all of them; an entry for the agent ``*`` applies to
agents without an entry of their own. Empty (the default): every agent works every queue,
as before the setting existed. Once set, an agent with no entry (and no ``*`` entry) may
work no queue.
"""

from __future__ import annotations

from collections.abc import Mapping

from socialcrm.errors import DomainError

ANY = "*"
ENTRY_FORMAT = "<agent id>=<queue or team>,...;..."


class InvalidAgentQueues(ValueError):
    """A malformed ``ROUTER_AGENT_QUEUES`` setting, naming the entry."""


class QueueForbidden(DomainError):
    """The agent's key may not work the interaction's queue."""

    status_code = 403


class AgentQueues:
    def __init__(self, grants: Mapping[str, frozenset[str]] | None) -> None:
        """``grants``: the names each agent may work; None: everyone works everything."""
        self.grants = grants

    @classmethod
    def parse(cls, spec: str) -> AgentQueues:
        entries = [part.strip() for part in spec.split(";") if part.strip()]
        if not entries:
            return cls(None)
        grants: dict[str, frozenset[str]] = {}
        for position, entry in enumerate(entries, start=1):
            agent, sep, names = entry.partition("=")
            agent = agent.strip()
            allowed = frozenset(n.strip() for n in names.split(",") if n.strip())
            if not sep or not agent or not allowed:
                raise InvalidAgentQueues(
                    f"ROUTER_AGENT_QUEUES entry {position}: expected {ENTRY_FORMAT}"
                )
            if agent in grants:
                raise InvalidAgentQueues(
                    f"ROUTER_AGENT_QUEUES entry {position}: agent {agent!r} appears twice"
                )
            grants[agent] = allowed
        return cls(grants)

    def _granted(self, agent_id: str) -> frozenset[str]:
        """The names ``agent_id`` may work (``{"*"}``: all of them)."""
        if self.grants is None:
            return frozenset({ANY})
        return self.grants.get(agent_id, self.grants.get(ANY, frozenset()))

    def allows(self, agent_id: str, queue: str, team: str) -> bool:
        return bool({ANY, queue, team} & self._granted(agent_id))

    def queues_of(self, agent_id: str) -> list[str]:
        """The queue or team names ``agent_id`` may work, sorted: ``["*"]`` for all of
        them, ``[]`` for none. What the workspace lists for the agent (GET /v1/agents/me)."""
        allowed = self._granted(agent_id)
        return [ANY] if ANY in allowed else sorted(allowed)

    def check(self, agent_id: str, queue: str, team: str) -> None:
        if not self.allows(agent_id, queue, team):
            raise QueueForbidden(
                f"agent {agent_id!r} may not work queue {queue!r} (team {team!r}): "
                "see ROUTER_AGENT_QUEUES"
            )
