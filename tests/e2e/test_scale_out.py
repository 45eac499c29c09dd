"""Scale-out faults: three routers and two kpi instances, one of each killed -9 mid-load,
a router added and one removed, a kpi added; nothing lost, nothing repeated that a
consumer deduplicating on the event id would see twice (an escalation published by a
router killed before committing is published again with the same id: counted, printed).

The services run on a broker of their own (no other test's state or outputs mix in),
with an SLA of a few seconds (``short_sla_rules``). The load (``tests.fixtures.scale_out``)
sends interactions straight to the router's input, some overdue already, and answers
them through a router's API or as another tool would, racing their deadlines. The ground
truth comes from what was sent (``tests.fixtures.scale_out_truth``): which escalation
levels were due, which replies were first responses, what every KPI window holds, which
viral spike must page. Outputs are read as downstream consumers read them
(``read_committed``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from importlib import resources

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from socialcrm.v1 import reply_pb2, routed_pb2
from socialcrm_devstack.infra import KafkaBroker
from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LOCAL_READ_API_KEY
from socialcrm_kpi.windows import WindowSpec
from socialcrm_router.rules import DEFAULT_RULES_RESOURCE, parse_rules
from tests.fixtures.metrics import metric_value
from tests.fixtures.scale_out import Driver, Load, Record, closers, short_sla_rules
from tests.fixtures.scale_out_truth import (
    INTERACTION_FIGURES,
    REPLY_FIGURES,
    Answer,
    Fired,
    Sent,
    escalation_alert_findings,
    escalation_findings,
    first_response_findings,
    interaction_windows,
    reply_windows,
    snapshot_findings,
    spike_alert_findings,
)
from tests.fixtures.service_pool import ServicePool
from tests.fixtures.topic_log import Outputs, Publisher, partition_of

pytestmark = pytest.mark.e2e

SLA_SECONDS = 8
SECOND_LEVEL_SECONDS = 10
# Answers this close to a due time may or may not beat it; farther, the outcome is fixed.
MARGIN_SECONDS = 2.0
# Time a replica has to fire a level once due, outside a failover.
FIRE_GRACE_SECONDS = 5.0
PARTITIONS = 6
WINDOWS = "10,30/10"
# The oldest interactions are sent 25 s after they occurred; a kpi failover adds its delay.
LATENESS_SECONDS = 60
SPIKE_MIN_COUNT = 30
# 160 interactions (20 of each kind, 5 per brand and kind) at 10/s: every kind meets every
# fault, and a main brand stays under SPIKE_MIN_COUNT per 5-s bucket (about 12).
LOAD = Load(
    brands=("acme-a", "acme-b", "acme-c", "acme-d"),
    spike_brand="acme-spike",
    interactions=160,
    per_second=10,
    spike_bucket_seconds=5,
    spike_history_buckets=3,
    spike_burst=36,
)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicePool]:
    work_dir = tmp_path_factory.mktemp("scale-out")
    broker = KafkaBroker(work_dir / "kafka", port=free_port())
    default_rules = resources.files("socialcrm_router").joinpath(DEFAULT_RULES_RESOURCE)
    rules = short_sla_rules(default_rules.read_text(), SLA_SECONDS, SECOND_LEVEL_SECONDS)
    parse_rules(rules, "scale-out rules")
    rules_file = work_dir / "router-rules.yaml"
    rules_file.write_text(rules)
    env = {
        "router": {"ROUTER_RULES_FILE": str(rules_file), "ROUTER_SLA_SCAN_SECONDS": "0.5"},
        "kpi": {
            "BRANDS": ",".join((*LOAD.brands, LOAD.spike_brand)),
            "KPI_WINDOWS": WINDOWS,
            "KPI_ALLOWED_LATENESS_SECONDS": str(LATENESS_SECONDS),
            # The faults here are kills of kpi itself, not of an upstream: no failover to wait.
            "KPI_IDLE_PARTITION_SECONDS": "5",
            "SPIKE_BUCKET_SECONDS": str(LOAD.spike_bucket_seconds),
            "SPIKE_MIN_HISTORY_BUCKETS": str(LOAD.spike_history_buckets),
            "SPIKE_MIN_COUNT": str(SPIKE_MIN_COUNT),
        },
    }
    broker.start()
    services = ServicePool(work_dir, broker, env)
    try:
        services.start("router", "router", "router", "kpi", "kpi")
        yield services
    finally:
        services.stop_all()
        broker.stop()


def active_kpi(pool: ServicePool) -> str:
    """The kpi instance that consumed the most of the routed stream so far."""
    counts = {
        name: metric_value(
            httpx.get(f"{pool.urls[name]}/metrics", timeout=5).text,
            "socialcrm_events_consumed_total",
            topic="social.routed.v1",
        )
        for name in pool.running("kpi")
    }
    return max(counts, key=lambda name: counts[name])


def seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


async def until(probe: Callable[[], Awaitable[bool]], wait_seconds: float) -> bool:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if await probe():
            return True
        await asyncio.sleep(0.5)
    return False


def report(findings: Mapping[str, list[str]], shown: int = 8) -> str:
    return "\n".join(
        f"{what}: {len(lines)}\n    " + "\n    ".join(lines[:shown])
        for what, lines in findings.items()
    )


def fired(outputs: Outputs) -> list[Fired]:
    return [
        Fired(e.interaction_event_id, e.level, e.header.event_id, seconds(e.escalated_at))
        for e in outputs.escalations.messages
    ]


def sent_as_routed(record: Record, deadlines: Mapping[str, float]) -> list[Sent]:
    return [
        Sent(
            event_id=i.event_id,
            brand=i.brand,
            polarity=i.polarity,
            event_time=min(
                seconds(i.message.header.occurred_at), seconds(i.message.header.ingested_at)
            ),
            sla_deadline=deadlines.get(i.event_id, float("inf")),
            queue=i.queue,
            escalated=i.high_risk,
            needs_response=True,
        )
        for i in record.inputs
    ]


def answers_made(record: Record, published: Mapping[str, list[reply_pb2.Reply]]) -> list[Answer]:
    """The tools' replies as sent; the API's as their owner published them."""
    by_tools = [
        Answer(
            r.header.event_id,
            r.interaction_event_id,
            seconds(r.header.occurred_at),
            bool(r.text),
            r.status,
            via_api=False,
        )
        for r in record.tool_replies
    ]
    through_api = [
        Answer(
            c.reply_event_id,
            c.interaction_event_id,
            seconds(published[c.reply_event_id][0].header.occurred_at),
            c.has_text,
            c.status,
            via_api=True,
        )
        for c in record.api_calls
        if published.get(c.reply_event_id)
    ]
    return by_tools + through_api


async def views_of_tool_answers(
    pool: ServicePool, answers: list[Answer], origin: float
) -> dict[str, list[str]]:
    """The read view (``GET /v1/interactions/{id}``) of every interaction that a tool's
    reply answered first and nobody resolved shows that reply as its first response."""
    firsts: dict[str, Answer] = {}
    resolved = {a.interaction_event_id for a in answers if a.status == "resolved"}
    for answer in sorted((a for a in answers if a.has_text), key=lambda a: a.at):
        firsts.setdefault(answer.interaction_event_id, answer)
    lost = []
    url = pool.urls[pool.running("router")[0]]
    headers = {"Authorization": f"Bearer {LOCAL_READ_API_KEY}"}
    async with httpx.AsyncClient(timeout=10) as http:
        for interaction_id, answer in sorted(firsts.items()):
            if answer.via_api or interaction_id in resolved:
                continue
            response = await http.get(f"{url}/v1/interactions/{interaction_id}", headers=headers)
            shown = response.json().get("first_response_at") if response.is_success else None
            at = datetime.fromisoformat(shown).timestamp() if shown else None
            if at is None or abs(at - answer.at) > 0.01:
                lost.append(
                    f"{interaction_id}: replied at {answer.at - origin:.3f}, view shows "
                    f"{response.status_code} first_response_at={shown}"
                )
    return {"first response lost (read view)": lost} if lost else {}


async def test_replicas_killed_added_and_removed_lose_and_repeat_nothing(
    pool: ServicePool,
) -> None:
    bootstrap = pool.stack.kafka.bootstrap
    driver = Driver(pool, LOAD)
    record = driver.record
    killed_kpi: list[str] = []

    def kill_active_kpi() -> None:
        killed_kpi.append(active_kpi(pool))
        pool.kill(killed_kpi[0])

    faults: list[tuple[float, str, Callable[[], object]]] = [
        (6.0, "kill -9 router-1", lambda: pool.kill("router-1")),
        (8.0, "add a router", lambda: pool.start("router")),
        (10.0, "kill -9 the active kpi", kill_active_kpi),
        (12.0, "remove router-2", lambda: pool.stop("router-2")),
        (14.0, "add a kpi", lambda: pool.start("kpi")),
    ]
    specs = [
        WindowSpec(int(size), int(step or size))
        for size, _, step in (w.partition("/") for w in WINDOWS.split(","))
    ]
    findings: dict[str, list[str]] = {}
    async with Outputs(bootstrap) as outputs:
        finished = await driver.play(faults)
        sent_ids = {i.event_id for i in record.inputs}
        api_ids = {c.reply_event_id for c in record.api_calls}

        async def all_routed() -> bool:
            await outputs.routed.catch_up()
            return sent_ids <= {m.header.event_id for m in outputs.routed.messages}

        async def all_api_replies_published() -> bool:
            await outputs.replies.catch_up()
            return api_ids <= {m.header.event_id for m in outputs.replies.messages}

        if not await until(all_routed, 90):
            routed_ids = {m.header.event_id for m in outputs.routed.messages}
            findings["interactions never routed"] = sorted(sent_ids - routed_ids)
        if not await until(all_api_replies_published, 60):
            published_ids = {m.header.event_id for m in outputs.replies.messages}
            findings["accepted API replies never published"] = sorted(api_ids - published_ids)
        routed: dict[str, routed_pb2.RoutedInteraction] = {}
        for message in outputs.routed.messages:
            routed.setdefault(message.header.event_id, message)
        deadlines = {i: seconds(m.routing.sla_deadline) for i, m in routed.items()}
        sent = sent_as_routed(record, deadlines)
        last_due = max(deadlines.get(i, 0.0) for i in sent_ids) + SECOND_LEVEL_SECONDS
        await asyncio.sleep(max(0.0, last_due + FIRE_GRACE_SECONDS - time.time()))
        checked_at = time.time() - FIRE_GRACE_SECONDS

        # Every partition's event time moves past the load: every window of it closes.
        async with Publisher(bootstrap) as publisher:
            for partition, closer in closers(PARTITIONS, time.time() + 600, driver.run):
                await publisher.send([closer], partition=partition)

        published: dict[str, list[reply_pb2.Reply]] = defaultdict(list)
        await outputs.replies.catch_up()
        for reply in outputs.replies.messages:
            published[reply.header.event_id].append(reply)
        answers = answers_made(record, published)
        expected_interactions = interaction_windows(sent, specs, channel="x", language="fr")
        expected_replies = reply_windows(
            [copies[0] for copies in published.values() if copies[0].queue != "closer"], specs
        )

        def escalations(describe: Mapping[str, str]) -> dict[str, list[str]]:
            return escalation_findings(
                sent,
                answers,
                fired(outputs),
                second_level_after=SECOND_LEVEL_SECONDS,
                checked_at=checked_at,
                margin=MARGIN_SECONDS,
                describe=describe,
                origin=driver.started,
            )

        async def all_due_fired() -> bool:
            await outputs.escalations.catch_up()
            return "due level not fired" not in escalations({})

        async def all_windows_published() -> bool:
            await outputs.snapshots.catch_up()
            published = {
                (s.dimension_key, int(seconds(s.window_start))) for s in outputs.snapshots.messages
            }
            return set(expected_interactions) | set(expected_replies) <= published

        await until(all_due_fired, 30)
        await until(all_windows_published, 60)
        await asyncio.sleep(3)  # room for a duplicate to show
        await outputs.catch_up()

    describe = {
        i.event_id: f"partition "
        f"{partition_of(i.message.interaction.conversation_id.encode(), PARTITIONS)}, "
        f"sent {seconds(i.message.header.ingested_at) - driver.started:.1f}, {i.kind.name}"
        for i in record.inputs
    }
    if record.api_refusals or record.api_given_up:
        findings["API calls refused or given up"] = record.api_refusals + record.api_given_up
    wrong_queues = [
        f"{i.event_id}: {routed[i.event_id].routing.queue} (rules: {i.queue})"
        for i in record.inputs
        if i.event_id in routed and routed[i.event_id].routing.queue != i.queue
    ]
    if wrong_queues:
        findings["routed to another queue than the rules say"] = wrong_queues
    findings |= escalations(describe)
    findings |= first_response_findings(
        sent, answers, sorted(api_ids), published, margin=MARGIN_SECONDS, origin=driver.started
    )
    findings |= await views_of_tool_answers(pool, answers, driver.started)
    snapshots = outputs.snapshots.messages
    for name, expected, figures in (
        ("interaction", expected_interactions, INTERACTION_FIGURES),
        ("reply", expected_replies, REPLY_FIGURES),
    ):
        for what, lines in snapshot_findings(expected, snapshots, figures).items():
            findings[f"{name} KPIs, {what}"] = lines
    findings |= spike_alert_findings(outputs.alerts.messages, driver.expected_spikes())
    findings |= escalation_alert_findings(outputs.alerts.messages, fired(outputs))

    escalation_records = fired(outputs)
    started = driver.started

    def repeats(ids: list[str]) -> int:
        return len(ids) - len(set(ids))

    print(
        f"\nscale-out: {len(sent)} interactions ({repeats(routed_event_ids(outputs))} "
        f"routed twice), {len(answers)} answers ({len(record.api_calls)} through the API; "
        f"{repeats([m.header.event_id for m in outputs.replies.messages])} replies published "
        f"twice), {len(escalation_records)} escalation records "
        f"({repeats([f.event_id for f in escalation_records])} repeats of an event id), "
        f"{len(snapshots)} snapshots, {len(outputs.alerts.messages)} alerts; load sent in "
        f"{finished - started:.0f} s; faults at "
        f"{[(round(t - started, 1), what) for t, what in record.faults]}; "
        f"kpi killed: {killed_kpi}; logs in {pool.work_dir / 'logs'}"
    )
    (pool.work_dir / "findings.txt").write_text(report(findings, shown=10_000))
    assert not findings, f"\n{report(findings)}\n(all: {pool.work_dir / 'findings.txt'})"


def routed_event_ids(outputs: Outputs) -> list[str]:
    return [m.header.event_id for m in outputs.routed.messages]
