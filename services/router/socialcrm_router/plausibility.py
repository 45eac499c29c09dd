"""What the owner checks of the commands and replies it reads (pure logic).

Anyone who can write to ``router.sla-commands.v1`` or ``social.replies.v1`` can claim any
agent and any time. The owner checks what it can: a reply command names an agent some API
key is bound to, and its time is neither in the future (beyond a small clock skew) nor
before the interaction; such a command is a bad record, dead-lettered with its reason.
A time that passes these checks but is earlier than a level the owner already fired while
it had read its inputs to the end cannot be true (the reply would have been read before
the level fired): the SLA outcome then counts from the moment the owner applies the reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm import contract
from socialcrm.v1 import routed_pb2

UNKNOWN_AGENT = "unknown_agent"
IMPLAUSIBLE_TIME = "implausible_time"


def _at(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


@dataclass(frozen=True)
class Plausibility:
    agents: frozenset[str]  # the agents bound to the API keys (API_KEYS)
    skew: timedelta  # the clock difference tolerated between replicas and tools

    def check_reply_command(
        self,
        command: routed_pb2.SlaCommand,
        state: routed_pb2.InteractionSlaState | None,
        now: datetime,
    ) -> None:
        """Raise ``ContractError`` (dead-lettered with its reason) for a reply command no
        API could have published."""
        agent = command.reply.agent_id
        if agent not in self.agents:
            raise contract.ContractError(
                UNKNOWN_AGENT, f"reply command for agent {agent!r}, whom no API key is bound to"
            )
        if not command.header.HasField("occurred_at"):
            raise contract.ContractError(IMPLAUSIBLE_TIME, "reply command without a time")
        at = _at(command.header.occurred_at)
        if at > now + self.skew:
            ahead = (at - now).total_seconds()
            raise contract.ContractError(
                IMPLAUSIBLE_TIME,
                f"reply command dated {ahead:.0f} s in the future (skew allowed: "
                f"{self.skew.total_seconds():.0f} s)",
            )
        if self._before_interaction(state, at):
            raise contract.ContractError(
                IMPLAUSIBLE_TIME, "reply command dated before the interaction it answers"
            )

    def _before_interaction(
        self, state: routed_pb2.InteractionSlaState | None, at: datetime
    ) -> bool:
        return (
            state is not None
            and state.HasField("occurred_at")
            and at < _at(state.occurred_at) - self.skew
        )

    def reply_time(
        self, state: routed_pb2.InteractionSlaState, stated: datetime, now: datetime
    ) -> datetime:
        """When a reply counts as made: the time it states when plausible, else ``now``."""
        if stated > now + self.skew or self._before_interaction(state, stated):
            return now
        fired = [
            _at(ts)
            for level, ts in ((1, state.sla_deadline), (2, state.second_level_at))
            if state.escalation_level >= level
        ]
        if any(stated < at - self.skew for at in fired):
            return now
        return stated
