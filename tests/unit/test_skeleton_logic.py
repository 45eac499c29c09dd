"""The pure logic of the five stages chained: ingest normalisation to CRM planning and KPIs."""

from __future__ import annotations

from datetime import UTC, datetime

from socialcrm.v1 import common_pb2, crm_pb2, routed_pb2
from socialcrm_crm_sink.records import case_id_for, contact_id_for, crm_events, plan_write
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_kpi.counting import dimensions_of
from socialcrm_router.decide import route
from socialcrm_sentiment.enrich import enrich
from tests.fixtures.payloads import x_tweet_event

NOW = datetime(2026, 11, 16, 9, 13, tzinfo=UTC)


def _routed(text: str, tweet_id: str = "10") -> routed_pb2.RoutedInteraction:
    [interaction] = normalize_account_activity(
        x_tweet_event(tweet_id, text=text), brand="acme", ingested_at=NOW
    )
    return route(enrich(interaction))


def test_negative_french_post_from_influencer_goes_to_french_customer_service_urgently() -> None:
    routed = _routed("Mon colis est en retard, c'est inadmissible !")
    assert routed.enriched.enrichment.language == "fr"
    assert routed.routing.queue == "customer-service-fr"
    assert routed.routing.priority == common_pb2.PRIORITY_URGENT
    assert routed.routing.escalated
    assert routed.header.event_id == routed.enriched.interaction.header.event_id


def test_crm_plan_is_derived_from_the_event_so_replays_write_the_same_documents() -> None:
    routed = _routed("Mon colis est en retard, c'est inadmissible !")
    first, again = plan_write(routed), plan_write(routed)
    assert first == again
    assert first.contact_on_insert["_id"] == contact_id_for("x:camille_mrt")
    assert first.case_id == case_id_for(common_pb2.CHANNEL_X, "10")
    assert first.timeline_entry["polarity"] == "negative"


def test_crm_events_announce_creation_only_for_the_creating_event() -> None:
    routed = _routed("Super service, merci !")
    event_id = routed.header.event_id
    created = crm_events(
        routed,
        contact_id="c",
        contact_created_by=event_id,
        case_id="k",
        case_opened_by=event_id,
        case_status="new",
    )
    assert [e.type for e in created] == [
        crm_pb2.CRM_EVENT_TYPE_CONTACT_CREATED,
        crm_pb2.CRM_EVENT_TYPE_CASE_OPENED,
        crm_pb2.CRM_EVENT_TYPE_INTERACTION_RECORDED,
    ]
    later = crm_events(
        routed,
        contact_id="c",
        contact_created_by="other",
        case_id="k",
        case_opened_by="other",
        case_status="open",
    )
    assert [e.type for e in later] == [crm_pb2.CRM_EVENT_TYPE_INTERACTION_RECORDED]
    assert later[0].header.event_id == created[2].header.event_id


def test_kpi_bounds_label_values() -> None:
    routed = _routed("Merci pour tout", "11")
    dims = dimensions_of(routed, {"acme"}, {"customer-service-fr"})
    assert dims.channel == "x"
    assert dims.language in ("fr", "en", "other")
