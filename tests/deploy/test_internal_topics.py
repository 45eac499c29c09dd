"""The deployment names the internal topics as the contract does (socialcrm.contract)."""

from __future__ import annotations

from socialcrm import contract
from tests.deploy.tools import kafka_acls


def test_each_internal_topic_is_written_and_created_by_its_owner_only() -> None:
    topic_acls = [acl for acl in kafka_acls() if acl.resource == "topic"]
    for topic in contract.INTERNAL_TOPICS:
        writers = {a.user for a in topic_acls if a.name == topic.name and "Write" in a.operations}
        creators = {a.user for a in topic_acls if a.name == topic.name and "Create" in a.operations}
        assert writers == {topic.owner}, topic.name
        assert creators == {topic.owner}, topic.name


def test_the_acls_name_no_topic_the_contract_does_not_know() -> None:
    known = {*contract.all_topics(), *(topic.name for topic in contract.INTERNAL_TOPICS), "*"}
    named = {acl.name for acl in kafka_acls() if acl.resource == "topic"}
    assert named <= known, named - known
