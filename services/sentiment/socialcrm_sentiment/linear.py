"""The fast head: multinomial logistic regression on dense + hashed features (numpy only).

Trained by full-batch Adam on the cross-entropy with class weights (the neutral class is
rare in the training pool) and an L2 penalty: deterministic, no random state at all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialcrm_sentiment.features import HASHED_FEATURES, Features

CLASSES = ("negative", "neutral", "positive")
Matrix = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class LinearHead:
    dense_weights: Matrix  # (dense features, 3)
    hashed_weights: Matrix  # (HASHED_FEATURES, 3)
    bias: Matrix  # (3,)

    def logits(self, features: Features) -> Matrix:
        out = features.dense @ self.dense_weights + self.bias
        contributions = self.hashed_weights[features.columns] * features.values[:, None]
        starts = np.flatnonzero(np.r_[True, features.rows[1:] != features.rows[:-1]])
        out[features.rows[starts]] += np.add.reduceat(contributions, starts, axis=0)
        return out.astype(np.float32)

    def probabilities(self, features: Features) -> Matrix:
        return softmax(self.logits(features))


def softmax(logits: Matrix) -> Matrix:
    shifted: Matrix = np.exp(logits - logits.max(axis=1, keepdims=True)).astype(np.float32)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def train_head(
    features: Features,
    labels: np.ndarray[Any, np.dtype[np.int64]],
    *,
    epochs: int = 80,
    learning_rate: float = 0.05,
    l2: float = 1e-5,
) -> LinearHead:
    n, dense_size = features.dense.shape
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float32)
    # Balanced class weights, capped so a handful of neutral snippets cannot dominate.
    class_weights = np.minimum(n / (len(CLASSES) * np.maximum(counts, 1)), 5.0)
    sample_weights = (class_weights[labels] / class_weights[labels].sum()).astype(np.float32)
    target = np.eye(len(CLASSES), dtype=np.float32)[labels]
    parameters = [
        np.zeros((dense_size, len(CLASSES)), np.float32),
        np.zeros((HASHED_FEATURES, len(CLASSES)), np.float32),
        np.zeros(len(CLASSES), np.float32),
    ]
    first = [np.zeros_like(p) for p in parameters]
    second = [np.zeros_like(p) for p in parameters]
    for epoch in range(1, epochs + 1):
        head = LinearHead(*parameters)
        probabilities = head.probabilities(features)
        error = (probabilities - target) * sample_weights[:, None]
        hashed_gradient = np.stack(
            [
                np.bincount(
                    features.columns,
                    weights=features.values * error[features.rows, k],
                    minlength=HASHED_FEATURES,
                )
                for k in range(len(CLASSES))
            ],
            axis=1,
        )
        gradients = [
            features.dense.T @ error + l2 * parameters[0],
            hashed_gradient.astype(np.float32) + l2 * parameters[1],
            error.sum(axis=0),
        ]
        for parameter, gradient, m, v in zip(parameters, gradients, first, second, strict=True):
            m *= 0.9
            m += 0.1 * gradient
            v *= 0.999
            v += 0.001 * gradient * gradient
            corrected = (m / (1 - 0.9**epoch)) / (np.sqrt(v / (1 - 0.999**epoch)) + 1e-8)
            parameter -= (learning_rate * corrected).astype(np.float32)
        if epoch % 25 == 0 or epoch == epochs:
            loss = -float(
                (np.log(probabilities[np.arange(n), labels] + 1e-9) * sample_weights).sum()
            )
            print(
                f"  epoch {epoch}/{epochs}: weighted loss {loss:.4f}", file=sys.stderr, flush=True
            )
    return LinearHead(*parameters)
