"""Numba kernels for codebooks: fused nearest-code search and centroid sums.

House rules: flat arrays in, caller-allocated outputs, int32 labels, no
exceptions (the Python side validates shapes before calling).

Distances use ``||c||^2 - 2 x.c`` on data shifted by ``shift`` (the data mean),
so float32 accumulation keeps its precision even for MFCCs with a large c0.
The squared distance of a row to its code is ``||x - shift||^2 + best``
(clamped at 0).
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

from vqalign._jit import fast_cache_loads

# Numba's OpenMP workers spin after each parallel kernel by default; between the
# many short kernels of a training loop they then compete with the Python thread
# for the cores (on a loaded 2-core machine a 0.2 ms pass took 40 ms). Sleep
# instead, unless the user chose a policy. Read when the pool first starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# codes per tile: Dp x KT float32 codes (16 x 512 x 4 = 32 kB) stay in L1
_KT = 512
# rows searched together (each tile of codes is loaded once per group of rows)
_R = 4
# lanes of the running argmin (two AVX2 / one AVX-512 register)
_L = 16
# finite "infinity" for kernels compiled with fastmath (which may assume no inf)
_BIG = 1e300
_BIG32 = np.float32(3e38)
# neighbour lists a row's search may walk through before a full search
_HOPS = 4


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _lane_update(b, kt, kbase, m1, s2, ids):
    """Fold ``b[:kt]`` (values of codes kbase..kbase+kt) into 16-lane best / second / index."""
    kv = kt - kt % _L
    for k0 in range(0, kv, _L):
        for j in range(_L):
            v = b[k0 + j]
            old = m1[j]
            s2[j] = min(s2[j], max(v, old))
            take = v < old
            m1[j] = v if take else old
            ids[j] = (kbase + k0 + j) if take else ids[j]
    for k in range(kv, kt):
        j = k - kv
        v = b[k]
        old = m1[j]
        s2[j] = min(s2[j], max(v, old))
        if v < old:
            m1[j] = v
            ids[j] = kbase + k


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _lane_reduce(m1, s2, ids):
    """(best, second best, index of best) from 16-lane states; ties go to the lowest index."""
    best = np.inf
    bi = 0
    jb = 0
    for j in range(_L):
        if m1[j] < best or (m1[j] == best and ids[j] < bi):
            best = m1[j]
            bi = ids[j]
            jb = j
    second = s2[jb]
    for j in range(_L):
        if j != jb and m1[j] < second:
            second = m1[j]
    return best, second, bi


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _tile_dots(xs, CT, c, k0, k1, b0, b1, b2, b3):
    """b_r[k - k0] = c[k - k0] + xs[r] . CT[:, k] for k in k0..k1 and the four rows r of xs.

    Eight features of four rows are folded into each sweep over the tile of
    codes, so a tile in L1 is read once per 32 multiply-adds per code.
    """
    Dp = CT.shape[0]
    kt = k1 - k0
    for d in range(0, Dp, 8):
        q0 = CT[d, k0:k1]
        q1 = CT[d + 1, k0:k1]
        q2 = CT[d + 2, k0:k1]
        q3 = CT[d + 3, k0:k1]
        q4 = CT[d + 4, k0:k1]
        q5 = CT[d + 5, k0:k1]
        q6 = CT[d + 6, k0:k1]
        q7 = CT[d + 7, k0:k1]
        a0 = xs[0, d]
        a1 = xs[0, d + 1]
        a2 = xs[0, d + 2]
        a3 = xs[0, d + 3]
        a4 = xs[0, d + 4]
        a5 = xs[0, d + 5]
        a6 = xs[0, d + 6]
        a7 = xs[0, d + 7]
        e0 = xs[1, d]
        e1 = xs[1, d + 1]
        e2 = xs[1, d + 2]
        e3 = xs[1, d + 3]
        e4 = xs[1, d + 4]
        e5 = xs[1, d + 5]
        e6 = xs[1, d + 6]
        e7 = xs[1, d + 7]
        f0 = xs[2, d]
        f1 = xs[2, d + 1]
        f2 = xs[2, d + 2]
        f3 = xs[2, d + 3]
        f4 = xs[2, d + 4]
        f5 = xs[2, d + 5]
        f6 = xs[2, d + 6]
        f7 = xs[2, d + 7]
        g0 = xs[3, d]
        g1 = xs[3, d + 1]
        g2 = xs[3, d + 2]
        g3 = xs[3, d + 3]
        g4 = xs[3, d + 4]
        g5 = xs[3, d + 5]
        g6 = xs[3, d + 6]
        g7 = xs[3, d + 7]
        if d == 0:
            for k in range(kt):
                w0 = q0[k]
                w1 = q1[k]
                w2 = q2[k]
                w3 = q3[k]
                w4 = q4[k]
                w5 = q5[k]
                w6 = q6[k]
                w7 = q7[k]
                ck = c[k]
                b0[k] = ck + (a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3
                              + a4 * w4 + a5 * w5 + a6 * w6 + a7 * w7)
                b1[k] = ck + (e0 * w0 + e1 * w1 + e2 * w2 + e3 * w3
                              + e4 * w4 + e5 * w5 + e6 * w6 + e7 * w7)
                b2[k] = ck + (f0 * w0 + f1 * w1 + f2 * w2 + f3 * w3
                              + f4 * w4 + f5 * w5 + f6 * w6 + f7 * w7)
                b3[k] = ck + (g0 * w0 + g1 * w1 + g2 * w2 + g3 * w3
                              + g4 * w4 + g5 * w5 + g6 * w6 + g7 * w7)
        else:
            for k in range(kt):
                w0 = q0[k]
                w1 = q1[k]
                w2 = q2[k]
                w3 = q3[k]
                w4 = q4[k]
                w5 = q5[k]
                w6 = q6[k]
                w7 = q7[k]
                b0[k] += (a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3
                          + a4 * w4 + a5 * w5 + a6 * w6 + a7 * w7)
                b1[k] += (e0 * w0 + e1 * w1 + e2 * w2 + e3 * w3
                          + e4 * w4 + e5 * w5 + e6 * w6 + e7 * w7)
                b2[k] += (f0 * w0 + f1 * w1 + f2 * w2 + f3 * w3
                          + f4 * w4 + f5 * w5 + f6 * w6 + f7 * w7)
                b3[k] += (g0 * w0 + g1 * w1 + g2 * w2 + g3 * w3
                          + g4 * w4 + g5 * w5 + g6 * w6 + g7 * w7)
    return 0


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _search_rows(xs, nr, CT, cnorm, buf, lanes, ilanes, best, second, bidx):
    """Best and second-best ``cnorm[k] + xs[r] . CT[:, k]`` over all codes for nr <= 4 rows.

    xs (4, Dp) holds -2 (x - shift) with zeros after the D features (and zero
    rows after nr); CT has Dp rows (a multiple of 8, zero padded). Eight
    features of four rows are folded into each sweep over a tile of codes, so
    a tile in L1 is read once per 32 multiply-adds per code; the running
    argmin keeps 16 lanes per row (vectorizable) and is reduced once per row.
    lanes (4, 2, 16) float32 and ilanes (4, 16) int64 are scratch.
    Outputs best, second (4,) float32 and bidx (4,) int64.
    """
    K = CT.shape[1]
    for r in range(_R):
        for j in range(_L):
            lanes[r, 0, j] = np.inf
            lanes[r, 1, j] = np.inf
            ilanes[r, j] = 0
    b0 = buf[0]
    b1 = buf[1]
    b2 = buf[2]
    b3 = buf[3]
    for k0 in range(0, K, _KT):
        k1 = min(K, k0 + _KT)
        kt = k1 - k0
        c = cnorm[k0:k1]
        _tile_dots(xs, CT, c, k0, k1, b0, b1, b2, b3)
        for r in range(nr):
            _lane_update(buf[r], kt, k0, lanes[r, 0], lanes[r, 1], ilanes[r])
    for r in range(nr):
        bst, sec, bi = _lane_reduce(lanes[r, 0], lanes[r, 1], ilanes[r])
        best[r] = bst
        second[r] = sec
        bidx[r] = bi
    return 0


@njit(cache=True, fastmath=True, nogil=True, inline="always")
def _load_row(X, i, shift, xs, r):
    """xs[r, :D] = -2 (X[i] - shift); returns ||X[i] - shift||^2."""
    x2 = 0.0
    for d in range(X.shape[1]):
        v = X[i, d] - shift[d]
        x2 += v * v
        xs[r, d] = -2.0 * v
    return x2


def _assign_fused(X, shift, CT, cnorm, labels, mind, sums, counts, sse, accumulate):
    """Fused distance + argmin (+ centroid sums) over all rows of X.

    X (N, D) float32; shift (D,) float32; CT (Dp, K) float32 codes transposed,
    already shifted, zero-padded to Dp = 8 * ceil(D / 8) rows; cnorm (K,)
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
        xs = np.zeros((_R, CT.shape[0]), dtype=np.float32)
        buf = np.empty((_R, min(K, _KT)), dtype=np.float32)
        lanes = np.empty((_R, 2, _L), dtype=np.float32)
        ilanes = np.empty((_R, _L), dtype=np.int64)
        best = np.empty(_R, dtype=np.float32)
        second = np.empty(_R, dtype=np.float32)
        bidx = np.empty(_R, dtype=np.int64)
        x2 = np.empty(_R, dtype=np.float32)
        for i0 in range(start, stop, _R):
            nr = min(_R, stop - i0)
            for r in range(nr):
                x2[r] = _load_row(X, i0 + r, shift, xs, r)
            for r in range(nr, _R):
                for d in range(D):
                    xs[r, d] = 0.0
            _search_rows(xs, nr, CT, cnorm, buf, lanes, ilanes, best, second, bidx)
            for r in range(nr):
                i = i0 + r
                bi = bidx[r]
                dist = x2[r] + best[r]
                dist = dist if dist > 0.0 else 0.0
                labels[i] = bi
                mind[i] = dist
                if accumulate:
                    counts[t, bi] += 1
                    sse[t, bi] += dist
                    for d in range(D):
                        sums[t, bi, d] -= 0.5 * xs[r, d]
    return 0


def _assign_bounded(X, shift, CT, S, cnorm, labels, mind, upper, lower, drift, jumped, fresh,
                   sums, counts, sse, nbr, rad, use_nbr, ST, exact):
    """Lloyd pass with Hamerly bounds: rows whose label provably did not change skip the search.

    upper[i] bounds the distance (not squared) of row i to its code from
    above, lower[i] the distance to any other code from below; both are kept
    across passes. drift (K,) holds how far each code moved since the last
    pass. The codes in ``jumped`` (int64; the few that moved most, e.g.
    re-seeded ones) are left out of the drift bound and measured exactly for
    every row instead, so one far jump does not force a full search of all rows.
    With ``fresh`` every row is searched (first pass, or codes added/replaced).
    S (K, D) float32 shifted codes. Rows that need a search are queued and
    searched four at a time. Accumulates like :func:`assign_fused`.

    With ``use_nbr``, a row with a label (``labels[i] >= 0``: its code from the
    last pass, or from the previous LBG level, whose codes keep their indices
    when they split) whose bounds fail is first searched among ``nbr[a]``, the
    M codes nearest to its code a (a itself first; see
    :func:`code_neighbours`). Every code outside that list is at least
    ``rad[a]`` from a, hence at least ``rad[a] - d(x, a)`` from x (triangle
    inequality): when the best candidate is nearer than that, it is the exact
    nearest code and the full search is skipped. Otherwise the search moves to
    the best candidate's list (at most _HOPS lists), then falls back to a full
    search, so the result is always the exact nearest code (with ``exact``
    False, the walk's last best code is kept instead: a near code, not always
    the nearest, for uses such as Gaussian selection). ST (K, Dp) float32
    are the shifted codes zero-padded to Dp features (vectorizable distances).
    Returns the number of rows fully searched.
    """
    N = X.shape[0]
    D = X.shape[1]
    K = CT.shape[1]
    T = sums.shape[0]
    J = jumped.shape[0]
    isj = np.zeros(K, dtype=np.bool_)
    for j in range(J):
        isj[jumped[j]] = True
    # largest and second-largest drift of the other codes: a row assigned to code a
    # loses at most the largest drift of the *other* codes from its lower bound
    m1 = 0.0
    m2 = 0.0
    a1 = -1
    for k in range(K):
        if isj[k]:
            continue
        v = drift[k]
        if v > m1:
            m2 = m1
            m1 = v
            a1 = k
        elif v > m2:
            m2 = v
    M = nbr.shape[1]
    Dp = CT.shape[0]
    chunk = (N + T - 1) // T
    searched = np.zeros(T, dtype=np.int64)
    for t in prange(T):
        start = t * chunk
        stop = min(N, start + chunk)
        xs = np.zeros((_R, CT.shape[0]), dtype=np.float32)
        buf = np.empty((_R, min(K, _KT)), dtype=np.float32)
        lanes = np.empty((_R, 2, _L), dtype=np.float32)
        ilanes = np.empty((_R, _L), dtype=np.int64)
        best = np.empty(_R, dtype=np.float32)
        second = np.empty(_R, dtype=np.float32)
        bidx = np.empty(_R, dtype=np.int64)
        x2 = np.empty(_R, dtype=np.float32)
        queue = np.empty(_R, dtype=np.int64)
        one = np.zeros((1, CT.shape[0]), dtype=np.float32)
        nq = 0
        nfull = 0
        for i in range(start, stop + _R):
            if i < stop:
                done = False
                xx = _load_row(X, i, shift, one, 0)
                a = labels[i]
                dd = 0.0
                if not fresh:
                    u = upper[i] + drift[a]
                    lo = lower[i] - (m2 if a == a1 else m1)
                    if u < lo and not isj[a]:
                        # tighten the upper bound with the exact distance to the code
                        dd = 0.0
                        for d in range(D):
                            v = -0.5 * one[0, d] - S[a, d]
                            dd += v * v
                        u = np.sqrt(dd)
                        if u < lo * 0.9999:
                            # the jumped codes, exactly: the nearest one may win
                            jb = -1
                            e1 = np.inf
                            e2 = np.inf
                            for jj in range(J):
                                c = jumped[jj]
                                e = 0.0
                                for d in range(D):
                                    v = -0.5 * one[0, d] - S[c, d]
                                    e += v * v
                                if e < e1:
                                    e2 = e1
                                    e1 = e
                                    jb = c
                                elif e < e2:
                                    e2 = e
                            r1 = np.sqrt(e1)
                            if u < r1:
                                mind[i] = dd
                                upper[i] = u
                                lower[i] = min(lo, r1)
                                done = True
                            elif r1 < lo * 0.9999:
                                # a jumped code is nearer than a and than every other code
                                a = jb
                                dd = e1
                                labels[i] = a
                                mind[i] = dd
                                upper[i] = r1
                                lower[i] = min(lo, u, np.sqrt(e2))
                                done = True
                if not done and use_nbr and a >= 0:
                    # the codes nearest to the row's code: exact when the best beats the
                    # bound on every code outside the list; else walk to the best and retry
                    for _hop in range(_HOPS):
                        e1 = _BIG
                        e2 = _BIG
                        ea = _BIG
                        jb = a
                        for m in range(M):
                            c = nbr[a, m]
                            e = 0.0
                            for d in range(Dp):
                                v = -0.5 * one[0, d] - ST[c, d]
                                e += v * v
                            if c == a:
                                ea = e
                            if e < e1:
                                e2 = e1
                                e1 = e
                                jb = c
                            elif e < e2:
                                e2 = e
                        out = rad[a] - np.sqrt(ea)
                        r1 = np.sqrt(e1)
                        if r1 < out * 0.9999 or (not exact and (jb == a or _hop == _HOPS - 1)):
                            a = jb
                            dd = e1
                            labels[i] = a
                            mind[i] = dd
                            upper[i] = r1
                            lower[i] = min(out, np.sqrt(e2))
                            done = True
                            break
                        if jb == a:
                            break
                        a = jb
                if done:
                    counts[t, a] += 1
                    sse[t, a] += dd
                    for d in range(D):
                        sums[t, a, d] -= 0.5 * one[0, d]
                else:
                    x2[nq] = xx
                    for d in range(D):
                        xs[nq, d] = one[0, d]
                    queue[nq] = i
                    nq += 1
            if nq == _R or (i >= stop and nq > 0):
                for r in range(nq, _R):
                    for d in range(D):
                        xs[r, d] = 0.0
                _search_rows(xs, nq, CT, cnorm, buf, lanes, ilanes, best, second, bidx)
                for r in range(nq):
                    j = queue[r]
                    bi = bidx[r]
                    dist = x2[r] + best[r]
                    dist = dist if dist > 0.0 else 0.0
                    d2 = x2[r] + second[r]
                    d2 = d2 if d2 > 0.0 else 0.0
                    labels[j] = bi
                    mind[j] = dist
                    upper[j] = np.sqrt(dist)
                    lower[j] = np.sqrt(d2)
                    counts[t, bi] += 1
                    sse[t, bi] += dist
                    for d in range(D):
                        sums[t, bi, d] -= 0.5 * xs[r, d]
                nfull += nq
                nq = 0
            if i >= stop:
                break
        searched[t] = nfull
    # summed here, not with searched.sum(): numba's array reductions live in a module
    # whose import (with scipy.linalg's) a cached kernel that uses them pays at load
    total = 0
    for u in range(T):
        total += searched[u]
    return total


def _code_neighbours(CT, S, cnorm, nbr, rad):
    """The M codes nearest to each code (itself first) and a bound on the others.

    CT (Dp, K) float32 shifted codes transposed (as for the search), S (K, D)
    the same codes row-major, cnorm (K,) their squared norms. Outputs nbr
    (K, M) int32: row k is k followed by its M - 1 nearest other codes; rad
    (K,) float32: a lower bound on the distance from k to every code *not* in
    its list (3e38 when the list holds every code: inf does not survive
    fastmath). Distances come from the search's 4-row tile kernel
    (``||c||^2 - 2 k.c + ||k||^2``); the bound is lowered by a margin for its
    float32 rounding. Four codes are processed per group (one sweep over CT).
    """
    Dp = CT.shape[0]
    K = CT.shape[1]
    D = S.shape[1]
    M = nbr.shape[1]
    cmax = 0.0
    for k in range(K):
        cmax = max(cmax, cnorm[k])
    for g in prange((K + _R - 1) // _R):
        xs = np.zeros((_R, Dp), dtype=np.float32)
        buf = np.empty((_R, min(K, _KT)), dtype=np.float32)
        vals = np.full((_R, M), _BIG32, dtype=np.float32)
        idxs = np.zeros((_R, M), dtype=np.int32)
        kg = g * _R
        nr = min(_R, K - kg)
        for r in range(nr):
            for d in range(D):
                xs[r, d] = -2.0 * S[kg + r, d]
        for c0 in range(0, K, _KT):
            c1 = min(K, c0 + _KT)
            _tile_dots(xs, CT, cnorm[c0:c1], c0, c1, buf[0], buf[1], buf[2], buf[3])
            for r in range(nr):
                k = kg + r
                ck = cnorm[k]
                thr = vals[r, M - 1]
                for j in range(c1 - c0):
                    v = buf[r, j] + ck
                    if v < thr and c0 + j != k:
                        # insertion into the sorted M best (the threshold rejects most codes)
                        q = M - 1
                        while q > 0 and vals[r, q - 1] > v:
                            vals[r, q] = vals[r, q - 1]
                            idxs[r, q] = idxs[r, q - 1]
                            q -= 1
                        vals[r, q] = v
                        idxs[r, q] = c0 + j
                        thr = vals[r, M - 1]
        for r in range(nr):
            k = kg + r
            nbr[k, 0] = k
            for q in range(M - 1):
                nbr[k, q + 1] = idxs[r, q]
            if K > M:
                # vals[r, M - 1]: the nearest code left out; minus the rounding margin
                v = vals[r, M - 1] - 4e-6 * (cnorm[k] + cmax)
                rad[k] = np.sqrt(v) if v > 0.0 else 0.0
            else:
                rad[k] = _BIG32
    return 0


code_neighbours = njit(cache=True, parallel=True, fastmath=True, nogil=True)(_code_neighbours)


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def cluster_power_axes(X, shift, order, starts, counts, sel, n_iter, v, lam):
    """Batched power iteration: top principal axis of each selected cluster's rows.

    X (n, D) float32 rows; order (n,) int64 row indices sorted by cluster,
    cluster k's rows being order[starts[k]:starts[k] + counts[k]]; sel (S,)
    int64 clusters to compute; v (S, D) float32 unit start vectors, replaced
    by the axes; lam (S,) float64 gets ||Cov v|| (the top eigenvalue once v
    has converged). Parallel over the selected clusters; each keeps its mean
    and one D-vector accumulator (float64), no n x D temporary.
    """
    S = sel.shape[0]
    D = X.shape[1]
    for j in prange(S):
        k = sel[j]
        c = counts[k]
        s0 = starts[k]
        lam[j] = 0.0
        if c < 2:
            continue
        mean = np.zeros(D)
        for r in range(s0, s0 + c):
            i = order[r]
            for d in range(D):
                mean[d] += X[i, d] - shift[d]
        for d in range(D):
            mean[d] /= c
        w = np.zeros(D)
        for _ in range(n_iter):
            w[:] = 0.0
            for r in range(s0, s0 + c):
                i = order[r]
                p = 0.0
                for d in range(D):
                    p += (X[i, d] - shift[d] - mean[d]) * v[j, d]
                for d in range(D):
                    w[d] += p * (X[i, d] - shift[d] - mean[d])
            nrm = 0.0
            for d in range(D):
                nrm += w[d] * w[d]
            nrm = np.sqrt(nrm)
            if nrm <= 0.0:
                break
            for d in range(D):
                v[j, d] = w[d] / nrm
            lam[j] = nrm / c
    return 0


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def stage_target_sums(X, recon, C, lab, sums, counts):
    """Per-code sums of one residual stage's targets ``X - recon + C[lab]`` (no N x D temporary).

    X, recon (N, D) float32; C (K, D) float32 the stage's codebook; lab (N,)
    int32 its codes; sums (T, K, D) float64 one slice per row chunk (zeroed by
    the caller, summed over T by the caller); counts (K,) int64 (added to).
    """
    N = X.shape[0]
    D = X.shape[1]
    T = sums.shape[0]
    chunk = (N + T - 1) // T
    for t in prange(T):
        for i in range(t * chunk, min(N, (t + 1) * chunk)):
            k = lab[i]
            for d in range(D):
                sums[t, k, d] += X[i, d] - recon[i, d] + C[k, d]
    for i in range(N):
        counts[lab[i]] += 1
    return 0


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def swap_stage_codes(recon, old, new, lab):
    """recon[i] += new[lab[i]] - old[lab[i]] in place (one stage's codebook replaced)."""
    N = recon.shape[0]
    D = recon.shape[1]
    for i in prange(N):
        k = lab[i]
        for d in range(D):
            recon[i, d] += new[k, d] - old[k, d]
    return 0


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
    """Per-code sums of shifted rows, counts and distortion; parallel over row chunks.

    sums (T, K, D) float64, one slice per thread chunk (the caller sums over
    T), counts (K,) int64, sse (K,) float64 (added to, not reset). Rows are read
    contiguously (wide rows: 2048 features).
    """
    N = X.shape[0]
    D = X.shape[1]
    T = sums.shape[0]
    chunk = (N + T - 1) // T
    for t in prange(T):
        for i in range(t * chunk, min(N, (t + 1) * chunk)):
            k = labels[i]
            for d in range(D):
                sums[t, k, d] += X[i, d] - shift[d]
    for i in range(N):
        counts[labels[i]] += 1
        sse[labels[i]] += mind[i]
    return 0


@njit(cache=True, parallel=True, fastmath=True, nogil=True)
def subtract_codes(R, C, lab):
    """R[i] -= C[lab[i]] in place (a residual stage applied; no N x D temporary).

    R (N, D) float32, C (K, D) float32, lab (N,) int32 in 0..K-1.
    """
    N = R.shape[0]
    D = R.shape[1]
    for i in prange(N):
        k = lab[i]
        for d in range(D):
            R[i, d] -= C[k, d]
    return 0


@njit(cache=True, parallel=True, nogil=True)
def stage_quality_rows(X, B, codes, sse, dot, rn2, xn2):
    """Per row and stage: squared error, x . recon and ||recon||^2 of the first s+1 stages.

    X (N, D) float32; B (S, K, D) float32 the stacked codebooks; codes (N, S)
    int32; sse, dot, rn2 (N, S) float64 and xn2 (N,) float64 are written.
    """
    N = X.shape[0]
    D = X.shape[1]
    S = B.shape[0]
    for i in prange(N):
        rec = np.zeros(D, np.float32)
        x2 = 0.0
        for d in range(D):
            x2 += np.float64(X[i, d]) * X[i, d]
        xn2[i] = x2
        for s in range(S):
            k = codes[i, s]
            e2 = 0.0
            xr = 0.0
            r2 = 0.0
            for d in range(D):
                rec[d] += B[s, k, d]
                v = np.float64(rec[d])
                e = np.float64(X[i, d]) - v
                e2 += e * e
                xr += np.float64(X[i, d]) * v
                r2 += v * v
            sse[i, s] = e2
            dot[i, s] = xr
            rn2[i, s] = r2
    return 0


@njit(cache=True, parallel=True, nogil=True)
def cluster_covariances(V, order, starts, counts, norm, cov):
    """Per-cluster covariance of the rows of ``V`` (n, D) float64: cluster k's rows are
    order[starts[k]:starts[k] + counts[k]]; its mean and its centred second moment are
    divided by ``norm[k]`` (> 0). ``cov`` (K, D, D) float64 gets them (zero for an empty
    cluster). Parallel over the clusters; one D-vector and one D x D accumulator each."""
    K = counts.shape[0]
    D = V.shape[1]
    for k in prange(K):
        c = counts[k]
        s0 = starts[k]
        mean = np.zeros(D)
        for r in range(s0, s0 + c):
            i = order[r]
            for d in range(D):
                mean[d] += V[i, d]
        for d in range(D):
            mean[d] /= norm[k]
        acc = np.zeros((D, D))
        x = np.empty(D)
        for r in range(s0, s0 + c):
            i = order[r]
            for d in range(D):
                x[d] = V[i, d] - mean[d]
            for d1 in range(D):
                x1 = x[d1]
                for d2 in range(d1, D):
                    acc[d1, d2] += x1 * x[d2]
        # centred about the mean of norm[k] rows: when norm[k] is the count, the
        # covariance; the correction term keeps the old E[xy] - E[x]E[y] for others
        f = 1.0 - c / norm[k]
        for d1 in range(D):
            for d2 in range(d1, D):
                v = acc[d1, d2] / norm[k] + f * mean[d1] * mean[d2]
                cov[k, d1, d2] = v
                cov[k, d2, d1] = v


fast_cache_loads(globals())
