"""Normalization of review feeds into Interaction events, star rating kept (pure logic).

- Google Business Profile: the ``accounts.locations.reviews.list`` response
  (``reviews[]``, ``nextPageToken``, ``averageRating``, ``totalReviewCount``) or one
  ``Review`` (``reviewId``, ``reviewer``, ``starRating`` ``ONE``..``FIVE``, ``comment``,
  ``createTime``, ``updateTime``, ``reviewReply``).
- TripAdvisor Content API: the location reviews response (``data[]``) or one review
  (``id``, ``lang``, ``location_id``, ``published_date``, ``rating``, ``title``,
  ``text``, ``url``, ``helpful_votes``, ``user.username``).

Neither API gives a reviewer's stable id: Google's ``reviewer`` is a display name, a photo
and ``isAnonymous``; TripAdvisor's ``user`` a public username. A name is anyone's to take
(two "Jean Dupont", or a customer's email address typed as one), so it goes to
``display_name`` only, and the author's handle is the review's own (``payload.item_author``):
a reviewer is never linked to anyone by name, and anonymous reviewers are never pooled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.payload import (
    PayloadError,
    as_object,
    count,
    header,
    iso_time,
    item_author,
    require,
)

STAR_RATINGS = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


def _list(payload: dict[str, Any], field: str) -> list[Any]:
    value = payload.get(field, [])
    if not isinstance(value, list):
        raise PayloadError(f"{field} is not a list")
    return value


def google_review_to_interaction(
    review: Any, *, brand: str, ingested_at: datetime, where: str
) -> interaction_pb2.Interaction:
    review = as_object(review, where)
    review_id = str(require(review, "reviewId", where))
    star_rating = review.get("starRating")
    if not isinstance(star_rating, str) or star_rating not in STAR_RATINGS:
        raise PayloadError(f"{where}.starRating {star_rating!r} is not one of ONE..FIVE")
    reviewer = as_object(review.get("reviewer") or {}, f"{where}.reviewer")
    anonymous = bool(reviewer.get("isAnonymous"))
    display_name = "" if anonymous else str(reviewer.get("displayName") or "")
    comment = review.get("comment") or ""
    if not isinstance(comment, str):
        raise PayloadError(f"{where}.comment is not a string")
    event_header = header(
        common_pb2.CHANNEL_GOOGLE_REVIEWS,
        review_id,
        iso_time(review.get("createTime"), f"{where}.createTime", ingested_at),
        ingested_at,
    )
    return interaction_pb2.Interaction(
        header=event_header,
        conversation_id=review_id,
        is_public=True,
        author=common_pb2.Author(handle=item_author(event_header), display_name=display_name),
        text=comment,
        raw_ref=f"google-reviews/{review.get('name') or review_id}",
        brand=brand,
        rating=STAR_RATINGS[star_rating],
        kind="review",
    )


def normalize_google_reviews(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of a ``reviews.list`` page (no ``reviews``: none yet), or of one review."""
    payload = as_object(payload, "body")
    if "reviewId" in payload:
        return [
            google_review_to_interaction(
                payload, brand=brand, ingested_at=ingested_at, where="review"
            )
        ]
    return [
        google_review_to_interaction(
            review, brand=brand, ingested_at=ingested_at, where=f"reviews[{index}]"
        )
        for index, review in enumerate(_list(payload, "reviews"))
    ]


def tripadvisor_review_to_interaction(
    review: Any, *, brand: str, ingested_at: datetime, where: str
) -> interaction_pb2.Interaction:
    review = as_object(review, where)
    review_id = str(require(review, "id", where))
    rating = review.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise PayloadError(f"{where}.rating {rating!r} is not a whole number from 1 to 5")
    user = as_object(review.get("user") or {}, f"{where}.user")
    username = str(user.get("username") or "")
    title = str(review.get("title") or "")
    text = str(review.get("text") or "")
    url = str(review.get("url") or "")
    event_header = header(
        common_pb2.CHANNEL_TRIPADVISOR,
        review_id,
        iso_time(review.get("published_date"), f"{where}.published_date", ingested_at),
        ingested_at,
    )
    return interaction_pb2.Interaction(
        header=event_header,
        conversation_id=review_id,
        is_public=True,
        author=common_pb2.Author(handle=item_author(event_header), display_name=username),
        # The title is often the gist of the review ("Never again"): keep it with the text.
        text=f"{title}\n{text}" if title and text else title or text,
        language_hint=str(review.get("lang") or ""),
        links=[url] if url else [],
        engagement=common_pb2.Engagement(
            likes=count(review.get("helpful_votes"), f"{where}.helpful_votes")
        ),
        raw_ref=f"tripadvisor/review/{review_id}",
        brand=brand,
        rating=rating,
        kind="review",
    )


def normalize_tripadvisor_reviews(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """Interactions of a location reviews response (``data[]``), or of one review."""
    payload = as_object(payload, "body")
    if "data" not in payload:
        if "id" in payload:
            return [
                tripadvisor_review_to_interaction(
                    payload, brand=brand, ingested_at=ingested_at, where="review"
                )
            ]
        raise PayloadError("data is missing")
    return [
        tripadvisor_review_to_interaction(
            review, brand=brand, ingested_at=ingested_at, where=f"data[{index}]"
        )
        for index, review in enumerate(_list(payload, "data"))
    ]
