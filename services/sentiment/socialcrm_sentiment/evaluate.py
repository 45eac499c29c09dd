"""``python -m socialcrm_sentiment.evaluate``: accuracy of the enrichment on the seed sets.

Prints, per language, accuracy and macro-F1 of sentiment and intent, precision and
recall of urgency signals, language detection accuracy, and posts per second.
The seed sets are labelled by hand (see data/LABELLING.md).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from importlib import resources

from socialcrm.v1 import common_pb2
from socialcrm_sentiment.enrich import assess
from socialcrm_sentiment.language import detect_language

LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Example:
    text: str
    sentiment: str
    intent: str
    urgency: frozenset[str]


@dataclass(frozen=True)
class Scores:
    language_accuracy: float
    sentiment_accuracy: float
    sentiment_macro_f1: float
    intent_accuracy: float
    intent_macro_f1: float
    urgency_precision: float
    urgency_recall: float


def seed_set(language: str) -> list[Example]:
    lines = resources.files("socialcrm_sentiment.data").joinpath(f"seed_{language}.jsonl")
    return [
        Example(row["text"], row["sentiment"], row["intent"], frozenset(row["urgency"]))
        for row in map(json.loads, lines.read_text(encoding="utf-8").splitlines())
    ]


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    f1s = []
    for label in sorted(set(truth)):
        tp = sum(t == p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(p == label != t for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label != p for t, p in zip(truth, predicted, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def _name(value: int, enum: str) -> str:
    descriptor = common_pb2.DESCRIPTOR.enum_types_by_name[enum]
    return descriptor.values_by_number[value].name.split("_", 1)[1].lower()


def evaluate(language: str) -> Scores:
    examples = seed_set(language)
    detected, sentiments, intents = [], [], []
    true_signals = found_signals = matched_signals = 0
    for example in examples:
        detected.append(detect_language(example.text)[0])
        assessment = assess(example.text, language)
        sentiments.append(_name(assessment.polarity, "Polarity"))
        intents.append(_name(assessment.intent, "Intent"))
        signals = set(assessment.signals)
        true_signals += len(example.urgency)
        found_signals += len(signals)
        matched_signals += len(signals & example.urgency)
    truth_sentiment = [e.sentiment for e in examples]
    truth_intent = [e.intent for e in examples]
    n = len(examples)
    return Scores(
        language_accuracy=sum(d == language for d in detected) / n,
        sentiment_accuracy=sum(map(str.__eq__, truth_sentiment, sentiments)) / n,
        sentiment_macro_f1=macro_f1(truth_sentiment, sentiments),
        intent_accuracy=sum(map(str.__eq__, truth_intent, intents)) / n,
        intent_macro_f1=macro_f1(truth_intent, intents),
        urgency_precision=matched_signals / found_signals if found_signals else 1.0,
        urgency_recall=matched_signals / true_signals if true_signals else 1.0,
    )


def posts_per_second(repeat: int = 20) -> float:
    texts = [e.text for language in LANGUAGES for e in seed_set(language)]
    started = time.perf_counter()
    for _ in range(repeat):
        for text in texts:
            assess(text, detect_language(text)[0])
    return repeat * len(texts) / (time.perf_counter() - started)


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m socialcrm_sentiment.evaluate", description=__doc__
    ).parse_args()
    for language in LANGUAGES:
        scores = evaluate(language)
        print(f"[{language}] {len(seed_set(language))} labelled posts")
        for field, value in vars(scores).items():
            print(f"  {field:<22}{value:6.2f}")
    detect_language("warm-up")
    print(
        f"speed: {posts_per_second():,.0f} posts/s on one core"
        " (language, sentiment, intent, urgency)"
    )


if __name__ == "__main__":
    main()
