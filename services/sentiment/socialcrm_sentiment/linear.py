"""Linear heads on dense + hashed features (numpy only): the fast sentiment head
(multinomial logistic regression, three classes), the intent head (multinomial, six
classes) and the urgency head (independent logistic outputs, a post can carry several).

Trained by full-batch Adam on the cross-entropy with class weights (rare classes weigh
more) and an L2 penalty: deterministic, no random state at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
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
    classes: int = len(CLASSES),
    epochs: int = 80,
    learning_rate: float = 0.05,
    l2: float = 1e-5,
    soft_targets: Matrix | None = None,
    post_weights: Matrix | None = None,
) -> LinearHead:
    """A multinomial head (one class per post) over ``classes`` classes. ``soft_targets``,
    when given, (n, classes) probabilities the head learns instead of the labels (a
    teacher's reading mixed in); the labels still set the class weights. ``post_weights``,
    when given, multiply each post's class weight (one source of posts weighing more)."""
    n = len(labels)
    counts = np.bincount(labels, minlength=classes).astype(np.float32)
    # Balanced class weights, capped so a handful of rare-class posts cannot dominate.
    class_weights = np.minimum(n / (classes * np.maximum(counts, 1)), 5.0)
    weighted = class_weights[labels] * (1.0 if post_weights is None else post_weights)
    sample_weights = (weighted / weighted.sum()).astype(np.float32)
    target = np.eye(classes, dtype=np.float32)[labels] if soft_targets is None else soft_targets
    return _fit(features, target, sample_weights[:, None], softmax, epochs, learning_rate, l2)


def train_multilabel_head(
    features: Features,
    targets: Matrix,
    *,
    epochs: int = 80,
    learning_rate: float = 0.05,
    l2: float = 1e-5,
    positive_weight_cap: float = 20.0,
) -> LinearHead:
    """Independent logistic outputs (a post can carry several labels, or none): each
    output's positives weigh as much as its negatives, up to ``positive_weight_cap``."""
    n = len(targets)
    positives = targets.sum(axis=0)
    ratio = np.minimum((n - positives) / np.maximum(positives, 1), positive_weight_cap)
    weights = np.where(targets > 0, ratio[None, :], 1.0).astype(np.float32)
    weights /= weights.sum(axis=0, keepdims=True)
    return _fit(features, targets, weights, sigmoid, epochs, learning_rate, l2)


def sigmoid(logits: Matrix) -> Matrix:
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)


def adam_step(
    parameters: Sequence[np.ndarray[Any, Any]],
    gradients: Sequence[np.ndarray[Any, Any]],
    first: Sequence[np.ndarray[Any, Any]],
    second: Sequence[np.ndarray[Any, Any]],
    epoch: int,
    learning_rate: float,
) -> None:
    """One Adam update in place (betas 0.9 and 0.999), ``first`` and ``second`` the moment
    estimates kept across epochs (``epoch`` counts from 1)."""
    for parameter, gradient, m, v in zip(parameters, gradients, first, second, strict=True):
        m *= 0.9
        m += 0.1 * gradient
        v *= 0.999
        v += 0.001 * gradient * gradient
        corrected = (m / (1 - 0.9**epoch)) / (np.sqrt(v / (1 - 0.999**epoch)) + 1e-8)
        parameter -= (learning_rate * corrected).astype(np.float32)


def _fit(
    features: Features,
    target: Matrix,
    weights: Matrix,
    activation: Callable[[Matrix], Matrix],
    epochs: int,
    learning_rate: float,
    l2: float,
) -> LinearHead:
    """Full-batch Adam on the weighted cross-entropy of ``activation``'s outputs (softmax or
    sigmoid: the same gradient, output - target): deterministic, no random state at all."""
    dense_size = features.dense.shape[1]
    outputs = target.shape[1]
    parameters = [
        np.zeros((dense_size, outputs), np.float32),
        np.zeros((HASHED_FEATURES, outputs), np.float32),
        np.zeros(outputs, np.float32),
    ]
    first = [np.zeros_like(p) for p in parameters]
    second = [np.zeros_like(p) for p in parameters]
    for epoch in range(1, epochs + 1):
        predicted = activation(LinearHead(*parameters).logits(features))
        error = (predicted - target) * weights
        hashed_gradient = np.stack(
            [
                np.bincount(
                    features.columns,
                    weights=features.values * error[features.rows, k],
                    minlength=HASHED_FEATURES,
                )
                for k in range(outputs)
            ],
            axis=1,
        )
        gradients = [
            features.dense.T @ error + l2 * parameters[0],
            hashed_gradient.astype(np.float32) + l2 * parameters[1],
            error.sum(axis=0),
        ]
        adam_step(parameters, gradients, first, second, epoch, learning_rate)
        if epoch % 25 == 0 or epoch == epochs:
            if activation is softmax:
                terms = target * np.log(predicted + 1e-9)
            else:
                terms = np.log(np.where(target > 0, predicted, 1 - predicted) + 1e-9)
            loss = -float((terms * weights).sum())
            print(
                f"  epoch {epoch}/{epochs}: weighted loss {loss:.4f}", file=sys.stderr, flush=True
            )
    return LinearHead(*parameters)
