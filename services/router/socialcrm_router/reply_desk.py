"""The API's side of replies: check what the owners published, hand the request to the
owner of the interaction's partition as an SLA command, and show the owners' view.

The API never changes SLA state itself: any replica answers, and only the partition's
owner applies the command, in order with everything else of the conversation. The view
holds open interactions only, none past its expiry; an agent acts only on the queues it may
work (permissions.py), within its rate and the interaction's (rate_limit.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from socialcrm import contract
from socialcrm.errors import DomainError
from socialcrm.kafka.producer import EventProducer
from socialcrm.state import ChangelogView
from socialcrm.v1 import common_pb2, routed_pb2
from socialcrm_router.erasures import ErasedAuthors
from socialcrm_router.expiry import Horizons, erased_since, is_erased_author, is_expired
from socialcrm_router.permissions import AgentQueues
from socialcrm_router.rate_limit import ReplyLimiter
from socialcrm_router.sla import is_open


class NotTracked(DomainError):
    """The router holds no open interaction with this event id."""

    status_code = 404


class Accepted(BaseModel):
    """A reply or status change handed to the interaction's owner (applied within a moment;
    its Reply on social.replies.v1 carries ``reply_event_id`` as its event id)."""

    reply_event_id: str
    interaction_event_id: str
    status: Literal["accepted"] = "accepted"


def view_keeps(held: bytes, horizons: Horizons, erasures: ErasedAuthors, now: float) -> bool:
    """What the API's view of the whole changelog holds: open interactions not expired. An
    erased author's tombstone, from whatever partition, is noted for the owners of this
    replica (erasures.py) and not held."""
    state = routed_pb2.InteractionSlaState.FromString(held)
    if is_erased_author(state):
        erasures.note(state.interaction_event_id, erased_since(state))
        return False
    return is_open(state) and not is_expired(state, horizons, now)


class ReplyDesk:
    def __init__(
        self,
        view: ChangelogView[bytes],
        producer: EventProducer,
        clock: Callable[[], datetime],
        horizons: Horizons,
        queues: AgentQueues,
        limiter: ReplyLimiter,
    ) -> None:
        self.view = view
        self.producer = producer
        self.clock = clock
        self.horizons = horizons
        self.queues = queues
        self.limiter = limiter

    def open_interaction(self, event_id: str) -> routed_pb2.InteractionSlaState:
        """The state the owner last published; NotTracked when unknown, closed or expired."""
        held = self.view.get(event_id)
        state = None if held is None else routed_pb2.InteractionSlaState.FromString(held)
        if (
            state is None
            or not is_open(state)
            or is_expired(state, self.horizons, self.clock().timestamp())
        ):
            raise NotTracked(
                f"no open interaction {event_id!r}: unknown, not needing a response,"
                " or already resolved"
            )
        return state

    async def request(
        self, event_id: str, *, text: str, agent_id: str, is_private: bool, status: str
    ) -> Accepted:
        """An agent's reply or status change; ``agent_id`` is the authenticated agent."""
        state = self.open_interaction(event_id)
        self.queues.check(agent_id, state.queue, state.team)
        self.limiter.take(agent_id, event_id)
        at = self.clock()
        command = routed_pb2.SlaCommand(
            header=common_pb2.EventHeader(
                event_id=str(uuid.uuid4()),
                channel=state.channel,
                external_id=state.external_id,
                occurred_at=contract.timestamp(at),
                ingested_at=contract.timestamp(at),
                schema_version=contract.SCHEMA_VERSION,
                producer="router-api",
            ),
            interaction_event_id=event_id,
            conversation_id=state.conversation_id,
            reply=routed_pb2.ReplyCommand(
                agent_id=agent_id, text=text, is_private=is_private, status=status
            ),
        )
        await self.producer.publish_and_wait(command)
        return Accepted(reply_event_id=command.header.event_id, interaction_event_id=event_id)
