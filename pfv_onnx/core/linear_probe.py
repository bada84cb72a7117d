"""A linear probe: multinomial logistic (softmax) regression on frozen features, in NumPy and SciPy.

How well a linear classifier separates classes on a network's pooled features says how well those
features suit a new dataset (transfer learning). Standardised features, L2 penalty, L-BFGS; deterministic
for a given split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax


@dataclass(frozen=True)
class LinearProbe:
    """A fitted softmax regression: ``(C, K)`` ``weight``, ``(K,)`` ``bias``, and the standardisation."""

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """``(n, K)`` class probabilities of ``(n, C)`` features."""
        return softmax(((X - self.mean) / self.scale) @ self.weight + self.bias, axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.probabilities(X).argmax(axis=1)


def fit_probe(X: np.ndarray, y: np.ndarray, classes: int, l2: float = 1.0) -> LinearProbe:
    """Fit softmax regression on ``(n, C)`` features ``X`` and ``(n,)`` labels ``0..classes-1``.

    The loss is the mean cross-entropy plus ``l2 / (2 n) * |W|^2``; features are standardised first.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n, c = X.shape
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - mean) / scale
    onehot = np.eye(classes)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: c * classes].reshape(c, classes)
        b = theta[c * classes :]
        logits = Z @ W + b
        log_p = log_softmax(logits, axis=1)
        value = -np.sum(onehot * log_p) / n + l2 / (2 * n) * np.sum(W * W)
        delta = (np.exp(log_p) - onehot) / n
        grad_w = Z.T @ delta + l2 / n * W
        return value, np.concatenate([grad_w.ravel(), delta.sum(axis=0)])

    theta = minimize(loss, np.zeros(c * classes + classes), jac=True, method="L-BFGS-B", options={"maxiter": 500}).x
    return LinearProbe(theta[: c * classes].reshape(c, classes), theta[c * classes :], mean, scale)


def stratified_split(labels: np.ndarray, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded split that keeps ``test_share`` of each class (at least one) for testing."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held = max(1, round(len(members) * test_share)) if len(members) > 1 else 0
        test += members[:held].tolist()
        train += members[held:].tolist()
    return np.array(sorted(train), dtype=int), np.array(sorted(test), dtype=int)


def confusion(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (true, predicted), 1)
    return matrix
