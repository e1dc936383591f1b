"""Compiled epoch loops for the NumPy models (optional: needs numba).

One call runs a whole epoch, so stochastic gradient descent (one sample per
update) costs a few machine instructions per feature instead of a Python
function call per sample. The arithmetic is the same as the NumPy path in
``_estimators.py`` (sums in a different order), which the tests check.

Update rule, as in ``torch.optim.SGD`` (dampening 0):
``v <- momentum * v + g``; ``w <- w - lrs[step] * v``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def linear_epoch(
    X: np.ndarray,
    Y: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    W: np.ndarray,
    b: np.ndarray,
    VW: np.ndarray,
    Vb: np.ndarray,
    lrs: np.ndarray,
    momentum: float,
    alpha: float,
    fit_intercept: bool,
    losses: np.ndarray,
) -> None:
    """One epoch of squared loss ``0.5 * |W x + b - y|^2`` averaged per batch."""
    n, d = X.shape
    k = Y.shape[1]
    gW = np.zeros((k, d))
    gb = np.zeros(k)
    for step, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        gW[:, :] = 0.0
        gb[:] = 0.0
        loss = 0.0
        for t in range(start, stop):
            i = order[t]
            for j in range(k):
                r = b[j] - Y[i, j]
                for f in range(d):
                    r += W[j, f] * X[i, f]
                loss += 0.5 * r * r
                gb[j] += r
                for f in range(d):
                    gW[j, f] += r * X[i, f]
        losses[step] = loss / (stop - start) + _penalty(W, alpha)
        _apply(gW, gb, W, b, VW, Vb, 1.0 / (stop - start), lrs[step], momentum, alpha, fit_intercept)


@njit(cache=True, nogil=True)
def softmax_epoch(
    X: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    W: np.ndarray,
    b: np.ndarray,
    VW: np.ndarray,
    Vb: np.ndarray,
    lrs: np.ndarray,
    momentum: float,
    alpha: float,
    fit_intercept: bool,
    losses: np.ndarray,
) -> None:
    """One epoch of cross-entropy ``-log softmax(W x + b)[y]`` averaged per batch."""
    n, d = X.shape
    k = W.shape[0]
    gW = np.zeros((k, d))
    gb = np.zeros(k)
    z = np.zeros(k)
    for step, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        gW[:, :] = 0.0
        gb[:] = 0.0
        loss = 0.0
        for t in range(start, stop):
            i = order[t]
            top = -np.inf
            for j in range(k):
                s = b[j]
                for f in range(d):
                    s += W[j, f] * X[i, f]
                z[j] = s
                top = max(top, s)
            total = 0.0
            for j in range(k):
                z[j] = math.exp(z[j] - top)
                total += z[j]
            y = labels[i]
            loss += math.log(total) - math.log(z[y])
            for j in range(k):
                g = z[j] / total - (1.0 if j == y else 0.0)
                gb[j] += g
                for f in range(d):
                    gW[j, f] += g * X[i, f]
        losses[step] = loss / (stop - start) + _penalty(W, alpha)
        _apply(gW, gb, W, b, VW, Vb, 1.0 / (stop - start), lrs[step], momentum, alpha, fit_intercept)


def compile_now() -> None:
    """Compile both epoch loops (or load them from numba's cache) on tiny inputs."""
    X, order, rates, losses = np.zeros((2, 1)), np.arange(2), np.zeros(2), np.zeros(2)
    W, b = np.zeros((1, 1)), np.zeros(1)
    linear_epoch(X, X.copy(), order, 1, W, b, W.copy(), b.copy(), rates, 0.0, 0.0, True, losses)
    W, b = np.zeros((2, 1)), np.zeros(2)
    softmax_epoch(X, order, order, 1, W, b, W.copy(), b.copy(), rates, 0.0, 0.0, True, losses)


@njit(inline="always")
def _penalty(W: np.ndarray, alpha: float) -> float:
    """``0.5 * alpha * |W|^2``, the L2 term of the objective."""
    if alpha == 0.0:
        return 0.0
    total = 0.0
    for j in range(W.shape[0]):
        for f in range(W.shape[1]):
            total += W[j, f] * W[j, f]
    return 0.5 * alpha * total


@njit(inline="always")
def _apply(
    gW: np.ndarray,
    gb: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    VW: np.ndarray,
    Vb: np.ndarray,
    scale: float,
    lr: float,
    momentum: float,
    alpha: float,
    fit_intercept: bool,
) -> None:
    k, d = W.shape
    for j in range(k):
        for f in range(d):
            g = gW[j, f] * scale + alpha * W[j, f]
            VW[j, f] = momentum * VW[j, f] + g
            W[j, f] -= lr * VW[j, f]
        if fit_intercept:
            Vb[j] = momentum * Vb[j] + gb[j] * scale
            b[j] -= lr * Vb[j]
