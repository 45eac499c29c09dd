"""The shared partition-owned state store and its read-only view, on the real broker:
restores, partitions given back, fenced writes of a former owner."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from socialcrm.kafka.producer import EventProducer
from socialcrm.settings import ServiceSettings
from socialcrm.state import ChangelogView, Codec, PartitionedStore
from socialcrm.state.fencing import Writer
from tests.conftest import Infra
from tests.fixtures.waiting import eventually_async

pytestmark = pytest.mark.integration

TEXT = Codec[str](encode=str.encode, decode=bytes.decode)


def revision_of(value: str) -> int:
    return int(value.split("@")[1])


def strictly_newer(held: str | None, new: str) -> bool:
    return held is None or revision_of(new) > revision_of(held)


async def input_topic(infra: Infra, partitions: int) -> str:
    topic = f"state-input-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


def store_of(
    settings: ServiceSettings, producer: EventProducer, topic: str, changelog: str
) -> PartitionedStore[str]:
    return PartitionedStore(
        name=f"it-{changelog}",
        settings=settings,
        producer=producer,
        topic=changelog,
        input_topic=topic,
        codec=TEXT,
        accept=strictly_newer,
    )


async def test_a_partition_comes_back_from_its_changelog_and_only_its_own(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    topic = await input_topic(infra, partitions=3)
    changelog = f"{topic}-changelog"
    producer = EventProducer(settings)
    await producer.start()
    try:
        writer = store_of(settings, producer, topic, changelog)
        await writer.start()
        await writer.assign({0, 1})
        writer.put(0, "a", "open@1")
        writer.put(0, "a", "escalated@2")  # written once: the batch's last value
        writer.put(1, "b", "open@1")
        writer.put(1, "gone", "open@1")
        writer.put(1, "gone", None)
        await writer.flush()
        # A record older than what the changelog holds, from a replica that lagged behind.
        await (await producer.send_record(changelog, b"open@1", key=b"a", partition=0))

        reader = store_of(settings, producer, topic, changelog)
        await reader.start()
        await reader.assign({0})
        assert reader.owned == frozenset({0})
        assert dict(reader.items(0)) == {"a": "escalated@2"}  # strictly newer revisions only
        await reader.assign({0, 1})
        assert dict(reader.items(1)) == {"b": "open@1"}

        # Revoked then given back: only what was written since is read.
        reader.revoke({0, 1})
        writer.put(1, "c", "open@1")
        await writer.flush()
        await reader.assign({1})
        assert reader.owned == frozenset({1})
        assert dict(reader.items(1)) == {"b": "open@1", "c": "open@1"}

        # Lost (outputs not acknowledged): unflushed writes go, the changelog comes back.
        reader.put(1, "b", "dirty@9")
        reader.lose({1})
        await reader.assign({1})
        assert dict(reader.items(1)) == {"b": "open@1", "c": "open@1"}
    finally:
        await producer.stop()


async def test_the_view_follows_every_partition_and_tombstones(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    topic = await input_topic(infra, partitions=2)
    changelog = f"{topic}-changelog"
    producer = EventProducer(settings)
    await producer.start()
    view = ChangelogView(
        name=f"it-view-{changelog}",
        settings=settings,
        topic=changelog,
        input_topic=topic,
        codec=TEXT,
    )
    try:
        store = store_of(settings, producer, topic, changelog)
        await store.start()
        await store.assign({0, 1})
        store.put(0, "x", "open@1")
        await store.flush()
        await view.start()
        assert view.get("x") == "open@1"
        store.put(1, "y", "open@1")
        store.put(0, "x", None)
        await store.flush()

        async def followed() -> bool | None:
            return True if view.get("y") == "open@1" and view.get("x") is None else None

        await eventually_async(followed)
    finally:
        await view.stop()
        await producer.stop()


def fenced_store(
    settings: ServiceSettings, producer: EventProducer, topic: str, changelog: str, member: str
) -> tuple[PartitionedStore[str], list[int]]:
    """A fenced store and its writer's generation (a one-item list the test moves on)."""
    generation = [1]
    store = store_of(settings, producer, topic, changelog)
    store.writer = lambda: Writer(generation[0], member)
    return store, generation


async def test_assign_owns_exactly_the_partitions_given(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    topic = await input_topic(infra, partitions=2)
    changelog = f"{topic}-changelog"
    producer = EventProducer(settings)
    await producer.start()
    try:
        store = store_of(settings, producer, topic, changelog)
        other = store_of(settings, producer, topic, changelog)
        await store.start()
        await store.assign({0, 1})
        store.put(0, "a", "open@1")
        await store.flush()
        # A restore that raced a revocation: partition 0 is not given any more.
        await store.assign({1})
        assert store.owned == frozenset({1})
        await other.assign({0})
        other.put(0, "a", "answered@2")
        await other.flush()
        # Given back later: restored, not the stale copy.
        await store.assign({0, 1})
        assert dict(store.items(0)) == {"a": "answered@2"}
    finally:
        await producer.stop()


async def test_a_former_owners_late_writes_never_win(infra: Infra) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    topic = await input_topic(infra, partitions=1)
    changelog = f"{topic}-changelog"
    producer = EventProducer(settings)
    await producer.start()
    view = ChangelogView(
        name=f"it-view-{changelog}",
        settings=settings,
        topic=changelog,
        input_topic=topic,
        codec=TEXT,
    )
    try:
        zombie, _ = fenced_store(settings, producer, topic, changelog, "zombie")
        await zombie.start()
        await zombie.assign({0})
        zombie.put(0, "a", "open@1")
        await zombie.flush()
        # The zombie is paused past its session; the partition moves to a new owner.
        owner, owner_generation = fenced_store(settings, producer, topic, changelog, "owner")
        owner_generation[0] = 2
        await owner.assign({0})
        assert dict(owner.items(0)) == {"a": "open@1"}
        owner.put(0, "a", "answered@1")  # the same revision as the zombie's next write
        await owner.flush()
        # The zombie wakes up and writes what it did meanwhile, newer by its revisions.
        zombie.put(0, "a", "escalated@3")
        zombie.put(0, "z", "open@1")
        await zombie.flush()

        reader, reader_generation = fenced_store(settings, producer, topic, changelog, "reader")
        reader_generation[0] = 3
        await reader.assign({0})
        assert dict(reader.items(0)) == {"a": "answered@1"}
        await view.start()
        assert view.get("a") == "answered@1"
        assert view.get("z") is None
    finally:
        await view.stop()
        await producer.stop()


async def test_a_partition_given_back_reads_what_another_member_wrote_meanwhile(
    infra: Infra,
) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    topic = await input_topic(infra, partitions=1)
    changelog = f"{topic}-changelog"
    producer = EventProducer(settings)
    await producer.start()
    try:
        first, first_generation = fenced_store(settings, producer, topic, changelog, "first")
        await first.start()
        await first.assign({0})
        first.put(0, "a", "open@1")
        first.put(0, "gone", "open@1")
        await first.flush()
        first.revoke({0})  # kept aside: most rebalances give it back

        second, second_generation = fenced_store(settings, producer, topic, changelog, "second")
        second_generation[0] = 2
        await second.assign({0})
        second.put(0, "a", "answered@1")  # equal revisions from two writers
        second.put(0, "b", "open@1")
        second.put(0, "gone", None)
        await second.flush()
        second.revoke({0})

        first_generation[0] = 3
        await first.assign({0})
        assert dict(first.items(0)) == {"a": "answered@1", "b": "open@1"}
    finally:
        await producer.stop()
