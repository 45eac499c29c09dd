"""Bounded dimensions of the KPIs, and authors known only by opaque keys."""

from __future__ import annotations

import json
from importlib import resources

from socialcrm.labels import OTHER
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, routed_pb2
from socialcrm_kpi.counting import AuthorPseudonyms, dimensions_of
from socialcrm_kpi.engine import KpiEngine
from socialcrm_kpi.journal import RoutedFacts
from socialcrm_kpi.settings import KpiSettings
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec
from socialcrm_router.rules import DEFAULT_RULES_RESOURCE, parse_rules

HANDLE = "camille_mrt"


def routed(brand: str, queue: str = "customer-service-fr") -> routed_pb2.RoutedInteraction:
    interaction = interaction_pb2.Interaction(
        header=common_pb2.EventHeader(channel=common_pb2.CHANNEL_X),
        brand=brand,
        author=common_pb2.Author(handle=HANDLE, channel_user_id="123", display_name="Camille"),
    )
    return routed_pb2.RoutedInteraction(
        enriched=enriched_pb2.EnrichedInteraction(
            interaction=interaction, enrichment=enriched_pb2.Enrichment(language="fr")
        ),
        routing=routed_pb2.Routing(queue=queue),
    )


QUEUES = KpiSettings().known_queues()


def test_brands_and_queues_outside_their_lists_count_as_other() -> None:
    assert dimensions_of(routed("acme"), {"acme"}, QUEUES).brand == "acme"
    assert dimensions_of(routed("b" * 6000), {"acme"}, QUEUES).brand == OTHER
    assert dimensions_of(routed("globex"), {"acme"}, QUEUES).brand == OTHER
    assert dimensions_of(routed(""), {"acme"}, QUEUES).brand == "unknown"
    assert dimensions_of(routed("acme"), {"acme"}, QUEUES).queue == "customer-service-fr"
    assert dimensions_of(routed("acme", queue="q" * 100), {"acme"}, QUEUES).queue == OTHER
    assert dimensions_of(routed("acme", queue="forged-1"), {"acme"}, QUEUES).queue == OTHER
    assert dimensions_of(routed("acme", queue=""), {"acme"}, QUEUES).queue == "none"


def test_channels_polarities_and_languages_the_contract_does_not_name_count_as_other() -> None:
    message = routed("acme")
    message.enriched.interaction.header.channel = 999  # type: ignore[assignment]
    message.enriched.enrichment.polarity = 77  # type: ignore[assignment]
    message.enriched.enrichment.language = "xx-forged"
    dims = dimensions_of(message, {"acme"}, QUEUES)
    assert (dims.channel, dims.polarity, dims.language) == (OTHER, OTHER, OTHER)


def test_known_queues_default_to_the_queues_of_the_routers_default_rules() -> None:
    text = resources.files("socialcrm_router").joinpath(DEFAULT_RULES_RESOURCE).read_text()
    assert KpiSettings().known_queues() == set(parse_rules(text).queues)


def test_counted_brands_are_the_served_ones_plus_share_of_voice_brands() -> None:
    settings = KpiSettings(brands="acme, acme-fr", kpi_competitor_brands="globex")
    assert settings.counted_brands() == {"acme", "acme-fr", "globex"}


def test_author_keys_are_stable_opaque_and_per_process() -> None:
    author = common_pb2.Author(handle=HANDLE, channel_user_id="123")
    pseudonyms = AuthorPseudonyms()
    key = pseudonyms.of(common_pb2.CHANNEL_X, author)
    assert key == pseudonyms.of(common_pb2.CHANNEL_X, author)
    assert key != pseudonyms.of(common_pb2.CHANNEL_FORUM, author)
    assert key != AuthorPseudonyms().of(common_pb2.CHANNEL_X, author)
    assert HANDLE not in key
    assert pseudonyms.of(common_pb2.CHANNEL_X, common_pb2.Author()) == ""


def test_state_and_journal_hold_no_handle() -> None:
    engine = KpiEngine(
        [WindowSpec(60, 60)],
        allowed_lateness_seconds=0,
        share_of_voice=ShareOfVoice(),
        spike_settings=SpikeSettings(),
        backlog_max_age_seconds=3600,
    )
    message = routed("acme")
    dims = dimensions_of(message, {"acme"}, QUEUES)
    author = AuthorPseudonyms().of(common_pb2.CHANNEL_X, message.enriched.interaction.author)
    for index in range(30):
        engine.on_routed(
            RoutedFacts(
                f"event-{index}", 1_700_000_000 + index, dims, -0.5, False, True, author, 0.3
            )
        )
    written = json.dumps([engine.take_journal(), engine.to_state()])
    assert HANDLE not in written
    assert author in written
