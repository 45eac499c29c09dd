"""Learned intent and urgency (pure once loaded): two heads on the fast model's features
(static e5, n-grams, lexicon score) plus the rules' matches as ten more inputs.

- intent: one multinomial head over the six intents, linear on the n-grams with one small
  hidden layer on the dense features (``hidden_layer.py``); a per-intent offset added to
  its log-probabilities, chosen on held-out predictions, trades precision for the recall
  the router needs (a complaint or a churn threat missed costs more than a false alarm);
- urgency: one logistic output per signal (a post can carry several, or none), each with
  its own threshold chosen on held-out predictions.

The rules are inputs, not overrides: where a rule's match is reliable the head learns to
follow it, where it misfires the head learns to discount it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from socialcrm.v1 import common_pb2
from socialcrm_sentiment.features import Features
from socialcrm_sentiment.hidden_layer import HiddenLayer
from socialcrm_sentiment.intent import RULES as INTENT_RULES
from socialcrm_sentiment.linear import LinearHead, sigmoid, softmax
from socialcrm_sentiment.urgency import SIGNALS as SIGNAL_RULES

HEAD_FILE = "understanding_head.npz"
# Names as in LABELLING.md and the care files; the head's outputs follow this order.
INTENTS = ("churn_threat", "purchase_intent", "complaint", "question", "praise", "other")
SIGNALS = tuple(SIGNAL_RULES)
INTENT_VALUES: dict[str, common_pb2.Intent.ValueType] = {
    "churn_threat": common_pb2.INTENT_CHURN_THREAT,
    "purchase_intent": common_pb2.INTENT_PURCHASE_INTENT,
    "complaint": common_pb2.INTENT_COMPLAINT,
    "question": common_pb2.INTENT_QUESTION,
    "praise": common_pb2.INTENT_PRAISE,
    "other": common_pb2.INTENT_OTHER,
}
Matrix = np.ndarray[Any, np.dtype[np.float32]]


def rule_matches(texts: Sequence[str]) -> Matrix:
    """(n, 10): 1 where an intent rule (churn, purchase, complaint, question) or an urgency
    signal's rule matches the post."""
    patterns = [pattern for _, pattern in INTENT_RULES] + list(SIGNAL_RULES.values())
    return np.asarray(
        [
            [1.0 if pattern.search(lowered) else 0.0 for pattern in patterns]
            for lowered in (text.lower() for text in texts)
        ],
        dtype=np.float32,
    ).reshape(len(texts), len(patterns))


def with_rules(features: Features, texts: Sequence[str], matches: Matrix | None = None) -> Features:
    """The fast model's features with the rules' matches (``matches``, when already
    searched) appended to the dense part."""
    found = rule_matches(texts) if matches is None else matches
    dense = np.hstack([features.dense, found]).astype(np.float32)
    return Features(dense, features.rows, features.columns, features.values)


@dataclass(frozen=True)
class Understanding:
    """Per post: the intent's index in ``INTENTS``, and the signals found (in ``SIGNALS``
    order)."""

    intents: np.ndarray[Any, np.dtype[np.int64]]
    signals: list[list[str]]


@dataclass(frozen=True)
class UnderstandingHeads:
    intent: LinearHead
    intent_offsets: Matrix  # (6,), added to the log-probabilities
    urgency: LinearHead
    urgency_thresholds: Matrix  # (6,), on each signal's probability
    metadata: dict[str, Any]
    intent_hidden: HiddenLayer | None = None  # added to the intent head's logits

    def intent_logits(self, features: Features) -> Matrix:
        logits = self.intent.logits(features)
        if self.intent_hidden is not None:
            logits += self.intent_hidden.logits(features.dense)
        return logits

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    def intent_probabilities(self, features: Features) -> Matrix:
        return softmax(self.intent_logits(features))

    def signal_probabilities(self, features: Features) -> Matrix:
        return sigmoid(self.urgency.logits(features))

    def read(self, features: Features) -> Understanding:
        """``features``: the fast model's features ``with_rules``."""
        return self.decide(self.intent_logits(features), self.urgency.logits(features))

    def decide(self, intent_logits: Matrix, urgency_logits: Matrix) -> Understanding:
        return self.choose(softmax(intent_logits), sigmoid(urgency_logits))

    def choose(self, intent_probabilities: Matrix, signal_probabilities: Matrix) -> Understanding:
        log_probabilities = np.log(intent_probabilities + 1e-9)
        intents = (log_probabilities + self.intent_offsets).argmax(axis=1)
        found = signal_probabilities >= self.urgency_thresholds
        signals = [[SIGNALS[k] for k in np.flatnonzero(row)] for row in found]
        return Understanding(intents.astype(np.int64), signals)


class JointHead:
    """The fast sentiment head and both understanding heads as one linear map over the
    features ``with_rules``: the hashed n-grams are gathered once for all 15 outputs (the
    default path's speed budget), the intent head's hidden layer added to its outputs. The
    sentiment head ignores the rules' columns."""

    def __init__(self, sentiment: LinearHead, heads: UnderstandingHeads) -> None:
        rules = heads.intent.dense_weights.shape[0] - sentiment.dense_weights.shape[0]
        sentiment_dense = np.vstack(
            [sentiment.dense_weights, np.zeros((rules, sentiment.bias.shape[0]), np.float32)]
        )
        self.heads = heads
        self.classes = int(sentiment.bias.shape[0])
        self.head = LinearHead(
            np.hstack([sentiment_dense, heads.intent.dense_weights, heads.urgency.dense_weights]),
            np.hstack(
                [
                    sentiment.hashed_weights,
                    heads.intent.hashed_weights,
                    heads.urgency.hashed_weights,
                ]
            ),
            np.concatenate([sentiment.bias, heads.intent.bias, heads.urgency.bias]),
        )

    def read(self, features: Features) -> tuple[Matrix, Understanding]:
        """(the sentiment head's probabilities, the understanding) of a batch."""
        logits = self.head.logits(features)
        split = self.classes + len(INTENTS)
        if self.heads.intent_hidden is not None:
            logits[:, self.classes : split] += self.heads.intent_hidden.logits(features.dense)
        understanding = self.heads.decide(logits[:, self.classes : split], logits[:, split:])
        return softmax(logits[:, : self.classes]), understanding


def save_heads(path: Path, heads: UnderstandingHeads) -> None:
    arrays: dict[str, Any] = {
        "intent_offsets": heads.intent_offsets.astype(np.float32),
        "urgency_thresholds": heads.urgency_thresholds.astype(np.float32),
        "metadata": np.asarray(json.dumps(heads.metadata, sort_keys=True)),
    }
    for name, head in (("intent", heads.intent), ("urgency", heads.urgency)):
        arrays[f"{name}_dense"] = head.dense_weights.astype(np.float32)
        arrays[f"{name}_hashed"] = head.hashed_weights.astype(np.float16)
        arrays[f"{name}_bias"] = head.bias.astype(np.float32)
    if heads.intent_hidden is not None:
        for name, value in vars(heads.intent_hidden).items():
            arrays[f"intent_hidden_{name}"] = value.astype(np.float32)
    np.savez_compressed(path, **arrays)


def load_heads(path: Path | None = None) -> UnderstandingHeads:
    """The shipped heads, or those saved at ``path``."""
    package = resources.files("socialcrm_sentiment.data").joinpath(HEAD_FILE)
    raw = path.read_bytes() if path is not None else package.read_bytes()
    with np.load(io.BytesIO(raw)) as archive:
        intent, urgency = (
            LinearHead(
                archive[f"{name}_dense"],
                archive[f"{name}_hashed"].astype(np.float32),
                archive[f"{name}_bias"],
            )
            for name in ("intent", "urgency")
        )
        hidden = None
        if "intent_hidden_weights_in" in archive.files:
            hidden = HiddenLayer(
                **{
                    name: archive[f"intent_hidden_{name}"]
                    for name in ("mean", "scale", "weights_in", "bias_in", "weights_out")
                }
            )
        return UnderstandingHeads(
            intent=intent,
            intent_offsets=archive["intent_offsets"],
            urgency=urgency,
            urgency_thresholds=archive["urgency_thresholds"],
            metadata=json.loads(str(archive["metadata"])),
            intent_hidden=hidden,
        )
