"""Linde-Buzo-Gray: grow a codebook from the global mean by splitting codes.

Level 0 is the mean of the data. At each level the codebook grows by the
factor ``growth`` (1.5 by default): the codes with the highest distortion (sum
of squared errors) are split in two by a +/- offset along their cluster's
principal axis, then the codebook is refined by Lloyd (or minibatch Lloyd)
before the next growth. ``growth=2`` is classic LBG (every code splits at
every level); splitting only the worst codes first puts codes where the
distortion is (at N = 1M, K = 1024 on a 2000-centre mixture: MSE 1.58 with
doubling, 1.44 with growth 1.5; k-means++ and 20 Lloyd iterations: 1.41).

Speed: the levels are refined on a random subsample of at most
``max_points_per_code`` vectors per code of the current level (64 by default;
faiss uses 256 per centroid), which makes every level but the last cheap;
``n_iter`` Lloyd iterations per level (3) and ``last_iter`` at the last level
(10), with Hamerly bounds so that rows whose code cannot have changed skip the
search; ``final_passes`` full Lloyd passes over all of X then polish the
codebook and repair any dead code (re-seeds after the last level are counted in
the history).
"""

from __future__ import annotations

import warnings

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign._validation import (
    check_positive_int,
    check_probability,
    check_random_state,
)
from vqalign.exceptions import ParameterError
from vqalign.lbg import _kernels, deadcodes
from vqalign.lbg._data import as_training_data, check_k, sample_rows
from vqalign.lbg._run import Run
from vqalign.lbg.lloyd import lloyd_steps
from vqalign.lbg.minibatch import default_window, minibatch_steps
from vqalign.lbg.nearest import assign, prepare

REFINERS = ("lloyd", "minibatch")


def _principal_axes(sub, a, codes, shift):
    """Principal axis (unit vector) and its standard deviation for each code's cluster.

    The per-code covariance is accumulated by a kernel over the rows sorted by code
    (parallel over the codes, no (n, D, D) temporary), then the top eigenvector is found
    by a batched eigendecomposition of the K small D x D matrices.
    """
    K, D = codes.shape
    lab = np.ascontiguousarray(a.labels[:sub.shape[0]], dtype=np.int64)
    cnt = np.maximum(a.counts, 1).astype(np.float64)
    V = sub.astype(np.float64) - shift.astype(np.float64)
    order = np.argsort(lab, kind="stable").astype(np.int64)
    counts = np.bincount(lab, minlength=K).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    cov = np.empty((K, D, D))
    _kernels.cluster_covariances(np.ascontiguousarray(V), order, starts, counts, cnt, cov)
    if D <= 64:
        with one_blas_thread():   # K small eigh: BLAS threads cost more than the work
            w, vec = np.linalg.eigh(cov)
        axis = vec[:, :, -1]
        sd = np.sqrt(np.maximum(w[:, -1], 0.0))
    else:  # pragma: no cover - large D uses power iteration instead of eigh
        axis, sd = _power_axes(cov)
    return axis, sd


def _power_axes(cov, n_iter: int = 20):
    K, D, _ = cov.shape
    v = np.ones((K, D)) / np.sqrt(D)
    for _ in range(n_iter):
        v = np.einsum("kij,kj->ki", cov, v)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)
    lam = np.einsum("ki,kij,kj->k", v, cov, v)
    return v, np.sqrt(np.maximum(lam, 0.0))


def _wide_axes(sub, a, codes, shift, rng, which, n_iter: int = 6):
    """Principal axis and its std for the clusters ``which`` of wide vectors (power iteration).

    No D x D covariance and no n x D temporary: a numba kernel, parallel over
    the clusters, projects each cluster's centred rows on its current axis and
    sums them weighted by the projection, so the cost is O(n D) per iteration
    and only the clusters that will split are computed. Returns (K, D) axes and
    (K,) stds, zero for the other codes.
    """
    K, D = codes.shape
    lab = np.ascontiguousarray(a.labels[:sub.shape[0]], dtype=np.int64)
    order = np.argsort(lab, kind="stable").astype(np.int64)
    counts = np.bincount(lab, minlength=K).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sel = np.ascontiguousarray(which, dtype=np.int64)
    v = rng.standard_normal((sel.size, D)).astype(np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)
    lam = np.zeros(sel.size, np.float64)
    _kernels.cluster_power_axes(np.ascontiguousarray(sub, dtype=np.float32),
                                np.ascontiguousarray(shift, dtype=np.float32), order, starts,
                                counts, sel, int(n_iter), v, lam)
    axis = np.zeros((K, D))
    sd = np.zeros(K)
    axis[sel] = v
    sd[sel] = np.sqrt(np.maximum(lam, 0.0))
    return axis, sd


def _split_directions(sub, a, codes, shift, rng, which):
    """Per-code split offsets (unscaled): principal axis x its std (random sign).

    Wide vectors get them for the codes ``which`` that split only (zero elsewhere).
    """
    K, D = codes.shape
    if D <= 64:
        axis, sd = _principal_axes(sub, a, codes, shift)
    else:
        axis, sd = _wide_axes(sub, a, codes, shift, rng, which)
    return axis * sd[:, None]


def split_codes(codes: np.ndarray, which: np.ndarray, offsets: np.ndarray, eps: float):
    """Return codes with ``which`` moved to c + eps*offset (in place) and c - eps*offset appended."""
    delta = eps * offsets[which]
    old = codes[which].copy()
    codes[which] = old + delta
    return np.concatenate([codes, old - delta], axis=0)


def fit_lbg(X, K: int, run: Run, *, rng, refine: str = "lloyd", n_iter: int = 3,
            tol: float = 1e-3, max_points_per_code: int = 64, final_passes: int = 0,
            split_eps: float = 0.8, dead_policy: str = "split", batch_size: int = 4096,
            decay: float = 0.9, dead_threshold: float = 0.01, check: bool = True,
            min_share: float = 0.3, growth: float = 1.5, last_iter: int | None = 10):
    """LBG growth from the mean to K codes. Returns (codes float32, last assignment, levels)."""
    N, D = X.shape
    n_sub = min(N, max_points_per_code * K)
    sub = sample_rows(X, n_sub, rng)
    shift = sub.mean(axis=0, dtype=np.float64).astype(np.float32)
    codes = shift[None, :].astype(np.float64)
    level = 0
    n0 = n_sub  # K = 1: the mean's error on the whole subsample is cheap
    a = lloyd_steps(sub[:n0], codes, run, shift=shift, level=0, n_iter=1, tol=tol,
                    dead_policy="none", rng=rng)
    if K > 1 and a.mse <= 1e-10 * (1.0 + float(shift @ shift)):
        check_not_constant(sub, N)
    on_sub_all = n_sub == N
    while codes.shape[0] < K:
        k = codes.shape[0]
        level += 1
        k_new = min(max(k + 1, int(np.ceil(growth * k))), K)
        n_l = min(n_sub, max(max_points_per_code * k_new, 4096))
        prev_n = a.n
        # the assignment a is over sub[:prev_n] with the current codes: spread and distortion
        if k_new - k == k:
            which = np.arange(k)
        else:
            which = np.argsort(-a.sse, kind="stable")[:k_new - k]
        offsets = _split_directions(sub[:prev_n], a, codes, shift, rng, which)
        codes = split_codes(codes, which, offsets, split_eps)
        part = sub[:n_l]
        it_l = n_iter if (last_iter is None or k_new < K) else last_iter
        if refine == "lloyd":
            # split codes keep their index: the last level's labels are where each row's
            # neighbour search starts (coarse to fine)
            anchor = None if a.labels is None else a.labels[:prev_n].copy()
            a = lloyd_steps(part, codes, run, shift=shift, level=level, n_iter=it_l, tol=tol,
                            dead_policy=dead_policy, rng=rng, min_share=min_share,
                            anchor=anchor)
        else:
            bs = min(batch_size, n_l)
            steps = max(10, int(np.ceil(it_l * n_l / bs)))
            minibatch_steps(part, codes, run, shift=shift, level=level, n_steps=steps,
                            batch_size=bs, decay=decay, dead_policy=dead_policy,
                            dead_window=default_window(k_new, bs),
                            dead_threshold=dead_threshold, rng=rng)
            if codes.shape[0] < K:
                a = assign(part, prepare(codes, shift), accumulate=True)
    # polish on all of X (or on the subsample when it is all of X)
    passes = final_passes
    if passes > 0:
        a = lloyd_steps(X if not on_sub_all else sub, codes, run, shift=shift, level=level,
                        n_iter=passes, tol=0.0, dead_policy=dead_policy, rng=rng,
                        check_first=check and not on_sub_all)
        # a code re-seeded in the very last pass gets one more pass to settle (at most 2)
        extra = 0
        while run.history["dead_reseeded"][-1] > 0 and extra < 2:
            a = lloyd_steps(X if not on_sub_all else sub, codes, run, shift=shift, level=level,
                            n_iter=1, tol=0.0, dead_policy=dead_policy, rng=rng)
            extra += 1
    return codes.astype(np.float32), a, level


def check_not_constant(sub, N: int, *, name: str = "X") -> None:
    """Raise when every row of ``sub`` (a sample of X's N rows, or all) is the same vector."""
    if sub.shape[0] and not (sub != sub[:1]).any():
        what = f"all {N} rows" if sub.shape[0] >= N else f"all {sub.shape[0]} sampled rows"
        raise ParameterError(
            f"{name} has zero variance: {what} are the same vector, so no codebook of more than "
            "one code can be learned; check the features (constant frames often mean silent "
            "or missing audio) or use K=1")


def check_refine(refine) -> str:
    if refine not in REFINERS:
        raise ParameterError(f"refine={refine!r} is not one of {', '.join(map(repr, REFINERS))}")
    return refine


def lbg(X, K, *, refine: str = "lloyd", n_iter: int = 3, tol: float = 1e-3,
        max_points_per_code: int = 64, final_passes: int = 0, split_eps: float = 0.8,
        min_share: float = 0.3, dead_policy="split", batch_size: int = 4096, decay: float = 0.9,
        growth: float = 1.5, last_iter: int | None = 10, seed=None) -> np.ndarray:
    """Linde-Buzo-Gray codebook of K codes (K need not be a power of two): (K, D) float32.

    n_iter is the number of Lloyd iterations per level and ``last_iter`` at the
    last level (None: n_iter there too); early stop when the MSE improves by
    less than ``tol``, relative. With refine="minibatch" each level runs that
    many epochs of EMA minibatch updates instead. ``growth`` (> 1) is the
    factor by which each level multiplies the number of codes, splitting the
    highest-distortion codes (2 = classic doubling).
    During a level's Lloyd iterations (but the last), codes that receive fewer
    than ``min_share`` times their even share of vectors are re-seeded like
    dead codes (by splitting a high-distortion code): this moves codes from
    sparse to dense regions, which plain Lloyd cannot do.
    """
    X, _ = as_training_data(X)
    K = check_k(K, X.shape[0])
    rng = check_random_state(seed)
    params = _check_params(refine=refine, n_iter=n_iter, max_points_per_code=max_points_per_code,
                           final_passes=final_passes, split_eps=split_eps, batch_size=batch_size,
                           decay=decay, growth=growth, last_iter=last_iter)
    warn_few_points(X.shape[0], K)
    run = Run("lbg")
    codes, _, _ = fit_lbg(X, K, run, rng=rng, tol=float(tol), min_share=float(min_share),
                          dead_policy=deadcodes.check_policy(dead_policy), **params)
    return codes


def warn_few_points(N: int, K: int, *, per_code: int = 4) -> None:
    """Warn when there are fewer than ``per_code`` training vectors per code."""
    if K > 1 and N < per_code * K:
        warnings.warn(
            f"X has {N} rows for K={K} codes: {N / K:.1f} training vectors per code (fewer "
            f"than {per_code}); the codebook will fit noise and codes may go unused on new "
            f"data: use K <= {max(1, N // per_code)} or more data", UserWarning, stacklevel=3)


def _check_params(*, refine, n_iter, max_points_per_code, final_passes, split_eps, batch_size,
                  decay, growth=1.5, last_iter=10) -> dict:
    if not (isinstance(split_eps, (int, float)) and 0 < split_eps < 10):
        raise ParameterError(f"split_eps={split_eps!r} must be a small positive number (e.g. 0.5)")
    if isinstance(growth, bool) or not isinstance(growth, (int, float)) \
            or not (1.0 < growth <= 2.0):
        raise ParameterError(f"growth={growth!r} must be a number in (1, 2]: the factor by "
                             "which each LBG level multiplies the codes (2 = doubling)")
    return dict(
        growth=float(growth),
        last_iter=None if last_iter is None else check_positive_int(last_iter, "last_iter"),
        refine=check_refine(refine),
        n_iter=check_positive_int(n_iter, "n_iter"),
        max_points_per_code=check_positive_int(max_points_per_code, "max_points_per_code"),
        final_passes=check_positive_int(final_passes, "final_passes", minimum=0),
        split_eps=float(split_eps),
        batch_size=check_positive_int(batch_size, "batch_size"),
        decay=check_probability(decay, "decay", high_open=True),
    )
