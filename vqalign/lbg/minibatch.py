"""Minibatch Lloyd with exponential moving averages of per-code sums and counts.

After each batch, for every code k with batch count n_k and batch sum s_k::

    N_k <- decay * N_k + (1 - decay) * n_k
    S_k <- decay * S_k + (1 - decay) * s_k
    c_k  = S_k / N_k

``decay`` is the weight of the past (0.9: a code's position averages roughly
the last ten batches). A code is dead when it received no vector during the
last ``dead_window`` batches, or its EMA count falls below ``dead_threshold``
times the uniform share ``batch_size / K``; dead codes are re-seeded with
:mod:`vqalign.lbg.deadcodes`.
"""

from __future__ import annotations

import math

import numpy as np

from vqalign._validation import check_positive_int, check_probability, check_random_state
from vqalign.lbg import deadcodes
from vqalign.lbg._data import as_training_data, check_k
from vqalign.lbg._run import Run
from vqalign.lbg.lloyd import _random_rows
from vqalign.lbg.nearest import assign, prepare


def default_window(K: int, batch_size: int) -> int:
    """Batches over which an evenly used code expects ~16 vectors (at least 2)."""
    return max(2, math.ceil(16 * K / batch_size))


def default_steps(N: int, K: int, batch_size: int) -> int:
    """Ten passes over min(N, 256 K) vectors, at least 50 steps."""
    return max(50, math.ceil(10 * min(N, 256 * K) / batch_size))


def _batch(X, batch_size: int, rng) -> np.ndarray:
    N = X.shape[0]
    if batch_size >= N:
        return np.ascontiguousarray(X, dtype=np.float32)
    idx = np.sort(rng.integers(0, N, size=batch_size))
    return np.ascontiguousarray(X[idx], dtype=np.float32)


def minibatch_steps(X, codes: np.ndarray, run: Run, *, shift, level: int, n_steps: int,
                    batch_size: int, decay: float, dead_policy: str, dead_window: int,
                    dead_threshold: float, rng, check: bool = False, name: str = "X"):
    """n_steps EMA minibatch updates of codes (K, D) float64 in place; one history row each."""
    K, D = codes.shape
    share = batch_size / K
    ema_n = np.full(K, share, dtype=np.float64)
    ema_s = (codes - shift) * share
    ema_e = np.zeros(K, dtype=np.float64)  # EMA of per-code distortion (split donors)
    W = int(dead_window)
    ring = np.zeros((W, K), dtype=np.int32)
    window = np.zeros(K, dtype=np.int64)
    last_used = np.zeros(K, dtype=np.int64)
    for s in range(n_steps):
        B = _batch(X, batch_size, rng)
        if check:
            from vqalign._validation import check_finite_block
            check_finite_block(B, name=name)
        a = assign(B, prepare(codes, shift), accumulate=True)
        ema_n *= decay
        ema_n += (1.0 - decay) * a.counts
        ema_s *= decay
        ema_s += (1.0 - decay) * a.sums
        ema_e *= decay
        ema_e += (1.0 - decay) * a.sse
        live = ema_n > 1e-12
        codes[live] = ema_s[live] / ema_n[live, None] + shift
        slot = s % W
        window -= ring[slot]
        ring[slot] = a.counts
        window += a.counts
        used = a.counts > 0
        last_used[used] = s
        n_dead = 0
        if dead_policy != "none" and s + 1 >= W:
            dead = np.flatnonzero((s - last_used >= W) | (ema_n < dead_threshold * share))
            if dead.size:
                n_dead = deadcodes.reseed(dead_policy, codes, dead, counts=ema_n, sse=ema_e,
                                          candidates=B, errors=a.mind, rng=rng)
                dead = dead[:n_dead]
                # a fresh code starts with the uniform share at its new position
                ema_n[dead] = share
                ema_e[dead] = 0.0
                # split donors moved and lost half their mass: keep S = (c - shift) N
                ema_s[:] = (codes - shift) * ema_n[:, None]
                last_used[dead] = s
        run.record(level=level, codebook=codes, n_samples=B.shape[0], mse=a.mse,
                   counts=window, dead_reseeded=n_dead)
    return codes


def fit_minibatch(X, K: int, run: Run, *, init, n_steps, batch_size: int, decay: float,
                  dead_policy: str, dead_window, dead_threshold: float, rng, level: int = 0):
    if isinstance(init, str):
        codes = _random_rows(X, K, rng).astype(np.float64)
    else:
        codes = np.asarray(init, dtype=np.float64).copy()
    N = X.shape[0]
    batch_size = min(batch_size, N)
    n_steps = default_steps(N, K, batch_size) if n_steps is None else n_steps
    W = default_window(K, batch_size) if dead_window is None else dead_window
    shift = codes.mean(axis=0).astype(np.float32)
    minibatch_steps(X, codes, run, shift=shift, level=level, n_steps=n_steps,
                    batch_size=batch_size, decay=decay, dead_policy=dead_policy, dead_window=W,
                    dead_threshold=dead_threshold, rng=rng, check=isinstance(X, np.memmap))
    return codes.astype(np.float32)


def minibatch_lloyd(X, K, *, batch_size: int = 4096, decay: float = 0.9, n_steps=None,
                    init="random", dead_policy="resample", dead_window=None,
                    dead_threshold: float = 0.01, seed=None) -> np.ndarray:
    """Minibatch Lloyd with EMA sums and counts: returns the (K, D) float32 codebook.

    n_steps defaults to ten passes over min(N, 256 K) vectors; dead_window to
    the batches in which an evenly used code expects 16 vectors.
    """
    X, _ = as_training_data(X)
    K = check_k(K, X.shape[0])
    batch_size = check_positive_int(batch_size, "batch_size")
    decay = check_probability(decay, "decay", high_open=True)
    if n_steps is not None:
        n_steps = check_positive_int(n_steps, "n_steps")
    if dead_window is not None:
        dead_window = check_positive_int(dead_window, "dead_window")
    rng = check_random_state(seed)
    run = Run("minibatch")
    return fit_minibatch(X, K, run, init=init, n_steps=n_steps, batch_size=batch_size,
                         decay=decay, dead_policy=deadcodes.check_policy(dead_policy),
                         dead_window=dead_window, dead_threshold=float(dead_threshold), rng=rng)
