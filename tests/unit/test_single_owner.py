"""The single-owner assignor: every partition to one member, the former owner first."""

from __future__ import annotations

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from socialcrm.kafka.single_owner import OWNER_USER_DATA, SingleOwnerAssignor, choose_owner

TOPICS = {"social.routed.v1": {0, 1, 2}, "social.replies.v1": {0, 1}}


class Cluster(ClusterMetadata):  # type: ignore[misc]
    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return TOPICS.get(topic)


def test_the_former_owner_keeps_everything_else_the_first_member() -> None:
    assert choose_owner({"b": b"", "a": b""}) == "a"
    assert choose_owner({"a": b"", "b": OWNER_USER_DATA}) == "b"


def test_one_member_gets_every_partition_of_every_topic_the_others_none() -> None:
    assignor = SingleOwnerAssignor()
    members = {member: assignor.metadata(sorted(TOPICS)) for member in ("kpi-2", "kpi-1", "kpi-3")}
    assignments = assignor.assign(Cluster(), members)
    owned = {m: sorted(a.partitions()) for m, a in assignments.items() if a.partitions()}
    assert list(owned) == ["kpi-1"]
    assert len(owned["kpi-1"]) == 5


def test_a_member_says_in_its_metadata_whether_it_owns_the_partitions() -> None:
    assignor = SingleOwnerAssignor()
    assert assignor.metadata(["t"]).user_data == b""
    assignor.on_assignment(ConsumerProtocolMemberAssignment(0, [("t", [0])], b""))
    assert assignor.metadata(["t"]).user_data == OWNER_USER_DATA
    standby = ConsumerProtocolMemberMetadata(0, ["social.routed.v1"], b"")
    assignments = assignor.assign(
        Cluster(), {"a": standby, "z": assignor.metadata(["social.routed.v1"])}
    )
    assert assignments["a"].partitions() == []
    assert len(assignments["z"].partitions()) == 3
    assignor.on_assignment(ConsumerProtocolMemberAssignment(0, [], b""))
    assert assignor.metadata(["t"]).user_data == b""
