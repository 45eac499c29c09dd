"""The fast default sentiment model: static e5 + n-grams + lexicon score, linear heads.

Three classes (negative, neutral, positive) for a whole batch at once; the probability of
the predicted class is its confidence, and posts under the threshold calibrated on the dev
set are the ones the cascade sends to the accurate e5 head. Two heads read the same
features: the posts head (social posts, replies, messages: trained on the care posts) and,
when shipped, the review head (``kind == "review"``: Google and TripAdvisor reviews, trained
on the review texts as well), since what helps one genre cost the other (issue 28).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from socialcrm_sentiment.features import Features, extract
from socialcrm_sentiment.linear import CLASSES, LinearHead
from socialcrm_sentiment.static_e5 import StaticE5, load_table

HEAD_FILE = "fast_sentiment_head.npz"
REVIEW_HEAD_FILE = "fast_review_head.npz"
NEGATIVE, NEUTRAL, POSITIVE = range(len(CLASSES))


@dataclass(frozen=True)
class Readings:
    """Per post: class index, score in [-1, 1] (P(positive) - P(negative)), confidence,
    and the three probabilities."""

    labels: np.ndarray[Any, np.dtype[np.int64]]
    scores: np.ndarray[Any, np.dtype[np.float32]]
    confidences: np.ndarray[Any, np.dtype[np.float32]]
    probabilities: np.ndarray[Any, np.dtype[np.float32]]


def save_head(path: Path, head: LinearHead, threshold: float, metadata: dict[str, Any]) -> None:
    np.savez_compressed(
        path,
        dense_weights=head.dense_weights.astype(np.float32),
        hashed_weights=head.hashed_weights.astype(np.float16),
        bias=head.bias.astype(np.float32),
        threshold=np.float32(threshold),
        metadata=np.asarray(json.dumps(metadata, sort_keys=True)),
    )


@dataclass(frozen=True)
class StoredHead:
    """A head as shipped: its weights, confidence threshold and training record."""

    head: LinearHead
    threshold: float
    metadata: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def load_head(name: str) -> StoredHead | None:
    """The package's head file ``name``, None when it is not shipped."""
    path = resources.files("socialcrm_sentiment.data").joinpath(name)
    if not path.is_file():
        return None
    with np.load(io.BytesIO(path.read_bytes())) as archive:
        return StoredHead(
            LinearHead(
                archive["dense_weights"],
                archive["hashed_weights"].astype(np.float32),
                archive["bias"],
            ),
            float(archive["threshold"]),
            json.loads(str(archive["metadata"])),
        )


class FastSentiment:
    """Loads the token table and the heads once (about 35 MB in memory)."""

    def __init__(self, table: StaticE5 | None = None) -> None:
        self.table = table or load_table()
        posts = load_head(HEAD_FILE)
        if posts is None:
            raise FileNotFoundError(f"the fast head (data/{HEAD_FILE}) is not in the package")
        self.head, self.threshold, self.metadata = posts.head, posts.threshold, posts.metadata
        self.version = posts.version
        self.review: StoredHead | None = load_head(REVIEW_HEAD_FILE)

    def features(self, texts: Sequence[str], languages: Sequence[str]) -> Features:
        return extract(texts, languages, self.table)

    def read(self, texts: Sequence[str], languages: Sequence[str]) -> Readings:
        if not texts:
            empty = np.zeros(0, np.float32)
            return Readings(np.zeros(0, np.int64), empty, empty, np.zeros((0, 3), np.float32))
        return self.read_features(self.features(texts, languages))

    def read_features(self, features: Features) -> Readings:
        """The readings of a batch whose features are already extracted (the intent and
        urgency heads read the same features)."""
        return readings_of(self.head.probabilities(features))

    def with_reviews(
        self,
        probabilities: np.ndarray[Any, np.dtype[np.float32]],
        features: Features,
        reviews: np.ndarray[Any, np.dtype[np.int64]],
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The posts head's ``probabilities`` of a batch, with the review head's instead for
        the rows ``reviews`` (unchanged without a review head)."""
        if self.review is None or not len(reviews):
            return probabilities
        mixed = probabilities.copy()
        mixed[reviews] = self.review.head.probabilities(features.take(reviews))
        return mixed


def readings_of(probabilities: np.ndarray[Any, np.dtype[np.float32]]) -> Readings:
    """Class, score and confidence from the head's (n, 3) probabilities."""
    return Readings(
        labels=probabilities.argmax(axis=1),
        scores=probabilities[:, POSITIVE] - probabilities[:, NEGATIVE],
        confidences=probabilities.max(axis=1),
        probabilities=probabilities,
    )
