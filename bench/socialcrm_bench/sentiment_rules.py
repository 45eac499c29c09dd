"""Per-class precision and recall of the intent and urgency rules, for bench/sentiment.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from socialcrm.v1 import common_pb2
from socialcrm_bench.sentiment_sets import REPO
from socialcrm_sentiment.enrich import assess
from socialcrm_sentiment.language import detect_language

_DATA = REPO / "services" / "sentiment" / "socialcrm_sentiment" / "data"


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
