"""The replay cache of our own webhooks' signatures (pure)."""

from __future__ import annotations

from socialcrm_ingest.security.replay import RecentSignatures

NOW = 1_790_000_000


def test_a_signature_is_claimed_once_inside_its_window() -> None:
    recent = RecentSignatures(window_seconds=300, max_entries=10)
    assert recent.claim("sha256=aa", NOW, NOW)
    assert not recent.claim("sha256=aa", NOW, NOW + 299)
    assert not recent.claim("SHA256=AA ", NOW, NOW + 1)
    assert recent.claim("sha256=bb", NOW, NOW + 1)


def test_signatures_are_forgotten_when_their_window_ends() -> None:
    recent = RecentSignatures(window_seconds=300, max_entries=10)
    recent.claim("sha256=aa", NOW, NOW)
    recent.claim("sha256=bb", NOW + 100, NOW + 100)
    recent.claim("sha256=cc", NOW + 200, NOW + 350)
    assert len(recent) == 2
    assert not recent.claim("sha256=bb", NOW + 100, NOW + 399)


def test_a_released_signature_may_be_used_again() -> None:
    recent = RecentSignatures(window_seconds=300, max_entries=10)
    recent.claim("sha256=aa", NOW, NOW)
    recent.release("sha256=aa")
    assert recent.claim("sha256=aa", NOW, NOW + 1)
    recent.release("sha256=never-claimed")


def test_the_cache_is_bounded_forgetting_the_oldest_first() -> None:
    recent = RecentSignatures(window_seconds=300, max_entries=3)
    for index in range(5):
        assert recent.claim(f"sha256={index}", NOW, NOW)
    assert len(recent) == 3
    assert recent.claim("sha256=0", NOW, NOW)
    assert not recent.claim("sha256=4", NOW, NOW)
