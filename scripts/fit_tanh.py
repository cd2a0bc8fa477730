"""Fit the rational tanh of compiled CPU training steps (:func:`dagmm.engine.layers.rational_tanh`).

``tanh(x) ~= x P(x^2) / Q(x^2)`` on ``|x| <= 9`` (beyond it float32 tanh is
+-1), with P and Q of degree 4 and Q(0) = 1, fitted for the smallest largest
relative error: a linearised least-squares fit iterated to convergence
(Sanathanan-Koerner), then Lawson's reweighting towards the minimax fit.
Prints the coefficients as float32 literals and the float32 error of the
evaluation as :func:`dagmm.engine.layers.rational_tanh` does it (Horner, one rounding
per operation) against float64 tanh. Needs only numpy; deterministic.

Usage: ``python scripts/fit_tanh.py``.
"""
from __future__ import annotations

import numpy as np

CLAMP = 9.0
DEG_P, DEG_Q = 4, 4


def _solve(s, f, w, q_prev):
    """One weighted linear least-squares step: P(s) - f Q(s) ~ 0 with q0 = 1, weights w / (f Q_prev)."""
    cols = [s ** k for k in range(DEG_P + 1)] + [-f * s ** k for k in range(1, DEG_Q + 1)]
    weight = w / (f * np.polyval(q_prev[::-1], s))
    a = np.stack(cols, axis=1) * weight[:, None]
    b = f * weight
    scale = np.abs(a).max(axis=0)
    sol = np.linalg.lstsq(a / scale, b, rcond=None)[0] / scale
    return sol[: DEG_P + 1], np.concatenate([[1.0], sol[DEG_P + 1:]])


def fit():
    """Coefficients (p, q), lowest degree first, and the fit's largest relative error (float64)."""
    x = np.concatenate([np.linspace(0.0, CLAMP, 40_001)[1:], np.geomspace(1e-8, 1.0, 4_000)])
    s, f = x * x, np.tanh(x) / x
    w, q = np.ones_like(x), np.array([1.0])
    for _ in range(30):
        p, q = _solve(s, f, w, q)
    best = None
    for _ in range(300):
        p, q = _solve(s, f, w, q)
        err = np.abs(np.polyval(p[::-1], s) / np.polyval(q[::-1], s) / f - 1)
        if best is None or err.max() < best[2]:
            best = (p, q, err.max())
        w = np.maximum(w * err / err.max(), 1e-12)
        w *= len(w) / w.sum()
    return best


def evaluate_float32(p, q, x):
    """The rational tanh of ``x`` in float32 as dagmm.engine.layers evaluates it."""
    c = np.clip(x.astype(np.float32), -CLAMP, CLAMP)
    s = c * c
    num, den = np.float32(p[-1]), np.float32(q[-1])
    for a in p[-2::-1]:
        num = num * s + np.float32(a)
    for a in q[-2::-1]:
        den = den * s + np.float32(a)
    return np.clip(c * num / den, np.float32(-1), np.float32(1))


def main():
    p, q, rel = fit()
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    assert np.all(np.polyval(q32[::-1].astype(np.float64), np.linspace(0, CLAMP**2, 10_001)) > 0), "Q has a root"
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-12, 12, 2_000_001), 3 * rng.standard_normal(1_000_000),
                        np.geomspace(1e-30, 1, 100_000)]).astype(np.float32)
    ref = np.tanh(x.astype(np.float64))
    y = evaluate_float32(p32, q32, x).astype(np.float64)
    ulp = np.abs(y - ref) / np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    print(f"fit: largest relative error {rel:.2e} (float64)")
    print(f"float32 evaluation: largest error {np.abs(y - ref).max():.2e} absolute, {ulp.max():.2f} ulp; mean {ulp.mean():.2f} ulp")
    print("P =", "(" + ", ".join(f"{float(v)!r}" for v in p32) + ")")
    print("Q =", "(" + ", ".join(f"{float(v)!r}" for v in q32) + ")")


if __name__ == "__main__":
    main()
