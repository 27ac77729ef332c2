"""From raw scores to probabilities: Platt scaling and the F1-maximising decision threshold."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from defectops.training.models.inputs import FloatArray


def sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return result


def platt_scaling(raw: FloatArray, y: npt.NDArray[np.int64], iterations: int = 100) -> tuple[float, float]:
    """Fit ``P(y=1) = sigmoid(a * raw + b)`` by Newton's method on Platt's (1999) smoothed targets
    ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``, which keep (a, b) finite even when the scores separate
    the classes perfectly."""
    n_pos = float(np.sum(y == 1))
    n_neg = float(len(y) - n_pos)
    target = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    center, spread = float(np.mean(raw)), float(np.std(raw)) or 1.0
    x = (raw - center) / spread
    a, b = 0.0, math.log((n_pos + 1.0) / (n_neg + 1.0))

    def loss(a_: float, b_: float) -> float:
        z = a_ * x + b_
        return float(np.sum(np.logaddexp(0.0, z) - target * z))

    current = loss(a, b)
    for _ in range(iterations):
        p = sigmoid(a * x + b)
        g = p - target
        h = np.maximum(p * (1.0 - p), 1e-12)
        grad = np.array([np.sum(g * x), np.sum(g)])
        hess = np.array([[np.sum(h * x * x), np.sum(h * x)], [np.sum(h * x), np.sum(h)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6:
            candidate = loss(a - scale * float(step[0]), b - scale * float(step[1]))
            if candidate <= current:
                break
            scale /= 2.0
        else:
            break  # no step decreases the loss: converged as far as floating point allows
        a, b = a - scale * float(step[0]), b - scale * float(step[1])
        improvement = current - candidate
        current = candidate
        if improvement < 1e-10 * max(1.0, abs(current)):
            break
    # back to the unstandardised score: a*(raw-center)/spread + b
    return a / spread, b - a * center / spread


def best_f1_threshold(y: npt.NDArray[np.int64], p: FloatArray) -> float:
    """The probability threshold maximising F1 (predict positive when ``p >= t``), kept inside (0, 1)."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    last = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))
    return float(min(max(ps[best], 1e-6), 1 - 1e-6))
