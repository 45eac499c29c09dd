"""Per-class precision and recall of intent and urgency on the care test split, for
bench/sentiment.py: the bilingual rules (the lexicon path) and the service's default path
(the learned heads), each through the service's own code, language detection included."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from socialcrm.v1 import common_pb2, enriched_pb2, interaction_pb2
from socialcrm_bench.sentiment_sets import REPO
from socialcrm_sentiment.enrich import Enricher, enrich

_DATA = REPO / "services" / "sentiment" / "socialcrm_sentiment" / "data"
BATCH = 500


def care_rows() -> tuple[str, list[dict[str, Any]]]:
    """(where the rows come from, the rows): the care test split, or while it is missing
    the seed posts (in-sample)."""
    care_test = _DATA / "care" / "test.jsonl"
    if care_test.exists():
        return "care test split", _rows(care_test)
    rows = [
        {"lang": language, **row}
        for language in ("fr", "en")
        for row in _rows(_DATA / f"seed_{language}.jsonl")
    ]
    return "seed posts (in-sample)", rows


def _rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def interactions(rows: Sequence[dict[str, Any]]) -> list[interaction_pb2.Interaction]:
    return [interaction_pb2.Interaction(text=row["text"]) for row in rows]


def by_rules(rows: Sequence[dict[str, Any]]) -> list[enriched_pb2.EnrichedInteraction]:
    """The lexicon path: lexicon sentiment, intent and urgency rules."""
    return [enrich(interaction) for interaction in interactions(rows)]


def by_enricher(
    enricher: Enricher, rows: Sequence[dict[str, Any]]
) -> list[enriched_pb2.EnrichedInteraction]:
    posts = interactions(rows)
    enriched = []
    for start in range(0, len(posts), BATCH):
        enriched += enricher.enrich_many(posts[start : start + BATCH])
    return enriched


def class_scores(
    rows: Sequence[dict[str, Any]], enriched: Sequence[enriched_pb2.EnrichedInteraction]
) -> dict[str, dict[str, float]]:
    """Per-class precision and recall of the intent and of each urgency signal, and the
    intent's macro-F1 (under ``intent:macro_f1``)."""
    intent_pairs = [
        (row["intent"], intent_name(e.enrichment.intent))
        for row, e in zip(rows, enriched, strict=True)
    ]
    signal_pairs = [
        (set(row.get("urgency", [])), set(e.enrichment.urgency_signals))
        for row, e in zip(rows, enriched, strict=True)
    ]
    scores: dict[str, dict[str, float]] = {}
    f1s = []
    for label in sorted({truth for truth, _ in intent_pairs}):
        matched = sum(t == p == label for t, p in intent_pairs)
        found = sum(p == label for _, p in intent_pairs)
        true = sum(t == label for t, _ in intent_pairs)
        scores[f"intent:{label}"] = _precision_recall(matched, found, true)
        f1s.append(2 * matched / (found + true))
    for signal in sorted({s for truth, found in signal_pairs for s in truth | found}):
        scores[f"urgency:{signal}"] = _precision_recall(
            sum(signal in t and signal in f for t, f in signal_pairs),
            sum(signal in f for _, f in signal_pairs),
            sum(signal in t for t, _ in signal_pairs),
        )
    scores["intent:macro_f1"] = {"value": round(sum(f1s) / len(f1s), 3)}
    return scores


def intent_name(intent: int) -> str:
    return common_pb2.Intent.Name(intent).split("_", 1)[1].lower()  # type: ignore[arg-type]


def _precision_recall(matched: int, found: int, true: int) -> dict[str, float]:
    return {
        "precision": round(matched / found, 3) if found else 1.0,
        "recall": round(matched / true, 3) if true else 1.0,
        "support": float(true),
    }
