"""Strong identity keys found in messages, in time linear in the text (pure)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_crm_sink.identities import (
    MAX_KEYS_PER_TEXT,
    MAX_TEXT_SCANNED,
    IdentityKind,
    author_keys,
    normalize_phone,
    strong_identities_in_text,
)


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


# Texts that made the former patterns backtrack quadratically (a run of address or digit
# characters with no "@", a "client" followed by blanks, a domain of endless labels...).
PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "letters": lambda n: "a" * n,
    "digits": lambda n: "1" * n,
    "client and blanks": lambda n: "client" + " " * n,
    "clients": lambda n: "client n° " * (n // 10),
    "labels": lambda n: "a@" + "a." * (n // 2),
    "long labels": lambda n: ("b" * 63 + ".") * (n // 64),
    "at signs": lambda n: "a@" * (n // 2),
    "phone separators": lambda n: "1-" * (n // 2),
}


def cpu_cost(text: str) -> float:
    """CPU seconds of one search of ``text``: the least of a few trials, each repeating the
    search until it has a measurable share of this thread's time (other processes' load
    does not count in it)."""
    best = float("inf")
    for _ in range(3):
        calls = 0
        started = time.thread_time()
        while (spent := time.thread_time() - started) < 0.002 or calls == 0:
            strong_identities_in_text(text)
            calls += 1
        best = min(best, spent / calls)
    return best


@pytest.mark.parametrize("shape", PATHOLOGICAL)
def test_searching_a_hostile_text_costs_time_linear_in_its_length(shape: str) -> None:
    """Eight times the text costs about eight times the time, not sixty-four (quadratic)."""
    make = PATHOLOGICAL[shape]
    small, large = make(1_000), make(8_000)
    assert len(large) <= MAX_TEXT_SCANNED
    ratio = cpu_cost(large) / cpu_cost(small)
    assert ratio < 24, f"{shape}: 8 times the text cost {ratio:.0f} times the time"


def test_only_the_head_of_a_long_text_is_searched() -> None:
    padding = "blabla " * (MAX_TEXT_SCANNED // 7)
    assert keys(padding[: MAX_TEXT_SCANNED - 40] + " jean@example.com et la suite") == [
        "email:jean@example.com"
    ]
    # The cut falls inside the address: no half address ("jean@example.co") is found.
    cut_inside = padding[: MAX_TEXT_SCANNED - 14] + " jean@example.com"
    assert len(cut_inside) > MAX_TEXT_SCANNED
    assert keys(cut_inside) == []
    assert keys(padding * 10 + " jean@example.com") == []
    assert keys("x" * (MAX_TEXT_SCANNED + 10) + " jean@example.com") == []


def test_addresses_are_found_where_people_write_them() -> None:
    assert keys("écrivez-moi à jean.dupont@mail.example.co.uk.") == [
        "email:jean.dupont@mail.example.co.uk"
    ]
    assert keys("<Lea@Example.FR>, merci") == ["email:lea@example.fr"]
    assert keys("customer number: 1234567 / cust#98765") == [
        "customer_number:1234567",
        "customer_number:98765",
    ]
    assert keys("mon numéro client n°   12345678") == ["customer_number:12345678"]


def review(reviewer: str, review_id: str, *, user_id: str = "") -> interaction_pb2.Interaction:
    """A public review naming its author as the network shows it (a display name)."""
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(
            channel=common_pb2.CHANNEL_GOOGLE_REVIEWS, external_id=review_id
        ),
        conversation_id=review_id,
        author=common_pb2.Author(
            handle=reviewer or "anonymous", channel_user_id=user_id, display_name=reviewer
        ),
        is_public=True,
        text="Service lent",
        kind="review",
    )


def test_display_names_never_identify_nor_link_anyone() -> None:
    """Finding 4: two "Jean Dupont" are two people; a name that is an address links nothing."""
    first, second = (
        author_keys(review("Jean Dupont", "r1")),
        author_keys(review("Jean Dupont", "r2")),
    )
    assert first.identity["key"] != second.identity["key"]
    posing = author_keys(review("client@example.com", "r3"))
    assert "client@example.com" not in posing.identity["key"]
    assert posing.verified == posing.typed == posing.suggested == []
    anonymous = {author_keys(review("", f"r{i}")).identity["key"] for i in range(4, 7)}
    assert len(anonymous) == 3


def test_the_networks_stable_id_is_the_identity_where_names_are_display_names() -> None:
    renamed = [review(name, f"r{i}", user_id="UCx7Q") for i, name in enumerate(["Jo", "Jean"])]
    assert {author_keys(r).identity["key"] for r in renamed} == {"google_reviews:UCx7Q"}
    video = review("Jean Dupont", "c1", user_id="UCa9B")
    video.header.channel = common_pb2.CHANNEL_YOUTUBE
    assert author_keys(video).identity["key"] == "youtube:UCa9B"


def mail(sender: str, text: str, *, verified: bool) -> interaction_pb2.Interaction:
    return interaction_pb2.Interaction(
        header=common_pb2.EventHeader(channel=common_pb2.CHANNEL_EMAIL, external_id="m1"),
        conversation_id="m1",
        author=common_pb2.Author(handle=sender, channel_user_id=sender, verified=verified),
        is_public=False,
        text=text,
        kind="email",
    )


def test_an_unverified_sender_and_what_it_types_only_suggest() -> None:
    """Finding 3: without the gateway's DMARC pass, the From is a claim, not a key."""
    spoofed = author_keys(
        mail("victim@example.com", "my new address is a@evil.test", verified=False)
    )
    assert spoofed.identity["key"] == "unverified_email:victim@example.com"
    assert spoofed.verified == spoofed.typed == []
    assert [i["key"] for i in spoofed.suggested] == [
        "email:victim@example.com",
        "email:a@evil.test",
    ]
    proven = author_keys(
        mail("victim@example.com", "my new address is b@example.com", verified=True)
    )
    assert proven.identity["key"] == "email:victim@example.com"
    assert [i["key"] for i in proven.typed] == ["email:b@example.com"]
    assert proven.suggested == []


def test_only_a_member_platform_vouches_for_an_account_email() -> None:
    visitor = mail("Paul@Example.com", "bonjour", verified=False)
    visitor.header.channel = common_pb2.CHANNEL_CHAT
    keys_of_visitor = author_keys(visitor)
    assert keys_of_visitor.identity["key"] == "chat:paul@example.com"
    assert [i["key"] for i in keys_of_visitor.verified] == ["email:paul@example.com"]
    tweet = mail("paul@example.com", "bonjour", verified=False)
    tweet.header.channel = common_pb2.CHANNEL_X
    assert author_keys(tweet).verified == []


def test_a_message_gives_a_bounded_number_of_keys() -> None:
    listed = " ".join(f"client{i}@example.com" for i in range(500))
    found = keys(listed)
    assert len(found) == MAX_KEYS_PER_TEXT
    assert found[0] == "email:client0@example.com"
