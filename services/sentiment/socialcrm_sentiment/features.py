"""Features of the fast sentiment head, for a whole batch of posts at once (pure numpy).

- static e5: the weighted mean of the post's token vectors (``static_e5.py``), 384 numbers;
- the lexicon score (VADER with our care terms in English, the French lexicon with negation
  and sarcasm cues in French) and its positive and negative parts;
- hashed character 2-5-grams of each word with its spaces, and word 1-2-grams, into
  ``HASHED_FEATURES`` buckets, each counted 1/sqrt(n) for a post of n n-grams.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialcrm_sentiment.sentiment import score_sentiment
from socialcrm_sentiment.static_e5 import StaticE5
from socialcrm_sentiment.text import clean, tokens

HASH_BITS = 18
HASHED_FEATURES = 1 << HASH_BITS
CHAR_NGRAMS = (2, 3, 4, 5)
LEXICON_FEATURES = 4
_MIX = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(1_000_003)
_SEPARATOR = 0
_SHIFT = np.uint64(64 - HASH_BITS)
_WORD_SALT = np.uint64(0x5BD1E995)
_MEMO_LIMIT = 500_000

Matrix = np.ndarray[Any, np.dtype[np.float32]]
Indices = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Features:
    """``dense``: (n, static + lexicon); the hashed n-grams as sorted (row, column, value)
    triples, every row having at least one."""

    dense: Matrix
    rows: Indices
    columns: Indices
    values: Matrix

    def __len__(self) -> int:
        return int(self.dense.shape[0])

    def take(self, indices: Indices) -> Features:
        """The features of the rows ``indices`` (ascending), in that order."""
        position = np.full(len(self), -1, dtype=np.int64)
        position[indices] = np.arange(len(indices))
        kept = position[self.rows] >= 0
        return Features(
            self.dense[indices],
            position[self.rows[kept]],
            self.columns[kept],
            self.values[kept],
        )


_word_hashes: dict[str, int] = {}


def _word_hash(word: str) -> int:
    value = _word_hashes.get(word)
    if value is None:
        if len(_word_hashes) >= _MEMO_LIMIT:
            _word_hashes.clear()
        value = zlib.crc32(word.encode()) | (zlib.adler32(word.encode()) << 32)
        _word_hashes[word] = value
    return value


def _bucket(hashes: np.ndarray[Any, np.dtype[np.uint64]]) -> Indices:
    return ((hashes * _MIX) >> _SHIFT).astype(np.int64)


def _char_ngrams(cleaned: Sequence[str]) -> tuple[Indices, Indices]:
    """(row, bucket) of every character n-gram, all posts at once."""
    joined = "\x00" + "\x00".join(f" {' '.join(text.split())} " for text in cleaned) + "\x00"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    is_separator = codes == _SEPARATOR
    post_of = np.cumsum(is_separator) - 1
    separators_before = np.cumsum(is_separator)
    all_rows, all_buckets = [], []
    with np.errstate(over="ignore"):
        for n in CHAR_NGRAMS:
            count = len(codes) - n + 1
            hashes = np.full(count, np.uint64(n), dtype=np.uint64)
            for offset in range(n):
                hashes = hashes * _BASE + codes[offset : offset + count]
            # A window is inside one post when no separator lies within it.
            inside = separators_before[n - 1 : n - 1 + count] == separators_before[:count]
            inside &= ~is_separator[:count]
            all_rows.append(post_of[:count][inside])
            all_buckets.append(_bucket(hashes[inside]))
    return np.concatenate(all_rows), np.concatenate(all_buckets)


def _word_ngrams(word_lists: Sequence[list[str]]) -> tuple[Indices, Indices]:
    lengths = np.fromiter((len(words) for words in word_lists), dtype=np.int64)
    flat = np.fromiter(
        (_word_hash(word) for words in word_lists for word in words),
        dtype=np.uint64,
        count=int(lengths.sum()),
    )
    rows = np.repeat(np.arange(len(word_lists)), lengths)
    same_post = rows[1:] == rows[:-1]
    with np.errstate(over="ignore"):
        unigrams = _bucket(flat ^ _WORD_SALT)
        bigrams = _bucket((flat[:-1] * _BASE + flat[1:]) ^ (_WORD_SALT << np.uint64(1)))
    return (
        np.concatenate((rows, rows[:-1][same_post])),
        np.concatenate((unigrams, bigrams[same_post])),
    )


def lexicon_features(texts: Sequence[str], languages: Sequence[str]) -> Matrix:
    scores = np.fromiter(
        (
            score_sentiment(text, language)[1]
            for text, language in zip(texts, languages, strict=True)
        ),
        dtype=np.float32,
        count=len(texts),
    )
    french = np.fromiter((language == "fr" for language in languages), dtype=np.float32)
    return np.stack([scores, np.maximum(scores, 0), np.minimum(scores, 0), french], axis=1)


def extract(texts: Sequence[str], languages: Sequence[str], table: StaticE5) -> Features:
    cleaned = [clean(text).replace("\x00", " ").lower() for text in texts]
    dense = np.hstack([table.embed(cleaned), lexicon_features(texts, languages)])
    char_rows, char_buckets = _char_ngrams(cleaned)
    word_rows, word_buckets = _word_ngrams([tokens(text) for text in texts])
    rows = np.concatenate((char_rows, word_rows))
    buckets = np.concatenate((char_buckets, word_buckets))
    order = np.argsort(rows, kind="stable")
    rows, buckets = rows[order], buckets[order]
    per_row = np.bincount(rows, minlength=len(texts))
    values = (1.0 / np.sqrt(per_row[rows])).astype(np.float32)
    return Features(dense.astype(np.float32), rows, buckets, values)
