"""X Account Activity direct_message_events, in X's published shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def dm_event() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "x" / "direct_message_events.json").read_text())
    return loaded


def test_a_received_dm_is_a_private_interaction_with_its_author_from_the_users_map() -> None:
    [dm] = normalize_account_activity(dm_event(), brand="acme", ingested_at=NOW)
    assert dm.header.channel == common_pb2.CHANNEL_X
    assert dm.header.external_id == "1990000000000000501"
    assert dm.header.event_id == contract.event_id_for(common_pb2.CHANNEL_X, "1990000000000000501")
    assert dm.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime.fromtimestamp(
        1794824345.012, UTC
    )
    assert not dm.is_public
    assert dm.kind == "dm"
    assert dm.conversation_id == "2244994945-3805104374"
    assert dm.author.handle == "camille_mrt"
    assert dm.author.channel_user_id == "3805104374"
    assert dm.author.followers == 182000
    assert dm.author.verified
    assert "commande #48213" in dm.text
    assert dm.raw_ref == "x/dm/1990000000000000501"
    contract.validate(dm)


def test_dms_the_brand_sent_itself_are_left_out() -> None:
    payload = dm_event()
    create = payload["direct_message_events"][0]["message_create"]
    create["sender_id"], create["target"]["recipient_id"] = "2244994945", "3805104374"
    assert normalize_account_activity(payload, brand="acme", ingested_at=NOW) == []


def test_without_the_users_map_the_sender_id_is_the_handle() -> None:
    payload = dm_event()
    del payload["users"]
    [dm] = normalize_account_activity(payload, brand="acme", ingested_at=NOW)
    assert dm.author.handle == "3805104374"


def test_other_dm_event_types_are_ignored() -> None:
    payload = dm_event()
    payload["direct_message_events"][0]["type"] = "message_delete"
    assert normalize_account_activity(payload, brand="acme", ingested_at=NOW) == []


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("id", "direct_message_events[0].id is missing"),
        ("created_timestamp", "direct_message_events[0].created_timestamp is missing"),
        ("message_create", "direct_message_events[0].message_create is missing"),
    ],
)
def test_malformed_dms_are_refused_naming_the_field(field: str, reason: str) -> None:
    payload = dm_event()
    del payload["direct_message_events"][0][field]
    with pytest.raises(PayloadError) as refused:
        normalize_account_activity(payload, brand="acme", ingested_at=NOW)
    assert reason in str(refused.value)


def test_counts_that_are_not_numbers_count_as_zero() -> None:
    payload = dm_event()
    payload["users"]["3805104374"]["followers_count"] = "many"
    [dm] = normalize_account_activity(payload, brand="acme", ingested_at=NOW)
    assert dm.author.followers == 0
