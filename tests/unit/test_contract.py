from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, crm_pb2, enriched_pb2, interaction_pb2, routed_pb2
from socialcrm_devstack import proto_codegen

REPO = Path(__file__).resolve().parents[2]


def _interaction(**overrides: object) -> interaction_pb2.Interaction:
    message = interaction_pb2.Interaction(
        header=common_pb2.EventHeader(
            event_id=contract.event_id_for(common_pb2.CHANNEL_X, "42"),
            channel=common_pb2.CHANNEL_X,
            external_id="42",
            occurred_at=contract.timestamp(),
            ingested_at=contract.timestamp(),
        ),
        conversation_id="thread-1",
        text="bonjour",
    )
    for name, value in overrides.items():
        setattr(message, name, value)
    return message


def test_topics_are_versioned_and_read_from_the_proto_options() -> None:
    assert contract.topic_of(interaction_pb2.Interaction) == "social.interactions.v1"
    assert contract.topic_of(routed_pb2.RoutedInteraction) == "social.routed.v1"
    assert all(topic.split(".dlq")[0].endswith(".v1") for topic in contract.all_topics())
    assert "social.enriched.v1.dlq" in contract.all_topics()


def test_internal_topics_are_versioned_and_apart_from_the_event_topics() -> None:
    names = [topic.name for topic in contract.INTERNAL_TOPICS]
    assert len(set(names)) == len(names)
    assert not set(names) & set(contract.all_topics())
    assert all(name.rsplit(".", 1)[1].startswith("v") for name in names)
    assert all(topic.compacted for topic in contract.INTERNAL_TOPICS)


def test_state_topics_take_their_name_and_key_from_the_proto_options() -> None:
    state = contract.ROUTER_SLA_STATE
    assert state.message is routed_pb2.InteractionSlaState
    assert (state.name, state.key) == ("router.sla-state.v2", "interaction_event_id")
    assert state.name == contract.topic_of(routed_pb2.InteractionSlaState)
    assert contract.KPI_STATE.name == "kpi.state.v2"
    assert [t.codec for t in contract.INTERNAL_TOPICS if t.message is None] == [
        "json",
        "tombstone",
    ]


def test_keys_are_business_keys() -> None:
    interaction = _interaction()
    enriched = enriched_pb2.EnrichedInteraction(header=interaction.header, interaction=interaction)
    assert contract.key_of(interaction) == b"thread-1"
    assert contract.key_of(enriched) == b"thread-1"
    assert contract.key_of(crm_pb2.CrmEvent(contact_id="c-1")) == b"c-1"


def test_event_ids_are_stable_and_distinct_per_channel_item() -> None:
    assert contract.event_id_for(common_pb2.CHANNEL_X, "1") == contract.event_id_for(
        common_pb2.CHANNEL_X, "1"
    )
    assert contract.event_id_for(common_pb2.CHANNEL_X, "1") != contract.event_id_for(
        common_pb2.CHANNEL_FACEBOOK, "1"
    )
    assert contract.derived_event_id("e", "a") != contract.derived_event_id("e", "b")


def test_decode_round_trip() -> None:
    interaction = _interaction()
    decoded = contract.decode(interaction_pb2.Interaction, contract.encode(interaction))
    assert decoded == interaction


def test_decode_rejects_garbage_with_a_reason() -> None:
    with pytest.raises(contract.ContractError) as caught:
        contract.decode(interaction_pb2.Interaction, b"\xff\xff\xff not protobuf")
    assert caught.value.error_type == "decode_error"
    assert "Interaction" in caught.value.reason


def test_decode_rejects_events_without_identity() -> None:
    incomplete = _interaction()
    incomplete.header.ClearField("event_id")
    with pytest.raises(contract.ContractError) as caught:
        contract.decode(interaction_pb2.Interaction, contract.encode(incomplete))
    assert caught.value.error_type == "contract_violation"
    assert "header.event_id" in caught.value.reason


def test_committed_generated_code_matches_the_proto_files(tmp_path: Path) -> None:
    fresh = proto_codegen.generate(tmp_path)
    committed = REPO / "libs" / "common" / "socialcrm" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == sorted(p.name for p in committed.iterdir() if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(fresh, committed, names, shallow=False)
    assert not errors
    assert not mismatch, (
        f"stale generated code, run python -m socialcrm_devstack.proto_codegen: {mismatch}"
    )
