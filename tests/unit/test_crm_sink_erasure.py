"""crm-sink's erase commands name the erased person's network accounts as the router names
the authors it holds, so that the router forgets a message of theirs in flight even with no
state of the interactions erased (issue 25, finding 6). No I/O: a fake producer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from google.protobuf.message import Message

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2, routed_pb2
from socialcrm_crm_sink.erasure_publisher import ErasurePublisher
from socialcrm_crm_sink.gdpr import Erased
from socialcrm_crm_sink.identities import (
    IdentityKind,
    author_identity,
    erased_author_keys,
    manual_identity,
    strong_identity,
)
from tests.fixtures import events


class FakeProducer:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, message: Message) -> asyncio.Future[object]:
        self.published.append(message)
        return self._done()

    async def send_record(
        self, topic: str, value: bytes | None, **_: Any
    ) -> asyncio.Future[object]:
        return self._done()

    def _done(self) -> asyncio.Future[object]:
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def by(
    channel: common_pb2.Channel.ValueType, handle: str, user_id: str = "", *, verified: bool = True
) -> interaction_pb2.Interaction:
    author = common_pb2.Author(handle=handle, channel_user_id=user_id, verified=verified)
    return events.interaction(channel=channel, author=author)


def routers_key(item: interaction_pb2.Interaction) -> str | None:
    """What the router derives from its state of ``item`` (sla_state_for's author fields)."""
    author = item.author
    return contract.author_key(item.header.channel, author.channel_user_id, author.handle)


def test_every_erase_command_names_every_network_account_of_the_contact() -> None:
    items = [
        by(common_pb2.CHANNEL_X, "Sophie_B", "1234567890"),
        by(common_pb2.CHANNEL_YOUTUBE, "Sophie B.", "UCaBcDeF"),
        by(common_pb2.CHANNEL_CHAT, "sophie@example.com"),
        by(common_pb2.CHANNEL_EMAIL, "sophie@example.org", verified=False),
        by(common_pb2.CHANNEL_FACEBOOK, "", "fb-42"),
    ]
    identities = [author_identity(item) for item in items]
    # Keys of the person that name no network account add nothing.
    identities += [
        strong_identity(IdentityKind.PHONE, "+33612345678"),
        strong_identity(IdentityKind.CUSTOMER_NUMBER, "123456"),
    ]
    keys = erased_author_keys(identities)
    expected = {routers_key(item) for item in items}
    assert None not in expected
    assert expected <= set(keys)
    # A display name on a review or video channel is anyone's: never a key.
    assert contract.author_key(common_pb2.CHANNEL_YOUTUBE, "", "Sophie B.") not in keys
    assert all(contract.is_author_key(key) for key in keys)
    # An account linked by hand is named by its handle, as the router names an author
    # the network gives no stable id for.
    manual = manual_identity("x", "@Paul")
    assert manual is not None
    assert erased_author_keys([manual]) == [contract.author_key(common_pb2.CHANNEL_X, "", "paul")]

    producer = FakeProducer()
    publisher = ErasurePublisher(cast(Any, None), cast(Any, producer))
    plan = Erased(["contact-1"], [], [("event-1", "conv-1"), ("event-2", "conv-2")], keys)
    assert asyncio.run(publisher.forget(plan)) == 3
    commands = [m for m in producer.published if isinstance(m, routed_pb2.SlaCommand)]
    assert [c.interaction_event_id for c in commands] == ["event-1", "event-2"]
    for command in commands:
        assert command.WhichOneof("command") == "erase"
        assert set(command.erase.author_keys) == set(keys)
        decoded = contract.decode(routed_pb2.SlaCommand, contract.encode(command))
        assert list(decoded.erase.author_keys) == keys
