"""Strong identity keys found in messages (pure)."""

from __future__ import annotations

from socialcrm_crm_sink.identities import IdentityKind, normalize_phone, strong_identities_in_text


def keys(text: str) -> list[str]:
    return [identity["key"] for identity in strong_identities_in_text(text)]


def test_email_in_a_french_dm() -> None:
    assert keys("mon email est Jean@Example.com") == ["email:jean@example.com"]


def test_phone_numbers_are_normalised() -> None:
    assert keys("appelez-moi au 06 12 34 56 78") == ["phone:+33612345678"]
    assert keys("call +33 6 12 34 56 78") == ["phone:+33612345678"]
    assert normalize_phone("06.12.34.56.78") == "+33612345678"


def test_customer_number_is_not_read_as_a_phone() -> None:
    assert keys("client n° 12345678") == ["customer_number:12345678"]


def test_plain_text_has_no_strong_key() -> None:
    assert keys("commande 2024 jamais livrée, 3 jours de retard") == []


def test_one_identity_kind_says_what_links_what_is_searched_and_what_an_admin_links() -> None:
    strong = [k for k in IdentityKind if k.strong]
    handles = [k for k in IdentityKind if k.handle]
    linkable = [k for k in IdentityKind if k.linkable_by_hand]
    assert strong == ["email", "phone", "customer_number"]
    assert handles == ["x", "facebook", "instagram", "youtube", "forum", "community", "chat"]
    assert linkable == ["x", "facebook", "instagram", "email", "phone", "customer_number"]
