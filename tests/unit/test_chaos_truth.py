"""The chaos checker finds what it must, offline: records made by hand, no broker."""

from __future__ import annotations

from collections.abc import Sequence

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, reply_pb2, routed_pb2
from socialcrm_router.decide import route
from socialcrm_router.rules import parse_rules
from tests.fixtures import events
from tests.fixtures.chaos import rules_text, window_specs
from tests.fixtures.chaos_faults import (
    REQUIRED,
    RESTART_BROKER,
    SECOND_LEVEL_SECONDS,
    SLA_SECONDS,
    schedule,
)
from tests.fixtures.chaos_truth import Observed, Verdict, check, render
from tests.fixtures.scale_out_truth import Answer

T0 = 1_800_000_000.0
RULES = parse_rules(rules_text(), "chaos rules")


def enriched(name: str, occurred: float) -> enriched_pb2.EnrichedInteraction:
    item = events.interaction(
        name, brand="acme-a", occurred_at=occurred, ingested_at=occurred, is_public=True
    )
    return events.enriched(item, language="fr", polarity=common_pb2.POLARITY_NEGATIVE)


def fired(
    interaction: enriched_pb2.EnrichedInteraction, level: int, at: float
) -> routed_pb2.Escalation:
    message = routed_pb2.Escalation(
        header=events.header(f"esc-{interaction.header.event_id}-{level}", occurred_at=at),
        interaction_event_id=interaction.header.event_id,
        level=level,
    )
    message.escalated_at.FromNanoseconds(int(at * 1e9))
    return message


def tool_reply(interaction: enriched_pb2.EnrichedInteraction, at: float) -> reply_pb2.Reply:
    return reply_pb2.Reply(
        header=events.header(
            f"reply-{interaction.header.event_id}", occurred_at=at, producer="crm-tool"
        ),
        interaction_event_id=interaction.header.event_id,
        text="Nous regardons",
        queue="customer-service-fr",
    )


def verdict(
    inputs: Sequence[enriched_pb2.EnrichedInteraction],
    replies: Sequence[reply_pb2.Reply] = (),
    escalations: Sequence[routed_pb2.Escalation] = (),
    dead_letters: Sequence[contract.DeadLetter] = (),
    held: tuple[float, float] | None = None,
) -> Verdict:
    def latest_arrival(answer: Answer) -> float:
        if held and held[0] <= answer.at <= held[1]:
            return held[1]
        return answer.at

    observed = Observed(
        enriched=inputs,
        commands=[],
        replies=replies,
        routed=[route(i, RULES) for i in inputs[:1]],
        escalations=escalations,
        snapshots=[],
        dead_letter_topics=["social.enriched.v1.dlq"],
        dead_letters=dead_letters,
    )
    return check(
        observed,
        RULES,
        window_specs(),
        second_level_after=SECOND_LEVEL_SECONDS,
        margin=2.0,
        checked_at=T0 + 120,
        latest_arrival=latest_arrival,
        describe={},
        origin=T0,
    )


def test_a_due_level_not_fired_and_a_missing_route_are_found() -> None:
    first, second = enriched("a", T0), enriched("b", T0)
    found = verdict([first, second], escalations=[fired(first, 1, T0 + SLA_SECONDS)])
    assert not found.passed
    assert len(found.findings["due level not fired"]) == 3  # a's level 2, b's levels 1 and 2
    assert found.findings["interactions never routed"] == [second.header.event_id]
    assert found.figures["SLA levels due (must fire)"] == 4
    assert found.figures["SLA levels due fired once"] == 1
    assert "FAIL: " in render(found, {})


def test_an_interaction_answered_in_time_and_escalated_is_found() -> None:
    item = enriched("a", T0)
    found = verdict(
        [item], replies=[tool_reply(item, T0 + 3)], escalations=[fired(item, 1, T0 + 8)]
    )
    assert len(found.findings["level fired though answered in time"]) == 1
    assert found.figures["answered in time yet escalated"] == 1


def test_an_answer_held_back_by_a_fault_may_race_the_deadline() -> None:
    item = enriched("a", T0)
    found = verdict(
        [item],
        replies=[tool_reply(item, T0 + 3)],
        escalations=[fired(item, 1, T0 + 8)],
        held=(T0 + 2, T0 + 9),
    )
    assert "level fired though answered in time" not in found.findings
    assert found.figures["SLA levels racing an answer (may fire)"] == 1


def test_a_redelivery_counts_once_and_a_dead_letter_is_a_finding() -> None:
    item = enriched("a", T0)
    letter = contract.DeadLetter(
        source_topic="social.enriched.v1", error_type="handler_error", reason="KeyError"
    )
    found = verdict([item, item], dead_letters=[letter])
    assert found.figures["redelivered interaction records"] == 1
    assert found.findings["records dead-lettered (every input was valid)"] == [
        "social.enriched.v1[0]@0 by : handler_error: KeyError"
    ]
    assert found.figures["dead letters"] == {"social.enriched.v1.dlq handler_error": 1}


def test_the_schedule_has_every_required_fault_and_one_broker_restart_and_is_seeded() -> None:
    faults = schedule(3, 150)
    assert schedule(3, 150) == faults
    assert set(REQUIRED) <= {f.what for f in faults}
    assert [f.what for f in faults].count(RESTART_BROKER) == 1
    assert all(0 < f.at < 150 for f in faults)
    assert len(schedule(23, 300)) > len(faults)


def test_a_same_id_copy_after_the_resolution_is_counted_not_found() -> None:
    item = enriched("a", T0)
    resolution = tool_reply(item, T0 + 12)
    resolution.status = "resolved"
    found = verdict(
        [item],
        replies=[resolution],
        escalations=[fired(item, 1, T0 + 8), fired(item, 1, T0 + 20)],
    )
    assert "resolved interaction escalated again" not in found.findings
    assert found.figures["escalation copies (same event id)"] == 1
    assert found.figures["of which published after the interaction was resolved"] == 1
