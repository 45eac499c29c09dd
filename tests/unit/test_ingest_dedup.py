"""The bounded memory of recently published event ids."""

from __future__ import annotations

from socialcrm_ingest.webhooks.dedup import RecentIds


def test_ids_are_unseen_until_remembered() -> None:
    recent = RecentIds(10)
    assert recent.unseen(["a", "b"]) == ["a", "b"]
    recent.remember(["a", "b"])
    assert recent.unseen(["a", "c", "b"]) == ["c"]


def test_an_id_repeated_in_one_batch_is_unseen_once() -> None:
    assert RecentIds(10).unseen(["a", "b", "a"]) == ["a", "b"]


def test_the_least_recently_seen_ids_are_forgotten_past_the_capacity() -> None:
    recent = RecentIds(2)
    recent.remember(["a", "b"])
    recent.unseen(["a"])  # a redelivery keeps "a" fresh
    recent.remember(["c"])
    assert len(recent) == 2
    assert "a" in recent
    assert "b" not in recent


def test_capacity_zero_remembers_nothing() -> None:
    recent = RecentIds(0)
    recent.remember(["a"])
    assert recent.unseen(["a"]) == ["a"]
