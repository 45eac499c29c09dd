"""Router rules: loading, validation errors, matching, business hours, SLA table (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_router.decide import route
from socialcrm_router.rules import RulesError, packaged_rules, parse_rules

# Monday 16 November 2026, 09:13 UTC = 10:13 in Paris.
MONDAY_MORNING = datetime(2026, 11, 16, 9, 13, tzinfo=UTC)
# Sunday 15 November 2026, 22:30 UTC = 23:30 in Paris.
SUNDAY_NIGHT = datetime(2026, 11, 15, 22, 30, tzinfo=UTC)

RULES = """
version: test-1
queues:
  cs-fr: {team: customer-service}
  cs-en: {team: customer-service, lead_queue: cs-supervisors}
  billing:
    team: billing
    hours: {start: "09:00", end: "18:00", timezone: Europe/Paris, days: [mon, tue, wed, thu, fri]}
    fallback: cs-fr
    outside_hours_message: "Facturation : réponse dès {opens_at}"
  community: {team: community}
  night-shift:
    team: community
    hours: {start: "22:00", end: "06:00", timezone: Europe/Paris}
    fallback: community
escalations:
  - id: influencer
    when: {polarity: negative, reach_min: 0.6}
    reason: influential author, negative sentiment
  - id: legal
    when: {urgency_signals: [legal, safety]}
    reason: legal or safety urgency
rules:
  - id: billing
    when: {keywords: [facture], language: fr}
    queue: billing
    priority: high
    next_best_channel: private_message
  - id: gold-any
    when: {tier: gold}
    queue: cs-en
    priority: high
  - id: instagram-question
    when: {channel: instagram, intent: question, sentiment_max: 0.2}
    queue: cs-en
    priority: normal
  - id: late-night
    when: {time_of_day: {start: "22:00", end: "06:00", timezone: Europe/Paris}}
    queue: night-shift
    priority: low
  - id: negative-fr
    when: {polarity: negative, language: [fr]}
    queue: cs-fr
    priority: high
    next_best_channel: live_chat
  - id: default
    queue: community
    priority: normal
sla:
  - {first_response: 4h}
  - {priority: urgent, first_response: 30m}
  - {channel: x, priority: urgent, first_response: 20m}
  - {tier: gold, priority: urgent, first_response: 10m}
escalation: {second_level_after: 2h, second_level_queue: duty-manager}
"""


def enriched(
    text: str = "Mon colis est en retard",
    *,
    channel: int = common_pb2.CHANNEL_X,
    language: str = "fr",
    polarity: int = common_pb2.POLARITY_NEGATIVE,
    sentiment: float = -0.7,
    intent: int = common_pb2.INTENT_COMPLAINT,
    reach: float = 0.2,
    signals: tuple[str, ...] = (),
    is_public: bool = True,
) -> enriched_pb2.EnrichedInteraction:
    header = common_pb2.EventHeader(
        event_id=contract.event_id_for(channel, "42"),
        channel=channel,  # type: ignore[arg-type]
        external_id="42",
        occurred_at=contract.timestamp(MONDAY_MORNING),
        ingested_at=contract.timestamp(MONDAY_MORNING),
    )
    return enriched_pb2.EnrichedInteraction(
        header=header,
        interaction=interaction_pb2.Interaction(
            header=header, conversation_id="42", text=text, is_public=is_public, brand="acme"
        ),
        enrichment=enriched_pb2.Enrichment(
            language=language,
            polarity=polarity,  # type: ignore[arg-type]
            sentiment_score=sentiment,
            intent=intent,  # type: ignore[arg-type]
            reach=reach,
            urgency_signals=list(signals),
        ),
    )


def test_a_french_complaint_from_an_influencer_goes_to_french_customer_service_escalated() -> None:
    rules = parse_rules(RULES)
    routing = route(enriched(reach=0.9), rules, MONDAY_MORNING).routing
    assert routing.queue == "cs-fr"
    assert routing.rule_id == "negative-fr"
    assert routing.rules_version == "test-1"
    assert routing.escalated
    assert list(routing.escalation_trigger_ids) == ["influencer"]
    assert routing.escalation_reason == "influential author, negative sentiment"
    # The trigger raises the priority, and the SLA follows channel and priority.
    assert routing.priority == common_pb2.PRIORITY_URGENT
    deadline = routing.sla_deadline.ToDatetime(tzinfo=UTC)
    assert deadline == MONDAY_MORNING + timedelta(minutes=20)
    assert routing.next_best_channel == "live_chat"
    assert routing.team == "customer-service"


def test_without_high_risk_the_rule_priority_stays_and_nothing_escalates() -> None:
    routing = route(enriched(reach=0.1), parse_rules(RULES), MONDAY_MORNING).routing
    assert (routing.queue, routing.priority) == ("cs-fr", common_pb2.PRIORITY_HIGH)
    assert not routing.escalated
    assert routing.sla_deadline.ToDatetime(tzinfo=UTC) == MONDAY_MORNING + timedelta(hours=4)


def test_legal_urgency_escalates_immediately() -> None:
    routing = route(
        enriched(
            "I will sue you",
            language="en",
            polarity=common_pb2.POLARITY_NEUTRAL,
            signals=("Legal",),
        ),
        parse_rules(RULES),
        MONDAY_MORNING,
    ).routing
    assert routing.escalated
    assert list(routing.escalation_trigger_ids) == ["legal"]


def test_the_next_best_channel_is_only_proposed_for_public_interactions() -> None:
    rules = parse_rules(RULES)
    assert route(enriched(is_public=False), rules, MONDAY_MORNING).routing.next_best_channel == ""


def test_business_hours_in_paris_and_fallback_with_an_expectation_outside_them() -> None:
    rules = parse_rules(RULES)
    open_ = route(enriched("Ma facture est fausse"), rules, MONDAY_MORNING).routing
    assert (open_.queue, open_.outside_business_hours) == ("billing", False)
    assert open_.next_best_channel == "private_message"
    closed = route(enriched("Ma facture est fausse"), rules, SUNDAY_NIGHT).routing
    assert closed.queue == "cs-fr"
    assert closed.requested_queue == "billing"
    assert closed.outside_business_hours
    assert closed.customer_expectation == "Facturation : réponse dès Mon 09:00 CET"


def test_matching_on_channel_intent_sentiment_tier_and_time_of_day() -> None:
    rules = parse_rules(RULES)
    question = enriched(
        "Where is my order?",
        channel=common_pb2.CHANNEL_INSTAGRAM,
        language="en",
        polarity=common_pb2.POLARITY_NEUTRAL,
        sentiment=0.0,
        intent=common_pb2.INTENT_QUESTION,
    )
    assert route(question, rules, MONDAY_MORNING).routing.rule_id == "instagram-question"
    praise = enriched(
        "Great",
        language="en",
        polarity=common_pb2.POLARITY_POSITIVE,
        sentiment=0.9,
        intent=common_pb2.INTENT_PRAISE,
    )
    assert route(praise, rules, MONDAY_MORNING).routing.rule_id == "default"
    night = route(praise, rules, SUNDAY_NIGHT).routing
    assert (night.rule_id, night.queue, night.outside_business_hours) == (
        "late-night",
        "night-shift",
        False,
    )
    assert route(praise, rules, MONDAY_MORNING).routing.customer_tier == "standard"


def test_the_sla_table_picks_the_most_specific_entry() -> None:
    rules = parse_rules(RULES)
    assert rules.sla_for("x", "urgent", "gold") == timedelta(minutes=10)
    assert rules.sla_for("x", "urgent", "standard") == timedelta(minutes=20)
    assert rules.sla_for("facebook", "urgent", "standard") == timedelta(minutes=30)
    assert rules.sla_for("facebook", "low", "standard") == timedelta(hours=4)


def test_without_a_version_key_the_content_hash_is_the_version() -> None:
    text = RULES.replace("version: test-1\n", "")
    assert parse_rules(text).version.startswith("sha256:")
    assert parse_rules(text).version != parse_rules(text + "\n# changed\n").version


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("when: {polarity: negative, language: [fr]}", "when: {polarity: angry}"),
            "rule 'negative-fr' (rules[4]): field when.polarity.0: Input should be 'negative'",
        ),
        (
            ("when: {tier: gold}", "when: {tier: gold, reach_minimum: 0.5}"),
            "rule 'gold-any' (rules[1]): field when.reach_minimum: Extra inputs are not permitted",
        ),
        (
            ("queue: cs-en\n    priority: high", "queue: cs-es\n    priority: high"),
            "rule 'gold-any' (rules[1]): field queue: unknown queue 'cs-es'",
        ),
        (
            ("reach_min: 0.6}", "reach_min: 6}"),
            "escalation 'influencer' (escalations[0]): field when.reach_min:"
            " Input should be less than or equal to 1",
        ),
        (
            ("timezone: Europe/Paris, days", "timezone: Europe/Pariss, days"),
            "queue 'billing': field hours.timezone: Value error, unknown time zone",
        ),
        (
            ("priority: urgent, first_response: 30m", "priority: urgent, first_response: soon"),
            "field sla.1.first_response: Value error, 'soon' is not a duration",
        ),
        (
            ("  - id: default\n", "  - id: default\n    when: {language: fr}\n"),
            "rule 'default' (rules[5]): field when: the last rule must be a catch-all",
        ),
        (("queues:", "queues: [\n"), "not valid YAML"),
    ],
)
def test_invalid_rules_are_rejected_with_the_rule_and_the_field(
    change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in RULES
    with pytest.raises(RulesError) as caught:
        parse_rules(RULES.replace(old, new, 1), "rules.yaml")
    assert str(caught.value).startswith("rules.yaml: ")
    assert message in str(caught.value)


def test_the_packaged_rules_load_and_keep_the_french_complaint_route() -> None:
    rules = packaged_rules()
    routing = route(enriched(reach=0.9), rules, SUNDAY_NIGHT).routing
    assert routing.queue == "customer-service-fr"
    assert routing.escalated
    assert routing.rules_version == rules.version
