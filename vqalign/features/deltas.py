"""Delta (regression) coefficients, HTK style."""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_features, check_positive_int
from vqalign.exceptions import ParameterError


def delta(features, order=2, width=2) -> np.ndarray:
    """Append delta coefficients up to ``order``: ``[static, delta, delta-delta, ...]``.

    Each order applies the HTK regression formula to the previous one::

        d_t = sum_{n=1..W} n * (c_{t+n} - c_{t-n}) / (2 * sum_{n=1..W} n**2)

    with the first and last frames replicated beyond the edges (HTK, Kaldi).

    Parameters
    ----------
    features : ndarray (n_frames, n_features), float
    order : int >= 0
        Highest derivative (2: deltas and delta-deltas; 0 returns a float32 copy).
    width : int >= 1
        ``W``, the half-width of the regression window in frames.

    Returns
    -------
    ndarray (n_frames, n_features * (order + 1)) float32
    """
    X = check_features(features, name="features")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise ParameterError(f"order must be an integer >= 0 (2 for deltas and delta-deltas), "
                             f"got {order!r}")
    W = check_positive_int(width, "width")
    T, D = X.shape
    out = np.empty((T, D * (order + 1)), dtype=np.float32)
    out[:, :D] = X
    denom = np.float32(2.0 * sum(n * n for n in range(1, W + 1)))
    prev = out[:, :D]
    for k in range(1, order + 1):
        P = np.concatenate([np.repeat(prev[:1], W, axis=0), prev,
                            np.repeat(prev[-1:], W, axis=0)])
        cur = out[:, k * D:(k + 1) * D]
        cur[:] = 0.0
        for n in range(1, W + 1):
            cur += np.float32(n) * (P[W + n:W + n + T] - P[W - n:W - n + T])
        cur /= denom
        prev = cur
    return out
