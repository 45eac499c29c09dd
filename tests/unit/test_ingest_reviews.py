from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import NORMALIZERS
from socialcrm_ingest.formats.reviews import normalize_google_reviews, normalize_tripadvisor_reviews

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def test_google_reviews_keep_their_star_rating() -> None:
    angry, happy = normalize_google_reviews(load("google_reviews/reviews_page1.json"), "acme", NOW)
    assert angry.header.channel == common_pb2.CHANNEL_GOOGLE_REVIEWS
    assert angry.header.external_id == "AbFvOqlLkK8Zr1Zq2Xy3Wv4Ut5Sr6Qp"
    assert angry.rating == 1
    assert angry.kind == "review"
    assert angry.author.display_name == "Marie Dubois"
    assert angry.text.startswith("Commande jamais livrée")
    assert angry.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 7, 45, 12, 482000, tzinfo=UTC
    )
    assert happy.rating == 5
    assert happy.author.display_name == ""  # isAnonymous: no name kept
    contract.validate(angry)


def test_a_google_review_without_comment_is_a_rating_alone() -> None:
    [review] = normalize_google_reviews(load("google_reviews/reviews_page2.json"), "acme", NOW)
    assert review.rating == 3
    assert review.text == ""


def test_a_location_without_reviews_gives_nothing() -> None:
    assert normalize_google_reviews({"averageRating": 0}, "acme", NOW) == []


def test_nanosecond_timestamps_are_read() -> None:
    review = load("google_reviews/reviews_page1.json")["reviews"][0]
    review["createTime"] = "2026-11-16T07:45:12.123456789Z"
    [interaction] = normalize_google_reviews(review, "acme", NOW)
    assert interaction.header.occurred_at.ToDatetime(tzinfo=UTC).microsecond == 123456


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("starRating", "STAR_RATING_UNSPECIFIED", "reviews[0].starRating"),
        ("reviewId", None, "reviews[0].reviewId is missing"),
        ("createTime", "16/11/2026", "reviews[0].createTime"),
        ("reviewer", "Marie", "reviews[0].reviewer is not an object"),
    ],
)
def test_google_reviews_out_of_shape_name_the_field(field: str, value: Any, message: str) -> None:
    body = copy.deepcopy(load("google_reviews/reviews_page1.json"))
    body["reviews"][0][field] = value
    with pytest.raises(PayloadError, match=re.escape(message)):
        normalize_google_reviews(body, "acme", NOW)


def test_tripadvisor_reviews_keep_rating_language_title_and_link() -> None:
    bad, good = normalize_tripadvisor_reviews(
        load("tripadvisor/location_reviews.json"), "acme", NOW
    )
    assert bad.header.channel == common_pb2.CHANNEL_TRIPADVISOR
    assert bad.header.external_id == "1034567891"
    assert bad.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_TRIPADVISOR, "1034567891"
    )
    assert bad.rating == 2
    assert bad.language_hint == "en"
    assert bad.text.startswith("Disappointing stay\nThe room was not cleaned")
    assert bad.author.display_name == "WanderingSam"
    assert bad.engagement.likes == 4
    assert bad.links[0].endswith("#review1034567891")
    assert good.rating == 5
    assert good.language_hint == "fr"
    contract.validate(good)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rating", 7, "data[0].rating"),
        ("rating", "5", "data[0].rating"),
        ("id", None, "data[0].id is missing"),
        ("published_date", None, "data[0].published_date is not an ISO 8601 date-time"),
    ],
)
def test_tripadvisor_reviews_out_of_shape_name_the_field(
    field: str, value: Any, message: str
) -> None:
    body = copy.deepcopy(load("tripadvisor/location_reviews.json"))
    body["data"][0][field] = value
    with pytest.raises(PayloadError, match=re.escape(message)):
        normalize_tripadvisor_reviews(body, "acme", NOW)


def test_one_review_alone_is_accepted_as_a_backfill_line() -> None:
    review = load("tripadvisor/location_reviews.json")["data"][1]
    [interaction] = NORMALIZERS["tripadvisor-reviews"](review, "acme", NOW)
    assert interaction.header.external_id == "1034512345"
    google = load("google_reviews/reviews_page1.json")["reviews"][0]
    [interaction] = NORMALIZERS["google-business-reviews"](google, "acme", NOW)
    assert interaction.rating == 1


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    children: list[tuple[Any, Any]]
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    else:
        return []
    paths = []
    for key, child in children:
        paths.append((*prefix, key))
        paths.extend(_leaf_paths(child, (*prefix, key)))
    return paths


ODD_VALUES: list[Any] = [None, "", "x", -1, 10**30, 1.5, True, [], {}, [None], "9999-99-99"]


@pytest.mark.parametrize(
    ("format_name", "fixture"),
    [
        ("youtube-comment-threads", "youtube/comment_threads_page1.json"),
        ("google-business-reviews", "google_reviews/reviews_page1.json"),
        ("tripadvisor-reviews", "tripadvisor/location_reviews.json"),
    ],
)
def test_any_field_of_any_type_gives_interactions_or_a_payload_error(
    format_name: str, fixture: str
) -> None:
    """Every field of the fixture replaced by odd values: never an unexpected exception."""
    original = load(fixture)
    normalize = NORMALIZERS[format_name]
    for path in _leaf_paths(original):
        for odd in ODD_VALUES:
            body = copy.deepcopy(original)
            target: Any = body
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = odd
            try:
                for interaction in normalize(body, "acme", NOW):
                    contract.validate(interaction)
            except PayloadError:
                pass


# Issue 25, finding 4: public display names acted as identities.
def google_review(review_id: str, **reviewer: Any) -> dict[str, Any]:
    review: dict[str, Any] = copy.deepcopy(load("google_reviews/reviews_page1.json")["reviews"][0])
    review["reviewId"] = review_id
    review["name"] = review["name"].rsplit("/", 1)[0] + "/" + review_id
    review["reviewer"] = {"profilePhotoUrl": review["reviewer"]["profilePhotoUrl"], **reviewer}
    return review


def tripadvisor_review(review_id: int, user: dict[str, Any] | None) -> dict[str, Any]:
    review: dict[str, Any] = copy.deepcopy(load("tripadvisor/location_reviews.json")["data"][0])
    review["id"] = review_id
    if user is None:
        del review["user"]
    else:
        review["user"] = user
    return review


def authors(reviews: list[interaction_pb2.Interaction]) -> list[common_pb2.Author]:
    return [review.author for review in reviews]


def test_a_google_reviewers_name_is_only_displayed_never_an_identity() -> None:
    namesake, other_namesake, email_as_name = authors(
        normalize_google_reviews(
            {
                "reviews": [
                    google_review("r1", displayName="Jean Dupont", isAnonymous=False),
                    google_review("r2", displayName="Jean Dupont", isAnonymous=False),
                    google_review("r3", displayName="camille.martin@example.fr"),
                ]
            },
            "acme",
            NOW,
        )
    )
    assert namesake.display_name == other_namesake.display_name == "Jean Dupont"
    # Google gives no reviewer id: each review's author is that review's alone.
    assert namesake.handle != other_namesake.handle
    assert email_as_name.display_name == "camille.martin@example.fr"
    for author in (namesake, other_namesake, email_as_name):
        assert author.handle.startswith("unidentified/")
        assert "Jean" not in author.handle
        assert "@" not in author.handle
        assert author.channel_user_id == ""
        assert not author.verified


def test_anonymous_reviewers_are_never_pooled() -> None:
    google = normalize_google_reviews(
        {
            "reviews": [
                google_review(f"anon-{i}", displayName="A Google user", isAnonymous=True)
                for i in range(3)
            ]
        },
        "acme",
        NOW,
    )
    tripadvisor = normalize_tripadvisor_reviews(
        {"data": [tripadvisor_review(100 + i, None) for i in range(3)]}, "acme", NOW
    )
    handles = [author.handle for author in authors(google + tripadvisor)]
    assert len(set(handles)) == 6
    assert "anonymous" not in handles
    assert all(author.display_name == "" for author in authors(google + tripadvisor))


def test_an_authors_handle_is_stable_across_polls_of_the_same_review() -> None:
    review = google_review("r1", displayName="Jean Dupont")
    [first] = normalize_google_reviews(review, "acme", NOW)
    [later] = normalize_google_reviews(review, "acme", datetime.now(UTC))
    assert first.author.handle == later.author.handle == f"unidentified/{first.header.event_id}"


def test_a_tripadvisor_username_is_only_displayed() -> None:
    first, second = normalize_tripadvisor_reviews(
        {
            "data": [
                tripadvisor_review(1, {"username": "Jean Dupont"}),
                tripadvisor_review(2, {"username": "Jean Dupont"}),
            ]
        },
        "acme",
        NOW,
    )
    assert first.author.display_name == second.author.display_name == "Jean Dupont"
    assert first.author.handle != second.author.handle
    assert first.author.channel_user_id == second.author.channel_user_id == ""
