"""Bounded dimensions of the KPIs, and authors known only by opaque keys."""

from __future__ import annotations

import json

from socialcrm.labels import OTHER
from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2, routed_pb2
from socialcrm_kpi.counting import AuthorPseudonyms, dimensions_of
from socialcrm_kpi.engine import KpiEngine, RoutedFacts
from socialcrm_kpi.settings import KpiSettings
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

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


def test_brands_outside_the_list_and_overlong_queues_count_as_other() -> None:
    assert dimensions_of(routed("acme"), {"acme"}).brand == "acme"
    assert dimensions_of(routed("b" * 6000), {"acme"}).brand == OTHER
    assert dimensions_of(routed("globex"), {"acme"}).brand == OTHER
    assert dimensions_of(routed(""), {"acme"}).brand == "unknown"
    assert dimensions_of(routed("acme", queue="q" * 100), {"acme"}).queue == OTHER


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
    dims = dimensions_of(message, {"acme"})
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
