"""Slow, obvious reference versions shared by the tests (stumpy's ``tests/naive.py``).

Nothing here imports vqalign: each function is written from its definition only, so a test
comparing vqalign against it compares two independent implementations.
"""

from __future__ import annotations

import math

import numpy as np


# ------------------------------------------------------------------ alignment scoring
def _iv(x):
    """(start, end, label) of a segment object (``.start/.end/.label``) or a tuple."""
    if hasattr(x, "start"):
        return float(x.start), float(x.end), str(x.label)
    return float(x[0]), float(x[1]), str(x[2])


def word_errors_ms(pred, truth, offset: float = 0.0) -> np.ndarray:
    """|start error| and |end error| of every word, in ms, pooled (starts then ends).

    Parameters
    ----------
    pred : sequence of segments (``.start``, ``.end``, ``.label``) or (start, end, label)
    truth : sequence of (start, end, label); empty labels (gaps) are dropped
    offset : float
        Seconds added to the truth before comparing.

    Returns
    -------
    (2 * n_words,) float64. The two sequences must name the same words in order.
    """
    p = [_iv(x) for x in pred]
    t = [_iv(x) for x in truth if _iv(x)[2]]
    assert [x[2] for x in p] == [x[2] for x in t], "word labels differ"
    err = [abs(a[0] - b[0] - offset) for a, b in zip(p, t)]
    err += [abs(a[1] - b[1] - offset) for a, b in zip(p, t)]
    return 1000.0 * np.asarray(err, dtype=np.float64)


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences: the full dynamic-programming table."""
    t = np.zeros((len(a) + 1, len(b) + 1), int)
    t[:, 0] = range(len(a) + 1)
    t[0, :] = range(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i, j] = min(t[i - 1, j] + 1, t[i, j - 1] + 1,
                          t[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(t[-1, -1])


# ------------------------------------------------------------------ vector quantization
def naive_nearest(X, C):
    """Nearest code of every row by brute force in float64.

    Returns
    -------
    labels : (n,) int, d2 : (n,) float64 squared distances.
    """
    d = ((np.asarray(X, np.float64)[:, None, :] - np.asarray(C, np.float64)[None]) ** 2).sum(-1)
    return d.argmin(1), d.min(1)


def blobs(rng, n=3000, d=5, centres=12, spread=0.3) -> np.ndarray:
    """(n, d) float32 Gaussian blobs around ``centres`` random centres."""
    C = rng.standard_normal((centres, d)) * 3
    lab = rng.integers(0, centres, n)
    return (C[lab] + spread * rng.standard_normal((n, d))).astype(np.float32)


# ------------------------------------------------------------------ synthesizer pieces
_MASK = (1 << 64) - 1


def xorshift_uniform(seed: int, n: int) -> np.ndarray:
    """Marsaglia's xorshift64 (13, 7, 17) in Python integers, seed forced odd: ``n``
    uniforms in [-0.5, 0.5) from the top 53 bits."""
    x = (int(seed) & _MASK) | 1
    out = np.empty(n)
    for i in range(n):
        x ^= (x << 13) & _MASK
        x ^= x >> 7
        x ^= (x << 17) & _MASK
        out[i] = (x >> 11) / 2.0 ** 53 - 0.5
    return out


def resonator_coefficients(freq, bw, sr):
    """Klatt's two-pole resonator ``y[n] = a x[n] + b y[n-1] + c y[n-2]`` (unit DC gain):
    (a, b, c) for centre ``freq`` and bandwidth ``bw`` in Hz."""
    c = -math.exp(-2.0 * math.pi * bw / sr)
    b = 2.0 * math.exp(-math.pi * bw / sr) * math.cos(2.0 * math.pi * freq / sr)
    return 1.0 - b - c, b, c
