"""Random codebooks and full (batch) Lloyd / k-means over streamed blocks."""

from __future__ import annotations

import numpy as np

from vqalign._validation import check_positive_int, check_random_state
from vqalign.exceptions import ParameterError
from vqalign.lbg import deadcodes
from vqalign.lbg._data import as_training_data, check_k, sample_rows
from vqalign.lbg._run import Run
from vqalign.lbg.nearest import Bounds, assign, prepare

# rows drawn (p ~ squared error) as candidates for the "resample" policy
_CANDIDATES = 65536


def random_codebook(X, K, seed=None) -> np.ndarray:
    """K distinct training vectors drawn at random: (K, D) float32.

    Distinct means distinct values: duplicated rows are skipped (raises if X has
    fewer than K distinct rows).
    """
    X, _ = as_training_data(X)
    K = check_k(K, X.shape[0])
    rng = check_random_state(seed)
    return _random_rows(X, K, rng)


def _random_rows(X, K: int, rng) -> np.ndarray:
    N = X.shape[0]
    n = min(N, max(2 * K, K + 64))
    while True:
        rows = sample_rows(X, n, rng)
        _, first = np.unique(rows, axis=0, return_index=True)
        if first.size >= K or n >= N:
            break
        n = min(N, 4 * n)
    if first.size < K:
        raise ParameterError(
            f"K={K} codes requested but X has only {first.size} distinct rows; "
            f"use K <= {first.size}"
        )
    keep = np.sort(first)[:K]  # sample order is random, so the first K distinct are uniform
    return np.ascontiguousarray(rows[keep], dtype=np.float32)


def _candidates(X, a, rng, n: int = _CANDIDATES):
    """Rows (and their errors) to re-seed dead codes from: drawn with p ~ error."""
    w = a.mind.astype(np.float64)
    total = w.sum()
    m = min(n, X.shape[0])
    if total <= 0:
        idx = rng.choice(X.shape[0], size=m, replace=False)
    else:
        idx = np.unique(np.searchsorted(np.cumsum(w), rng.random(m) * total, side="right"))
        idx = np.minimum(idx, X.shape[0] - 1)
    return np.asarray(X[idx], dtype=np.float32), a.mind[idx]


def lloyd_steps(X, codes: np.ndarray, run: Run, *, shift, level: int, n_iter: int, tol: float,
                dead_policy: str, rng, check_first: bool = False, name: str = "X",
                use_bounds: bool = True, min_share: float = 0.0, anchor=None):
    """Run up to n_iter Lloyd iterations on X (array or memmap), recording each in run.

    codes (K, D) float64 is updated in place. ``anchor`` (int32 labels of the
    first rows, e.g. from the previous LBG level) seeds the first pass's
    neighbour search (large K only; the result is the exact nearest code
    either way). Returns the last assignment (labels, distances and per-code
    statistics of the codebook before the last update).
    """
    prev = np.inf
    a = None
    bounds = Bounds(X.shape[0]) if (use_bounds and n_iter > 1) else None
    if bounds is not None and anchor is not None:
        bounds.anchor(np.asarray(anchor, np.int32)[:X.shape[0]])
    for it in range(n_iter):
        P = prepare(codes, shift)
        a = assign(X, P, accumulate=True, check=check_first and it == 0, name=name,
                   bounds=bounds)
        old = codes.copy() if bounds is not None else None
        nz = a.counts > 0
        codes[nz] = a.sums[nz] / a.counts[nz, None] + shift
        if min_share > 0 and it < max(1, n_iter // 2):
            # codes with far less than their share of vectors are re-seeded too (first half
            # of the iterations only: the second half converges, with small drifts that
            # let the bounds skip most rows)
            dead = np.flatnonzero(a.counts < min_share * a.n / codes.shape[0])
        else:
            dead = np.flatnonzero(~nz)
        n_dead = 0
        if dead.size and dead_policy != "none":
            cand, err = (None, None)
            if dead_policy == "resample":
                cand, err = _candidates(X, a, rng)
            n_dead = deadcodes.reseed(dead_policy, codes, dead, counts=a.counts.astype(np.float64),
                                      sse=a.sse.copy(), candidates=cand, errors=err, rng=rng)
        if bounds is not None:
            bounds.moved(old, codes)
        mse = a.mse
        run.record(level=level, codebook=codes, n_samples=a.n, mse=mse, counts=a.counts,
                   dead_reseeded=n_dead)
        if n_dead == 0 and prev - mse <= tol * max(prev, 1e-30) and it > 0:
            break
        prev = mse
    return a


def fit_lloyd(X, K: int, run: Run, *, init, n_iter: int, tol: float, dead_policy: str, rng,
              level: int = 0):
    """Lloyd from ``init`` ("random" or a (K, D) array). Returns (codes float32, last assignment)."""
    if isinstance(init, str):
        if init != "random":
            raise ParameterError(f"init={init!r} is not supported; use 'random' or a (K, D) array")
        codes = _random_rows(X, K, rng).astype(np.float64)
    else:
        init = np.asarray(init)
        if init.shape != (K, X.shape[1]):
            raise ParameterError(
                f"init has shape {init.shape} but ({K}, {X.shape[1]}) = (K, n_features) is needed"
            )
        codes = init.astype(np.float64, copy=True)
    shift = codes.mean(axis=0).astype(np.float32)
    a = lloyd_steps(X, codes, run, shift=shift, level=level, n_iter=n_iter, tol=tol,
                    dead_policy=dead_policy, rng=rng, check_first=True)
    return codes.astype(np.float32), a


def lloyd(X, K, *, init="random", n_iter: int = 20, tol: float = 1e-4, dead_policy="split",
          seed=None) -> np.ndarray:
    """Full k-means (Lloyd) over blocks of X: returns the (K, D) float32 codebook.

    init is "random" (K distinct training vectors) or a (K, D) array. Each
    iteration reads X once (fused nearest-code search and centroid sums); it
    stops after n_iter iterations or when the MSE improves by less than
    ``tol`` (relative). Codes left without vectors are re-seeded by
    ``dead_policy`` ("split", "resample" or None). For the history, counts
    and snapshots use :class:`vqalign.lbg.VectorQuantizer` (method="lloyd").
    """
    X, _ = as_training_data(X)
    K = check_k(K, X.shape[0])
    n_iter = check_positive_int(n_iter, "n_iter")
    rng = check_random_state(seed)
    run = Run("lloyd")
    codes, _ = fit_lloyd(X, K, run, init=init, n_iter=n_iter, tol=float(tol),
                         dead_policy=deadcodes.check_policy(dead_policy), rng=rng)
    return codes
