"""Numba kernels for codebooks: fused nearest-code search and centroid sums.

House rules: flat arrays in, caller-allocated outputs, int32 labels, no
exceptions (the Python side validates shapes before calling).

Distances use ``||c||^2 - 2 x.c`` on data shifted by ``shift`` (the data mean),
so float32 accumulation keeps its precision even for MFCCs with a large c0.
The squared distance of a row to its code is ``||x - shift||^2 + best``
(clamped at 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# codes per tile: D x KT float32 codes (13 x 256 x 4 = 13 kB) stay in L1
_KT = 256


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _search_row(xs, CT, cnorm, buf):
    """Best and second-best ``cnorm[k] + xs . CT[:, k]`` over all codes, and the best k.

    CT has Dp rows (a multiple of 4, zero padded) and xs holds -2 (x - shift)
    with zeros after the D features. Four features are folded into each sweep
    over a tile of codes, so the tile in L1 is loaded and stored once per four
    multiply-adds (the loop is load/store bound otherwise).
    """
    Dp = CT.shape[0]
    K = CT.shape[1]
    best = np.inf
    second = np.inf
    bi = 0
    for k0 in range(0, K, _KT):
        k1 = min(K, k0 + _KT)
        kt = k1 - k0
        c = cnorm[k0:k1]
        for d in range(0, Dp, 4):
            q0 = CT[d, k0:k1]
            q1 = CT[d + 1, k0:k1]
            q2 = CT[d + 2, k0:k1]
            q3 = CT[d + 3, k0:k1]
            x0 = xs[d]
            x1 = xs[d + 1]
            x2 = xs[d + 2]
            x3 = xs[d + 3]
            if d == 0:
                for k in range(kt):
                    buf[k] = c[k] + x0 * q0[k] + x1 * q1[k] + x2 * q2[k] + x3 * q3[k]
            else:
                for k in range(kt):
                    buf[k] += x0 * q0[k] + x1 * q1[k] + x2 * q2[k] + x3 * q3[k]
        m = buf[0]
        for k in range(kt):
            if buf[k] < m:
                m = buf[k]
        if m < best:
            j = 0
            for k in range(kt):
                if buf[k] == m:
                    j = k
                    break
            m2 = np.inf
            for k in range(j):
                if buf[k] < m2:
                    m2 = buf[k]
            for k in range(j + 1, kt):
                if buf[k] < m2:
                    m2 = buf[k]
            second = min(best, m2, second)
            best = m
            bi = k0 + j
        elif m < second:
            second = m
    return best, second, bi


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _load_row(X, i, shift, xs):
    """xs[:D] = -2 (X[i] - shift); returns ||X[i] - shift||^2."""
    x2 = 0.0
    for d in range(X.shape[1]):
        v = X[i, d] - shift[d]
        x2 += v * v
        xs[d] = -2.0 * v
    return x2


def _assign_fused(X, shift, CT, cnorm, labels, mind, sums, counts, sse, accumulate):
    """Fused distance + argmin (+ centroid sums) over all rows of X.

    X (N, D) float32; shift (D,) float32; CT (Dp, K) float32 codes transposed,
    already shifted, zero-padded to Dp = 4 * ceil(D / 4) rows; cnorm (K,)
    float32 squared norms of the shifted codes.
    Outputs: labels (N,) int32, mind (N,) float32 squared distances.
    With ``accumulate``: sums (T, K, D) float64 of shifted rows, counts (T, K)
    int64 and sse (T, K) float64 per-code distortion, one slice per thread
    chunk T (the caller sums over T). Returns 0.
    """
    N = X.shape[0]
    D = X.shape[1]
    K = CT.shape[1]
    T = sums.shape[0]
    chunk = (N + T - 1) // T
    for t in prange(T):
        start = t * chunk
        stop = min(N, start + chunk)
        xs = np.zeros(CT.shape[0], dtype=np.float32)
        buf = np.empty(min(K, _KT), dtype=np.float32)
        for i in range(start, stop):
            x2 = _load_row(X, i, shift, xs)
            best, second, bi = _search_row(xs, CT, cnorm, buf)
            dist = x2 + best
            dist = dist if dist > 0.0 else 0.0
            labels[i] = bi
            mind[i] = dist
            if accumulate:
                counts[t, bi] += 1
                sse[t, bi] += dist
                for d in range(D):
                    sums[t, bi, d] -= 0.5 * xs[d]
    return 0


def _assign_bounded(X, shift, CT, S, cnorm, labels, mind, upper, lower, drift, fresh,
                   sums, counts, sse):
    """Lloyd pass with Hamerly bounds: rows whose label provably did not change skip the search.

    upper[i] bounds the distance (not squared) of row i to its code from
    above, lower[i] the distance to any other code from below; both are kept
    across passes. drift (K,) holds how far each code moved since the last pass.
    With ``fresh`` every row is searched (first pass, or codes added/replaced).
    S (K, D) float32 shifted codes. Accumulates like :func:`assign_fused`.
    Returns the number of rows fully searched.
    """
    N = X.shape[0]
    D = X.shape[1]
    K = CT.shape[1]
    T = sums.shape[0]
    # largest and second-largest drift: a row assigned to code a loses at most
    # the largest drift of the *other* codes from its lower bound
    m1 = 0.0
    m2 = 0.0
    a1 = -1
    for k in range(K):
        v = drift[k]
        if v > m1:
            m2 = m1
            m1 = v
            a1 = k
        elif v > m2:
            m2 = v
    chunk = (N + T - 1) // T
    searched = np.zeros(T, dtype=np.int64)
    for t in prange(T):
        start = t * chunk
        stop = min(N, start + chunk)
        xs = np.zeros(CT.shape[0], dtype=np.float32)
        buf = np.empty(min(K, _KT), dtype=np.float32)
        nfull = 0
        for i in range(start, stop):
            x2 = _load_row(X, i, shift, xs)
            done = False
            if not fresh:
                a = labels[i]
                u = upper[i] + drift[a]
                lo = lower[i] - (m2 if a == a1 else m1)
                if u < lo:
                    # tighten the upper bound with the exact distance to the code
                    dd = 0.0
                    for d in range(D):
                        v = -0.5 * xs[d] - S[a, d]
                        dd += v * v
                    u = np.sqrt(dd)
                    if u < lo * 0.9999:
                        mind[i] = dd
                        upper[i] = u
                        lower[i] = lo
                        done = True
            if not done:
                best, second, bi = _search_row(xs, CT, cnorm, buf)
                dist = x2 + best
                dist = dist if dist > 0.0 else 0.0
                d2 = x2 + second
                d2 = d2 if d2 > 0.0 else 0.0
                labels[i] = bi
                mind[i] = dist
                upper[i] = np.sqrt(dist)
                lower[i] = np.sqrt(d2)
                nfull += 1
            bi = labels[i]
            counts[t, bi] += 1
            sse[t, bi] += mind[i]
            for d in range(D):
                sums[t, bi, d] -= 0.5 * xs[d]
        searched[t] = nfull
    return searched.sum()


# Parallel versions for large passes; serial ones (prange runs as range) for
# small work, where waking the thread pool costs more than the work itself on a
# busy machine.
assign_fused = njit(cache=True, parallel=True, fastmath=True, nogil=True)(_assign_fused)
assign_fused_serial = njit(cache=True, fastmath=True, nogil=True)(_assign_fused)
assign_bounded = njit(cache=True, parallel=True, fastmath=True, nogil=True)(_assign_bounded)
assign_bounded_serial = njit(cache=True, fastmath=True, nogil=True)(_assign_bounded)

#: below this many row x code distance evaluations the serial kernels are used
SERIAL_WORK = 1 << 21


@njit(cache=True, fastmath=True, nogil=True)
def argmin_tile(G, cnorm, k0, best, bidx):
    """Running argmin of ``cnorm[k0 + k] - 2 G[i, k]`` over a BLAS tile G (R, KT)."""
    R = G.shape[0]
    KT = G.shape[1]
    for i in range(R):
        m = best[i]
        mi = bidx[i]
        for k in range(KT):
            v = cnorm[k0 + k] - 2.0 * G[i, k]
            if v < m:
                m = v
                mi = k0 + k
        best[i] = m
        bidx[i] = mi
    return 0


@njit(cache=True, parallel=True, nogil=True)
def accumulate_sums(X, shift, labels, mind, sums, counts, sse):
    """Per-code sums of shifted rows, counts and distortion; parallel over features.

    sums (K, D) float64, counts (K,) int64, sse (K,) float64 (added to, not reset).
    """
    N = X.shape[0]
    D = X.shape[1]
    for d in prange(D):
        s = shift[d]
        for i in range(N):
            sums[labels[i], d] += X[i, d] - s
    for i in range(N):
        counts[labels[i]] += 1
        sse[labels[i]] += mind[i]
    return 0


@njit(cache=True, nogil=True)
def weighted_pick(cum, u, out):
    """Indices drawn by inverse CDF: out[j] = first i with cum[i] > u[j]."""
    n = cum.shape[0]
    for j in range(u.shape[0]):
        lo = 0
        hi = n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] > u[j]:
                hi = mid
            else:
                lo = mid + 1
        out[j] = lo
    return 0
