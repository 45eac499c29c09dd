"""API keys and case transitions (pure)."""

from __future__ import annotations

import itertools

import pytest

from socialcrm_crm_sink.policy import InvalidApiKeys, can_move, parse_api_keys, presented_key


def test_api_keys_and_scopes() -> None:
    keys = parse_api_keys("key1=read,agent; key2=admin;")
    assert keys["key1"] == {"read", "agent"}
    assert keys["key2"] == {"read", "agent", "admin"}
    assert parse_api_keys("") == {}
    with pytest.raises(InvalidApiKeys):
        parse_api_keys("key3=superuser")
    with pytest.raises(InvalidApiKeys):
        parse_api_keys("key4")


def test_key_from_either_header() -> None:
    assert presented_key("Bearer abc", None) == "abc"
    assert presented_key(None, "xyz") == "xyz"
    assert presented_key("Basic abc", None) is None
    assert presented_key(None, None) is None


def test_case_lifecycle() -> None:
    path = ["new", "open", "pending_customer", "resolved", "closed"]
    for current, target in itertools.pairwise(path):
        assert can_move(current, target)
    assert not can_move("new", "closed")
    assert not can_move("closed", "open")
    assert can_move("resolved", "open")
