"""A partition assignor that gives every partition to one member: one active owner,
the other members hot standbys.

For stream processors whose state needs a global view (e.g. KPIs comparing brands
across partitions): the active member holds all partitions of the subscribed topics,
the others hold none and take over at the next rebalance after the owner left or died
(within the consumer's ``session_timeout_ms``). The member that owned the partitions
before keeps them when it is still in the group (it says so in its subscription's user
data), so that a standby joining or leaving does not move the state; otherwise the
first member by id becomes the owner. Pass an instance per consumer:
``AIOKafkaConsumer(..., partition_assignment_strategy=(SingleOwnerAssignor(),))``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)

OWNER_USER_DATA = b"owner"


def choose_owner(members: Mapping[str, bytes]) -> str:
    """The member to own every partition, given each member's user data."""
    previous = sorted(member for member, data in members.items() if data == OWNER_USER_DATA)
    return previous[0] if previous else min(members)


class SingleOwnerAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """Assigns all partitions of the group's topics to one member (see the module)."""

    name = "single-owner"
    version = 0

    def __init__(self) -> None:
        self.owner = False

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(
            self.version, sorted(topics), OWNER_USER_DATA if self.owner else b""
        )

    def assign(
        self, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        owner = choose_owner({member: meta.user_data for member, meta in members.items()})
        assignment: list[tuple[str, list[int]]] = []
        for topic in sorted(members[owner].subscription):
            partitions = cluster.partitions_for_topic(topic)
            if partitions is None:
                log.warning("no partition metadata for topic", extra={"topic": topic})
                continue
            assignment.append((topic, sorted(partitions)))
        log.info("single owner chosen", extra={"owner": owner, "members": len(members)})
        return {
            member: ConsumerProtocolMemberAssignment(
                self.version, assignment if member == owner else [], b""
            )
            for member in members
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        self.owner = bool(assignment.partitions())
