"""The e5 teacher of the fast head: its sample, its cache and the targets it mixes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialcrm_sentiment.linear import train_head
from socialcrm_sentiment.teacher import embed_cached, sample_of, soft_labels, taught_targets
from tests.fixtures.sentiment_models import fast


def test_the_sample_is_seeded_and_a_prefix_of_a_larger_one() -> None:
    assert sample_of(100, 10).tolist() == sample_of(100, 10).tolist()
    assert sample_of(100, 20)[:10].tolist() == sample_of(100, 10).tolist()
    assert len(set(sample_of(100, 100).tolist())) == 100


def test_cached_embeddings_are_read_without_the_model(tmp_path: Path) -> None:
    cache = tmp_path / "e5.npz"
    vectors = np.eye(3, 384, dtype=np.float32)
    np.savez(cache, texts=np.asarray(["a", "b", "c"]), vectors=vectors)
    assert np.array_equal(embed_cached(["c", "a"], cache), vectors[[2, 0]])


def test_the_teacher_reads_three_classes(tmp_path: Path) -> None:
    cache = tmp_path / "e5.npz"
    np.savez(cache, texts=np.asarray(["x"]), vectors=np.full((1, 384), 0.05, np.float32))
    probabilities = soft_labels(["x"], cache)
    assert probabilities.shape == (1, 3)
    assert float(probabilities.sum()) == pytest.approx(1.0, abs=1e-5)


def test_the_teacher_is_mixed_into_the_taught_posts_only() -> None:
    labels = np.asarray([0, 1, 2], dtype=np.int64)
    teacher = np.asarray([[0.2, 0.2, 0.6]], dtype=np.float32)
    targets = taught_targets(labels, np.asarray([2]), teacher, 0.5)
    assert targets[:2].tolist() == [[1, 0, 0], [0, 1, 0]]
    assert targets[2] == pytest.approx([0.1, 0.1, 0.8])


def test_a_head_follows_the_soft_targets() -> None:
    texts = ["super", "nul", "bof"] * 6
    features = fast().features(texts, ["fr"] * len(texts))
    labels = np.asarray([2, 0, 1] * 6, dtype=np.int64)
    # The teacher disagrees about "bof": it reads it as negative.
    soft = np.eye(3, dtype=np.float32)[np.asarray([2, 0, 0] * 6)]
    head = train_head(features, labels, epochs=60, soft_targets=soft)
    assert head.probabilities(features).argmax(axis=1)[:3].tolist() == [2, 0, 0]
