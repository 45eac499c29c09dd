"""Bounds, manual identities, verified and typed links, keyed fingerprints (pure)."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_crm_sink.fingerprints import erasure_fingerprint
from socialcrm_crm_sink.identities import channel_identities, manual_identity, typed_identities
from socialcrm_crm_sink.limits import (
    MAX_HISTORY_ENTRIES,
    MAX_IDENTITIES_PER_CONTACT,
    history_push,
    identities_fit,
)
from socialcrm_crm_sink.settings import CrmSinkSettings


def test_history_keeps_the_newest_entries_and_counts_the_dropped() -> None:
    entry = {"by": "agent-1"}
    assert history_push(entry, 0) == {
        "$push": {"history": {"$each": [entry], "$slice": -MAX_HISTORY_ENTRIES}}
    }
    assert "$inc" not in history_push(entry, MAX_HISTORY_ENTRIES - 1)
    assert history_push(entry, MAX_HISTORY_ENTRIES)["$inc"] == {"history_dropped": 1}


def test_identities_per_contact_are_bounded() -> None:
    assert identities_fit(MAX_IDENTITIES_PER_CONTACT - 1, 1)
    assert not identities_fit(MAX_IDENTITIES_PER_CONTACT, 1)
    assert not identities_fit(30, 21)


@pytest.mark.parametrize("value", ["  @  ", "@", "", " ", "a b", "x\x00y"])
def test_blank_or_garbled_manual_identities_are_refused(value: str) -> None:
    assert manual_identity("x", value) is None


def test_manual_identities_are_normalised_as_automatic_ones() -> None:
    assert manual_identity("x", "  @Jean_Dupont ") == {
        "key": "x:jean_dupont",
        "channel": "x",
        "handle": "jean_dupont",
    }
    phone = manual_identity("phone", "06 12 34 56 78")
    assert phone is not None
    assert phone["key"] == "phone:+33612345678"
    assert manual_identity("phone", "+ ") is None


def chat_message(visitor_email: str, text: str) -> interaction_pb2.Interaction:
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(channel=common_pb2.CHANNEL_CHAT),
        author=common_pb2.Author(handle=visitor_email),
        is_public=False,
        text=text,
    )


def test_the_channel_vouches_for_the_author_address_not_for_typed_ones() -> None:
    message = chat_message("a@example.com", "mon autre email est b@example.com, a@example.com")
    verified = channel_identities(message, "chat:a@example.com")
    assert [i["key"] for i in verified] == ["email:a@example.com"]
    typed = typed_identities(message, {"chat:a@example.com", "email:a@example.com"})
    assert [i["key"] for i in typed] == ["email:b@example.com"]


def test_a_public_post_links_nothing_it_quotes() -> None:
    post = chat_message("someone", "écrivez à b@example.com")
    post.is_public = True
    assert typed_identities(post, {"x:someone"}) == []


def test_fingerprints_are_keyed() -> None:
    key = "phone:+33612345678"
    keyed = erasure_fingerprint(key, "a-secret-of-16-chars")
    assert keyed != hashlib.sha256(key.encode()).hexdigest()
    assert keyed != erasure_fingerprint(key, "another-secret-of-16")
    assert keyed == erasure_fingerprint(key, "a-secret-of-16-chars")


def test_crm_sink_refuses_to_start_without_a_fingerprint_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CRM_FINGERPRINT_SECRET", raising=False)
    monkeypatch.delenv("CRM_FINGERPRINT_INSECURE_LOCAL", raising=False)
    with pytest.raises(ValidationError, match="CRM_FINGERPRINT_SECRET is required"):
        CrmSinkSettings()
    with pytest.raises(ValidationError, match="shorter than 16"):
        CrmSinkSettings(crm_fingerprint_secret="short")
    local = CrmSinkSettings(crm_fingerprint_insecure_local=True)
    assert local.fingerprint_secret()
    keyed = CrmSinkSettings(crm_fingerprint_secret="a-secret-of-16-chars")
    assert keyed.fingerprint_secret() == "a-secret-of-16-chars"
    assert "a-secret" not in repr(keyed)
