"""Numba kernels for HMM inference and tied-mixture emissions.

House rules: flat arrays in, caller-allocated outputs, int32/int64 indices,
``cache=True``, and a status code instead of an exception. The Python side in
:mod:`vqalign.hmm.inference`, :mod:`vqalign.hmm.gmm` and :mod:`vqalign.hmm.tied`
validates every argument and turns a status into a clear error.

Banded (linear-chain) models store transitions as three columns
``A0[i] = P(i -> i)``, ``A1[i] = P(i -> i+1)``, ``A2[i] = P(i -> i+2)``, so a
forward or backward step costs O(S) instead of O(S^2).

Status codes returned by the inference kernels (``info[1]`` then holds the
frame where it happened): OK, UNDERFLOW (the scaled recursion hit an all-zero
frame; the caller retries in log space), IMPOSSIBLE (no path has non-zero
probability), BAD_VALUE (NaN or +inf in the emissions).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from vqalign._jit import fast_cache_loads

OK = 0
UNDERFLOW = 1      # scaled recursion hit an all-zero frame (try the log method)
IMPOSSIBLE = 2     # no path has non-zero probability
BAD_VALUE = 3      # NaN or +inf in the emissions
OVER_BUDGET = 4    # the Viterbi's back-pointers would pass the caller's max_cells

# posterior modes
POST_NONE = 0
POST_STATES = 1
POST_EMIT = 2


# ---------------------------------------------------------------------------
# banded (linear chain) scaled forward-backward
# ---------------------------------------------------------------------------

#: scaled alpha, beta and posterior values below this are set to 0, keeping the recursions
#: out of the denormal range; alpha sums to 1 per frame and sum(alpha * beta) = 1, so what
#: is dropped is below 1e-280 of a posterior
_TINY = 1e-280


# ---------------------------------------------------------------------------
# banded log-space forward-backward and Viterbi
# ---------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _lse3(a, b, c):
    m = a
    if b > m:
        m = b
    if c > m:
        m = c
    if m == -np.inf:
        return m
    return m + math.log(math.exp(a - m) + math.exp(b - m) + math.exp(c - m))


@njit(cache=True, nogil=True)
def band_forward_backward_log(log_emit, emit_ids, lA0, lA1, lA2, lstart, lend,
                              mode, la, out, info):
    """Log-space twin of :func:`band_forward_backward_scaled`.

    Same arguments except transitions, start and end are logs and ``la`` is the
    (T, S) log-alpha (or (2, S) scratch in mode 0). No scale workspace.
    """
    T = log_emit.shape[0]
    S = emit_ids.shape[0]
    store = mode != POST_NONE
    info[0] = -np.inf
    info[1] = 0
    for t in range(T):
        for s in range(S):
            x = np.float64(log_emit[t, emit_ids[s]])
            if x != x or x == np.inf:
                info[1] = t
                return BAD_VALUE
    for s in range(S):
        la[0, s] = lstart[s] + np.float64(log_emit[0, emit_ids[s]])
    for t in range(1, T):
        rp = t - 1 if store else (t - 1) & 1
        rc = t if store else t & 1
        for s in range(S):
            b = -np.inf
            c = -np.inf
            if s >= 1:
                b = la[rp, s - 1] + lA1[s - 1]
            if s >= 2:
                c = la[rp, s - 2] + lA2[s - 2]
            la[rc, s] = _lse3(la[rp, s] + lA0[s], b, c) + np.float64(log_emit[t, emit_ids[s]])
    rl = T - 1 if store else (T - 1) & 1
    m = -np.inf
    for s in range(S):
        v = la[rl, s] + lend[s]
        if v > m:
            m = v
    if m == -np.inf:
        info[1] = T - 1
        return IMPOSSIBLE
    acc = 0.0
    for s in range(S):
        acc += math.exp(la[rl, s] + lend[s] - m)
    ll = m + math.log(acc)
    info[0] = ll
    if not store:
        return OK
    lb = np.empty(S)
    w = np.empty(S + 2)
    w[S] = -np.inf
    w[S + 1] = -np.inf
    for s in range(S):
        lb[s] = lend[s]
    _log_posterior_row(la, lb, T - 1, ll, emit_ids, mode, out)
    for t in range(T - 2, -1, -1):
        for s in range(S):
            w[s] = np.float64(log_emit[t + 1, emit_ids[s]]) + lb[s]
        for s in range(S):
            lb[s] = _lse3(lA0[s] + w[s], lA1[s] + w[s + 1], lA2[s] + w[s + 2])
        _log_posterior_row(la, lb, t, ll, emit_ids, mode, out)
    return OK


@njit(cache=True, nogil=True)
def _log_posterior_row(la, lb, t, ll, emit_ids, mode, out):
    S = lb.shape[0]
    if mode == POST_STATES:
        for s in range(S):
            out[t, s] = math.exp(la[t, s] + lb[s] - ll)
    else:
        for s in range(S):
            out[t, emit_ids[s]] += math.exp(la[t, s] + lb[s] - ll)


# ---------------------------------------------------------------------------
# dense (generic) versions, O(T * S^2): for tests and small general models
# ---------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def dense_forward_backward_scaled(log_emit, start, trans, end, post, info):
    """Scaled forward-backward with a dense (S, S) transition matrix (linear probs)."""
    T, S = log_emit.shape
    alpha = np.empty((T, S))
    scale = np.empty(T)
    rowmax = np.empty(T)
    b = np.empty(S)
    info[0] = -np.inf
    info[1] = 0
    ll = 0.0
    for t in range(T):
        m = -np.inf
        for s in range(S):
            x = log_emit[t, s]
            if x != x or x == np.inf:
                info[1] = t
                return BAD_VALUE
            if x > m:
                m = x
        if m == -np.inf:
            info[1] = t
            return IMPOSSIBLE
        rowmax[t] = m
        for s in range(S):
            b[s] = math.exp(log_emit[t, s] - m)
        c = 0.0
        for j in range(S):
            if t == 0:
                v = start[j]
            else:
                v = 0.0
                for i in range(S):
                    v += alpha[t - 1, i] * trans[i, j]
            v *= b[j]
            alpha[t, j] = v
            c += v
        if not (c > 0.0):
            info[1] = t
            return UNDERFLOW
        for j in range(S):
            alpha[t, j] /= c
        scale[t] = c
        ll += math.log(c) + m
    z = 0.0
    for s in range(S):
        z += alpha[T - 1, s] * end[s]
    if not (z > 0.0):
        info[1] = T - 1
        return UNDERFLOW
    info[0] = ll + math.log(z)
    beta = np.empty(S)
    w = np.empty(S)
    for s in range(S):
        beta[s] = end[s]
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            for j in range(S):
                w[j] = math.exp(log_emit[t + 1, j] - rowmax[t + 1]) * beta[j]
            for i in range(S):
                v = 0.0
                for j in range(S):
                    v += trans[i, j] * w[j]
                beta[i] = v / scale[t + 1]
        tot = 0.0
        for s in range(S):
            tot += alpha[t, s] * beta[s]
        for s in range(S):
            post[t, s] = alpha[t, s] * beta[s] / tot if tot > 0 else 0.0
    return OK


@njit(cache=True, nogil=True)
def _lse_vec(x):
    m = -np.inf
    for i in range(x.shape[0]):
        if x[i] > m:
            m = x[i]
    if m == -np.inf:
        return m
    acc = 0.0
    for i in range(x.shape[0]):
        acc += math.exp(x[i] - m)
    return m + math.log(acc)


@njit(cache=True, nogil=True)
def dense_forward_backward_log(log_emit, lstart, ltrans, lend, post, info):
    """Log-space forward-backward with a dense (S, S) log transition matrix."""
    T, S = log_emit.shape
    la = np.empty((T, S))
    lb = np.empty((T, S))
    tmp = np.empty(S)
    info[0] = -np.inf
    info[1] = 0
    for t in range(T):
        for s in range(S):
            x = log_emit[t, s]
            if x != x or x == np.inf:
                info[1] = t
                return BAD_VALUE
    for s in range(S):
        la[0, s] = lstart[s] + log_emit[0, s]
    for t in range(1, T):
        for j in range(S):
            for i in range(S):
                tmp[i] = la[t - 1, i] + ltrans[i, j]
            la[t, j] = _lse_vec(tmp) + log_emit[t, j]
    for s in range(S):
        tmp[s] = la[T - 1, s] + lend[s]
    ll = _lse_vec(tmp)
    if ll == -np.inf:
        info[1] = T - 1
        return IMPOSSIBLE
    info[0] = ll
    for s in range(S):
        lb[T - 1, s] = lend[s]
    for t in range(T - 2, -1, -1):
        for i in range(S):
            for j in range(S):
                tmp[j] = ltrans[i, j] + log_emit[t + 1, j] + lb[t + 1, j]
            lb[t, i] = _lse_vec(tmp)
    for t in range(T):
        for s in range(S):
            post[t, s] = math.exp(la[t, s] + lb[t, s] - ll)
    return OK


@njit(cache=True, nogil=True)
def dense_viterbi(log_emit, lstart, ltrans, lend, path, info):
    """Viterbi with a dense (S, S) log transition matrix; path int32 (T,)."""
    T, S = log_emit.shape
    delta = np.empty((T, S))
    bp = np.zeros((T, S), dtype=np.int32)
    info[0] = -np.inf
    info[1] = 0
    for t in range(T):
        for s in range(S):
            x = log_emit[t, s]
            if x != x or x == np.inf:
                info[1] = t
                return BAD_VALUE
    for s in range(S):
        delta[0, s] = lstart[s] + log_emit[0, s]
    for t in range(1, T):
        for j in range(S):
            best = -np.inf
            arg = 0
            for i in range(S):
                v = delta[t - 1, i] + ltrans[i, j]
                if v > best:
                    best = v
                    arg = i
            delta[t, j] = best + log_emit[t, j]
            bp[t, j] = arg
    best = -np.inf
    arg = -1
    for s in range(S):
        v = delta[T - 1, s] + lend[s]
        if v > best:
            best = v
            arg = s
    if arg < 0:
        info[1] = T - 1
        return IMPOSSIBLE
    info[0] = best
    s = arg
    for t in range(T - 1, -1, -1):
        path[t] = s
        s = bp[t, s]
    return OK


# ---------------------------------------------------------------------------
# diagonal Gaussians and tied-mixture emissions
# ---------------------------------------------------------------------------

# Each row-wise kernel has a serial core over rows [t0, t1) and a parallel driver
# that runs the core on chunks in prange. The Python side calls the core directly
# for small inputs: launching threads costs more than the work there (and much
# more when the 2 cores are shared).

@njit(cache=True, nogil=True)
def diag_gauss_loglik_rows(X, means, inv_var, log_const, out, t0, t1):
    """out[t, k] = log N(X[t] | means[k], diag(1/inv_var[k])) for rows t0..t1-1.

    log_const[k] = -0.5 * (D log 2pi + sum log var[k]). out: (T, K) float32/64.
    """
    D = X.shape[1]
    K = means.shape[0]
    for t in range(t0, t1):
        for k in range(K):
            acc = 0.0
            for d in range(D):
                diff = np.float64(X[t, d]) - means[k, d]
                acc += diff * diff * inv_var[k, d]
            out[t, k] = log_const[k] - 0.5 * acc
    return 0


@njit(cache=True, nogil=True)
def _push_top(vals, idxs, v, k):
    """Insert value ``v`` of index ``k`` into the best-first lists ``vals``/``idxs``.

    A slot whose index is negative is empty and always loses; ties keep the
    earlier index first. Lists initialised with index 0 behave as strictly full.
    """
    n = vals.shape[0]
    if v > vals[n - 1] or idxs[n - 1] < 0:
        j = n - 1
        while j > 0 and (v > vals[j - 1] or idxs[j - 1] < 0):
            vals[j] = vals[j - 1]
            idxs[j] = idxs[j - 1]
            j -= 1
        vals[j] = v
        idxs[j] = k


@njit(cache=True, nogil=True)
def diag_gauss_topn_rows(X, means, inv_var, log_const, idx, loglik, t0, t1):
    """Top-n Gaussians of rows t0..t1-1 without a (T, K) array.

    idx: int32 (T, n) output (best first), loglik: float32/64 (T, n) output.
    """
    D = X.shape[1]
    K = means.shape[0]
    n = idx.shape[1]
    bv = np.empty(n)
    bi = np.empty(n, dtype=np.int32)
    for t in range(t0, t1):
        for j in range(n):
            bv[j] = -np.inf
            bi[j] = -1
        for k in range(K):
            acc = 0.0
            for d in range(D):
                diff = np.float64(X[t, d]) - means[k, d]
                acc += diff * diff * inv_var[k, d]
            _push_top(bv, bi, log_const[k] - 0.5 * acc, k)
        for j in range(n):
            idx[t, j] = bi[j]
            loglik[t, j] = bv[j]
    return 0


@njit(cache=True, nogil=True)
def tied_emissions_rows(idx, loglik, W, log_w, cols, out, t0, t1):
    """out[t, e] = log sum_j w[e, idx[t, j]] exp(loglik[t, j]) for e in cols, rows t0..t1-1.

    idx int32 (T, n), loglik (T, n), W = exp(log_w) float64 (E, K), cols int32
    columns to compute (others untouched), out (T, E) float32/64. The n
    exponentials are taken once per frame (shifted by the frame's best
    log-likelihood), so each column costs n multiply-adds and one log; a column
    whose sum underflows is recomputed exactly in log space.
    """
    n = idx.shape[1]
    g = np.empty(n)
    for t in range(t0, t1):
        m = -np.inf
        for j in range(n):
            v = np.float64(loglik[t, j])
            if v > m:
                m = v
        if m == -np.inf:
            for jc in range(cols.shape[0]):
                out[t, cols[jc]] = -np.inf
            continue
        for j in range(n):
            g[j] = math.exp(np.float64(loglik[t, j]) - m)
        for jc in range(cols.shape[0]):
            e = cols[jc]
            acc = 0.0
            for j in range(n):
                acc += W[e, idx[t, j]] * g[j]
            if acc > 1e-280:
                out[t, e] = m + math.log(acc)
            else:
                mm = -np.inf
                for j in range(n):
                    v = log_w[e, idx[t, j]] + np.float64(loglik[t, j])
                    if v > mm:
                        mm = v
                if mm == -np.inf:
                    out[t, e] = -np.inf
                else:
                    a2 = 0.0
                    for j in range(n):
                        a2 += math.exp(log_w[e, idx[t, j]] + np.float64(loglik[t, j]) - mm)
                    out[t, e] = mm + math.log(a2)
    return 0


@njit(cache=True, nogil=True, parallel=True)
def diag_gauss_loglik(X, means, inv_var, log_const, out):
    """Parallel driver of :func:`diag_gauss_loglik_rows` over all rows."""
    T = X.shape[0]
    nch = (T + 255) // 256
    for c in prange(nch):
        diag_gauss_loglik_rows(X, means, inv_var, log_const, out, c * 256, min(T, c * 256 + 256))
    return 0


@njit(cache=True, nogil=True, parallel=True)
def diag_gauss_topn(X, means, inv_var, log_const, idx, loglik):
    """Parallel driver of :func:`diag_gauss_topn_rows` over all rows."""
    T = X.shape[0]
    nch = (T + 255) // 256
    for c in prange(nch):
        diag_gauss_topn_rows(X, means, inv_var, log_const, idx, loglik, c * 256,
                             min(T, c * 256 + 256))
    return 0


@njit(cache=True, nogil=True, parallel=True)
def tied_emissions_topn(idx, loglik, W, log_w, cols, out):
    """Parallel driver of :func:`tied_emissions_rows` over all rows."""
    T = idx.shape[0]
    nch = (T + 255) // 256
    for c in prange(nch):
        tied_emissions_rows(idx, loglik, W, log_w, cols, out, c * 256, min(T, c * 256 + 256))
    return 0


@njit(cache=True, nogil=True)
def topn_from_block_rows(ll, idx, val, t0, t1):
    """Top-n columns of rows t0..t1-1 of ll (B, K), best first, into idx / val (B, n)."""
    K = ll.shape[1]
    n = idx.shape[1]
    bv = np.empty(n)
    bi = np.empty(n, dtype=np.int32)
    for t in range(t0, t1):
        for j in range(n):
            bv[j] = -np.inf
            bi[j] = -1
        for k in range(K):
            _push_top(bv, bi, np.float64(ll[t, k]), k)
        for j in range(n):
            idx[t, j] = bi[j]
            val[t, j] = bv[j]
    return 0


@njit(cache=True, nogil=True, parallel=True)
def topn_from_block(ll, idx, val):
    """Parallel driver of :func:`topn_from_block_rows`."""
    T = ll.shape[0]
    nch = (T + 63) // 64
    for c in prange(nch):
        topn_from_block_rows(ll, idx, val, c * 64, min(T, c * 64 + 64))
    return 0


@njit(cache=True, nogil=True)
def accumulate_gauss_stats(X, idx, resp, nk, fk, sk):
    """nk[k] += r, fk[k] += r x, sk[k] += r x^2 over frames t and their n listed
    components idx[t, j] with weights resp[t, j] (float64 accumulators)."""
    T, D = X.shape
    n = idx.shape[1]
    for t in range(T):
        for j in range(n):
            r = resp[t, j]
            if r <= 0.0:
                continue
            k = idx[t, j]
            nk[k] += r
            for d in range(D):
                x = np.float64(X[t, d])
                fk[k, d] += r * x
                sk[k, d] += r * x * x
    return 0


@njit(cache=True, nogil=True)
def tied_accumulate_stats(idx, loglik, W, log_w, emit_post, X, counts, nk, fk, sk, gauss):
    """Tied-mixture M-step statistics from emission-column posteriors.

    For frame t and column e with posterior g = emit_post[t, e] > 0, the
    responsibilities of the listed Gaussians r_j ∝ w[e, k_j] N(x_t | k_j) add
    g * r_j to counts[e, k_j]; with ``gauss`` also to nk / fk / sk (occupancy,
    first and second moments per Gaussian). W = exp(log_w). Returns 0.
    """
    T, n = idx.shape
    E = emit_post.shape[1]
    D = X.shape[1]
    r = np.empty(n)
    gx = np.empty(n)
    occ = np.empty(n)
    for t in range(T):
        m = -np.inf
        for j in range(n):
            v = np.float64(loglik[t, j])
            if v > m:
                m = v
        if m == -np.inf:
            continue
        for j in range(n):
            gx[j] = math.exp(np.float64(loglik[t, j]) - m)
            occ[j] = 0.0
        for e in range(E):
            g = emit_post[t, e]
            if g <= 0.0:
                continue
            tot = 0.0
            for j in range(n):
                r[j] = W[e, idx[t, j]] * gx[j]
                tot += r[j]
            if not (tot > 1e-280):            # underflow: exact log-space responsibilities
                mm = -np.inf
                for j in range(n):
                    r[j] = log_w[e, idx[t, j]] + np.float64(loglik[t, j])
                    if r[j] > mm:
                        mm = r[j]
                if mm == -np.inf:
                    continue
                tot = 0.0
                for j in range(n):
                    r[j] = math.exp(r[j] - mm)
                    tot += r[j]
            f = g / tot
            for j in range(n):
                counts[e, idx[t, j]] += f * r[j]
                occ[j] += f * r[j]
        if gauss:
            for j in range(n):
                o = occ[j]
                if o <= 0.0:
                    continue
                k = idx[t, j]
                nk[k] += o
                for d in range(D):
                    x = np.float64(X[t, d])
                    fk[k, d] += o * x
                    sk[k, d] += o * x * x
    return 0


# ---------------------------------------------------------------------------
# the chain engine: batched banded scaled forward-backward (with a beam) and Viterbi
# ---------------------------------------------------------------------------
#
# Utterances are batched in flat tables: frames of utterance u are rows
# frame_off[u]:frame_off[u + 1] of the frame tables, its states are
# state_off[u]:state_off[u + 1] of the state tables (col = emission column of each
# state, trans (S, 3) = P(self), P(next), P(skip over the next state)).
#
# Emissions are read either from a dense table (``tied`` False: ``bl[t, col]``, linear
# likelihoods each row divided by a per-frame constant; ``log_bl`` for Viterbi) or
# computed on the fly from tied mixtures (``tied`` True): the frame's top-n Gaussians
# idx[t, :], eg[t, j] = exp(loglik_j - gmax[t]) and the (E, K) weights W, so that
# e(t, c) = sum_j W[c, idx[t, j]] * eg[t, j]; no (T, E) table is built.
#
# Only the cells of the active band are stored: a state range [lo[t], hi[t]] per frame
# (states a path can be in, trimmed by the beam), laid out one frame after the other in
# a flat buffer that grows as needed. With beam 0 (forward-backward) or -inf (Viterbi)
# nothing is pruned and the results are exact.

SINK_TIED = 0      # accumulate tied-mixture weight counts (and Gaussian statistics)
SINK_STATES = 1    # write state posteriors post[t, s]
SINK_EMIT = 2      # add state posteriors into post[t, col[s]]


@njit(cache=True, nogil=True, inline="always")
def _emission(t, c, tied, bl, idx, eg, W):
    if tied:
        v = 0.0
        for j in range(idx.shape[1]):
            v += W[c, idx[t, j]] * eg[t, j]
        return v
    return bl[t, c]


@njit(cache=True, nogil=True)
def _grow(buf, need):
    cap = buf.shape[0]
    if need <= cap:
        return buf
    while cap < need:
        cap *= 2
    out = np.empty(cap, buf.dtype)
    out[:buf.shape[0]] = buf
    return out


@njit(cache=True, nogil=True)
def _diag_states(frac, T, S, max_cells):
    """Half-width in states of the diagonal corridor of a chain (0: none): only chains
    above ``max_cells`` get one."""
    if frac <= 0.0 or T * S <= max_cells:
        return 0
    return max(64, int(frac * S))


@njit(cache=True, nogil=True)
def _keep_row(keep_all, C, t, row, a, b, abuf, roff, ckbuf, ckoff):
    """Store row[a:b+1] of frame t: every frame (``keep_all``, offsets roff) or only the
    checkpoints t % C == 0 (offsets ckoff). Returns the (possibly grown) buffers."""
    w = b - a + 1
    if keep_all:
        o = roff[t]
        roff[t + 1] = o + w
        abuf = _grow(abuf, o + w)
        for s in range(a, b + 1):
            abuf[o + s - a] = row[s]
    elif t % C == 0:
        k = t // C
        o = ckoff[k]
        ckoff[k + 1] = o + w
        ckbuf = _grow(ckbuf, o + w)
        for s in range(a, b + 1):
            ckbuf[o + s - a] = row[s]
    return abuf, ckbuf


@njit(cache=True, nogil=True)
def _restore_row(ckbuf, ckoff, k, lo, hi, ts, roff, segbuf):
    """Checkpoint k (frame ts) as the first row of a recomputed segment."""
    o0 = ckoff[k]
    w0 = hi[ts] - lo[ts] + 1
    roff[ts] = 0
    roff[ts + 1] = w0
    segbuf = _grow(segbuf, w0)
    for j in range(w0):
        segbuf[j] = ckbuf[o0 + j]
    return segbuf


@njit(cache=True, nogil=True)
def _accumulate_tied(g, c, t, e_tc, idx, eg, W, counts_c, X, occ_c, sx_c, sxx_c, gstats):
    """Share the posterior g of column c at frame t among the frame's top-n Gaussians."""
    if not e_tc > 0.0:
        return
    f = g / e_tc
    for j in range(idx.shape[1]):
        k = idx[t, j]
        r = f * W[c, k] * eg[t, j]
        counts_c[c, k] += r
        if gstats:
            occ_c[k] += r
            for d in range(X.shape[1]):
                x = X[t, d]
                sx_c[k, d] += r * x
                sxx_c[k, d] += r * x * x


@njit(cache=True, nogil=True)
def chain_forward_backward(tied, bl, idx, eg, W, f0, T, s0, S, col, trans, start, end, beam,
                           min_post, sink, post, counts_c, trans_counts, X, occ_c, sx_c, sxx_c,
                           gstats, band, ckpt, diag):
    """Scaled forward-backward of one chain over frames f0:f0+T and states s0:s0+S.

    Returns (log-likelihood without the per-frame constants of the emissions, status).
    ``beam`` > 0 drops states whose scaled forward value is below beam x the frame's
    maximum (0: exact). Posteriors below ``min_post`` are not accumulated (sink TIED).
    sink STATES/EMIT write local frames post[t - f0 + ...] = post[t, :]. trans_counts
    (S_total, 3) is skipped when it has no rows.

    Memory: with ``ckpt`` = 0 the forward band of every frame is kept; with ``ckpt`` =
    C > 0 only every C-th frame's band is (a checkpoint), and the backward pass
    recomputes one segment of C frames at a time from its checkpoint (bit-identical,
    one more forward pass): O((T / C + C) x band) cells instead of O(T x band).
    ``band[0]`` receives the number of cells held at the peak. ``diag`` > 0 keeps frame
    t within ``diag`` states of the chain's diagonal t * S / T (a flat start of a very
    long chain: bounded work before the model knows where the words are).
    """
    lo = np.empty(T, np.int64)
    hi = np.empty(T, np.int64)
    roff = np.zeros(T + 1, np.int64)
    scale = np.empty(T)
    keep_all = ckpt <= 0
    C = T if keep_all else ckpt
    nseg = (T + C - 1) // C
    abuf = np.empty(max(64, min(T * S, 64 * T + S))) if keep_all else np.empty(64)
    ckbuf = np.empty(64) if keep_all else np.empty(max(64, 8 * S))
    ckoff = np.zeros(nseg + 1, np.int64)
    prow = np.zeros(S + 2)
    crow = np.zeros(S + 2)
    want_trans = trans_counts.shape[0] > 0
    ll = 0.0
    for t in range(T):
        ft = f0 + t
        tot = 0.0
        mx = 0.0
        if t == 0:
            a = 0
            b = S - 1
            for s in range(S):
                v = start[s0 + s]
                if v > 0.0:
                    v *= _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                crow[s] = v
                tot += v
                if v > mx:
                    mx = v
        else:
            pa = lo[t - 1]
            pb = hi[t - 1]
            a = pa
            b = min(pb + 2, S - 1)
            if diag > 0:
                c = (t * S) // T
                a = max(a, c - diag)
                b = min(b, c + diag)
                if a > b:
                    band[0] = roff[t] + ckoff[t // C]
                    return -np.inf, UNDERFLOW
            # prow is zero just outside [pa, pb] (kept so below): no range checks inside
            for s in range(a, min(b, 1) + 1):
                v = prow[s] * trans[s0 + s, 0]
                if s == 1:
                    v += prow[0] * trans[s0, 1]
                if v > 0.0:
                    v *= _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                crow[s] = v
                tot += v
                if v > mx:
                    mx = v
            for s in range(max(a, 2), b + 1):
                v = (prow[s] * trans[s0 + s, 0] + prow[s - 1] * trans[s0 + s - 1, 1]
                     + prow[s - 2] * trans[s0 + s - 2, 2])
                if v > 0.0:
                    v *= _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                crow[s] = v
                tot += v
                if v > mx:
                    mx = v
        if not (tot > 0.0) or tot == np.inf:
            band[0] = roff[t] + ckoff[t // C]
            return -np.inf, UNDERFLOW
        thr = beam * mx
        while a < b and crow[a] <= thr:
            a += 1
        while b > a and crow[b] <= thr:
            b -= 1
        lo[t] = a
        hi[t] = b
        scale[t] = tot
        ll += math.log(tot)
        inv = 1.0 / tot
        if t > 0:
            for s in range(lo[t - 1], a):        # left behind by the band: zero again
                prow[s] = 0.0
        for s in range(a, b + 1):
            v = crow[s] * inv
            prow[s] = v if v > _TINY else 0.0
        for s in range(b + 1, min(b + 3, S + 2)):
            prow[s] = 0.0
        abuf, ckbuf = _keep_row(keep_all, C, t, prow, a, b, abuf, roff, ckbuf, ckoff)
    pend = 0.0
    for s in range(lo[T - 1], hi[T - 1] + 1):
        pend += prow[s] * end[s0 + s]
    if not pend > 0.0:      # pruned away, or below the scaled range: the caller decides
        band[0] = roff[T] + ckoff[nseg]
        return -np.inf, UNDERFLOW
    ll += math.log(pend)
    peak = roff[T] if keep_all else ckoff[nseg]
    if sink < 0:
        band[0] = peak
        return ll, OK
    # backward over the forward band: beta rows are indexed by state (S + 2 entries)
    beta_next = np.zeros(S + 2)
    beta_cur = np.zeros(S + 2)
    e_next = np.zeros(S + 2)
    e_cur = np.zeros(S + 2)
    segbuf = abuf if keep_all else np.empty(max(64, 8 * S))
    seg_peak = 0
    for kseg in range(nseg - 1, -1, -1):
        ts = kseg * C
        te = min(ts + C, T)
        if not keep_all:
            # recompute the segment's forward rows from its checkpoint
            segbuf = _restore_row(ckbuf, ckoff, kseg, lo, hi, ts, roff, segbuf)
            for t in range(ts + 1, te):
                pa = lo[t - 1]
                pb = hi[t - 1]
                po = roff[t - 1]
                o = roff[t]
                roff[t + 1] = o + hi[t] - lo[t] + 1
                segbuf = _grow(segbuf, roff[t + 1])
                inv = 1.0 / scale[t]
                ft = f0 + t
                for s in range(lo[t], hi[t] + 1):
                    v = 0.0
                    if s <= pb and s >= pa:
                        v = segbuf[po + s - pa] * trans[s0 + s, 0]
                    if s - 1 >= pa and s - 1 <= pb:
                        v += segbuf[po + s - 1 - pa] * trans[s0 + s - 1, 1]
                    if s - 2 >= pa and s - 2 <= pb:
                        v += segbuf[po + s - 2 - pa] * trans[s0 + s - 2, 2]
                    if v > 0.0:
                        v *= _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                    v *= inv
                    segbuf[o + s - lo[t]] = v if v > _TINY else 0.0
            if roff[te] > seg_peak:
                seg_peak = roff[te]
        for t in range(te - 1, ts - 1, -1):
            o = roff[t]
            at = lo[t]
            if t == T - 1:
                for s in range(lo[t], hi[t] + 1):
                    beta_next[s] = end[s0 + s] / pend
                    e_next[s] = _emission(f0 + t, col[s0 + s], tied, bl, idx, eg, W)
                    g = segbuf[o + s - at] * beta_next[s]
                    _post_sink(sink, g, min_post, f0 + t, t, s, s0, col, e_next[s], post, idx,
                               eg, W, counts_c, X, occ_c, sx_c, sxx_c, gstats)
                continue
            inv = 1.0 / scale[t + 1]
            a1 = lo[t + 1]
            b1 = hi[t + 1]
            # beta_next and e_next are zero outside [a1, b1]: no range checks inside
            for s in range(lo[t], hi[t] + 1):
                v0 = trans[s0 + s, 0] * e_next[s] * beta_next[s]
                v1 = trans[s0 + s, 1] * e_next[s + 1] * beta_next[s + 1]
                v2 = trans[s0 + s, 2] * e_next[s + 2] * beta_next[s + 2]
                bv = (v0 + v1 + v2) * inv
                beta_cur[s] = bv if bv > _TINY else 0.0
                if want_trans:
                    al = segbuf[o + s - at] * inv
                    trans_counts[s0 + s, 0] += al * v0
                    trans_counts[s0 + s, 1] += al * v1
                    trans_counts[s0 + s, 2] += al * v2
                e_cur[s] = _emission(f0 + t, col[s0 + s], tied, bl, idx, eg, W)
            if sink == SINK_STATES:
                for s in range(lo[t], hi[t] + 1):
                    post[t, s] = segbuf[o + s - at] * beta_cur[s]
            elif sink == SINK_EMIT:
                for s in range(lo[t], hi[t] + 1):
                    post[t, col[s0 + s]] += segbuf[o + s - at] * beta_cur[s]
            else:
                for s in range(lo[t], hi[t] + 1):
                    g = segbuf[o + s - at] * beta_cur[s]
                    if g >= min_post:
                        _accumulate_tied(g, col[s0 + s], f0 + t, e_cur[s], idx, eg, W,
                                         counts_c, X, occ_c, sx_c, sxx_c, gstats)
            # frame t + 1 is done: zero its rows and make frame t's the next ones
            for s in range(a1, b1 + 1):
                beta_next[s] = 0.0
                e_next[s] = 0.0
            beta_next, beta_cur = beta_cur, beta_next
            e_next, e_cur = e_cur, e_next
    band[0] = peak + seg_peak
    return ll, OK


@njit(cache=True, nogil=True, inline="always")
def _lae(a, b):
    """log(exp(a) + exp(b))."""
    if a < b:
        a, b = b, a
    if b == -np.inf:
        return a
    return a + math.log1p(math.exp(b - a))


@njit(cache=True, nogil=True)
def chain_forward_backward_log(tied, bl, idx, eg, W, f0, T, s0, S, col, ltrans, lstart, lend,
                               beam, min_post, sink, post, counts_c, trans_counts, X, occ_c,
                               sx_c, sxx_c, gstats, band, ckpt, diag):
    """Log-space twin of :func:`chain_forward_backward` (same arguments, but log
    transitions, start and end, and ``beam`` > 0 still relative in probability): used
    where the scaled recursion underflows. Band storage and checkpoints as there."""
    NEG = -np.inf
    lbeam = math.log(beam) if beam > 0.0 else NEG
    lo = np.empty(T, np.int64)
    hi = np.empty(T, np.int64)
    roff = np.zeros(T + 1, np.int64)
    keep_all = ckpt <= 0
    C = T if keep_all else ckpt
    nseg = (T + C - 1) // C
    abuf = np.empty(max(64, min(T * S, 64 * T + S))) if keep_all else np.empty(64)
    ckbuf = np.empty(64) if keep_all else np.empty(max(64, 8 * S))
    ckoff = np.zeros(nseg + 1, np.int64)
    prow = np.full(S + 2, NEG)
    crow = np.full(S + 2, NEG)
    want_trans = trans_counts.shape[0] > 0
    for t in range(T):
        ft = f0 + t
        mx = NEG
        if t == 0:
            a = 0
            b = S - 1
            for s in range(S):
                v = lstart[s0 + s]
                if v > NEG:
                    e = _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                    v = v + math.log(e) if e > 0.0 else NEG
                crow[s] = v
                if v > mx:
                    mx = v
        else:
            pa = lo[t - 1]
            pb = hi[t - 1]
            a = pa
            b = min(pb + 2, S - 1)
            if diag > 0:
                c = (t * S) // T
                a = max(a, c - diag)
                b = min(b, c + diag)
                if a > b:
                    band[0] = roff[t] + ckoff[t // C]
                    return NEG, IMPOSSIBLE
            for s in range(a, b + 1):
                v = NEG
                if s <= pb:
                    v = prow[s] + ltrans[s0 + s, 0]
                if s - 1 >= pa and s - 1 <= pb:
                    v = _lae(v, prow[s - 1] + ltrans[s0 + s - 1, 1])
                if s - 2 >= pa and s - 2 <= pb:
                    v = _lae(v, prow[s - 2] + ltrans[s0 + s - 2, 2])
                if v > NEG:
                    e = _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                    v = v + math.log(e) if e > 0.0 else NEG
                crow[s] = v
                if v > mx:
                    mx = v
        if mx == NEG:
            band[0] = roff[t] + ckoff[t // C]
            return NEG, IMPOSSIBLE
        thr = mx + lbeam
        while a < b and not crow[a] > thr:
            a += 1
        while b > a and not crow[b] > thr:
            b -= 1
        lo[t] = a
        hi[t] = b
        for s in range(a, b + 1):
            prow[s] = crow[s]
        abuf, ckbuf = _keep_row(keep_all, C, t, prow, a, b, abuf, roff, ckbuf, ckoff)
    ll = NEG
    for s in range(lo[T - 1], hi[T - 1] + 1):
        ll = _lae(ll, prow[s] + lend[s0 + s])
    peak = roff[T] if keep_all else ckoff[nseg]
    if ll == NEG:
        band[0] = peak
        return NEG, IMPOSSIBLE
    if sink < 0:
        band[0] = peak
        return ll, OK
    lb_next = np.full(S + 2, NEG)
    lb_cur = np.full(S + 2, NEG)
    e_next = np.zeros(S + 2)
    e_cur = np.zeros(S + 2)
    segbuf = abuf if keep_all else np.empty(max(64, 8 * S))
    seg_peak = 0
    for kseg in range(nseg - 1, -1, -1):
        ts = kseg * C
        te = min(ts + C, T)
        if not keep_all:
            segbuf = _restore_row(ckbuf, ckoff, kseg, lo, hi, ts, roff, segbuf)
            for t in range(ts + 1, te):
                pa = lo[t - 1]
                pb = hi[t - 1]
                po = roff[t - 1]
                o = roff[t]
                roff[t + 1] = o + hi[t] - lo[t] + 1
                segbuf = _grow(segbuf, roff[t + 1])
                ft = f0 + t
                for s in range(lo[t], hi[t] + 1):
                    v = NEG
                    if s <= pb and s >= pa:
                        v = segbuf[po + s - pa] + ltrans[s0 + s, 0]
                    if s - 1 >= pa and s - 1 <= pb:
                        v = _lae(v, segbuf[po + s - 1 - pa] + ltrans[s0 + s - 1, 1])
                    if s - 2 >= pa and s - 2 <= pb:
                        v = _lae(v, segbuf[po + s - 2 - pa] + ltrans[s0 + s - 2, 2])
                    if v > NEG:
                        e = _emission(ft, col[s0 + s], tied, bl, idx, eg, W)
                        v = v + math.log(e) if e > 0.0 else NEG
                    segbuf[o + s - lo[t]] = v
            if roff[te] > seg_peak:
                seg_peak = roff[te]
        for t in range(te - 1, ts - 1, -1):
            o = roff[t]
            at = lo[t]
            if t == T - 1:
                for s in range(lo[t], hi[t] + 1):
                    lb_next[s] = lend[s0 + s]
                    e_next[s] = _emission(f0 + t, col[s0 + s], tied, bl, idx, eg, W)
                    g = math.exp(segbuf[o + s - at] + lb_next[s] - ll)
                    _post_sink(sink, g, min_post, f0 + t, t, s, s0, col, e_next[s], post, idx,
                               eg, W, counts_c, X, occ_c, sx_c, sxx_c, gstats)
                continue
            a1 = lo[t + 1]
            b1 = hi[t + 1]
            for s in range(lo[t], hi[t] + 1):
                v0 = NEG
                v1 = NEG
                v2 = NEG
                if s >= a1 and s <= b1 and e_next[s] > 0.0:
                    v0 = ltrans[s0 + s, 0] + math.log(e_next[s]) + lb_next[s]
                if s + 1 >= a1 and s + 1 <= b1 and e_next[s + 1] > 0.0:
                    v1 = ltrans[s0 + s, 1] + math.log(e_next[s + 1]) + lb_next[s + 1]
                if s + 2 >= a1 and s + 2 <= b1 and e_next[s + 2] > 0.0:
                    v2 = ltrans[s0 + s, 2] + math.log(e_next[s + 2]) + lb_next[s + 2]
                lb_cur[s] = _lae(_lae(v0, v1), v2)
                if want_trans:
                    al = segbuf[o + s - at] - ll
                    trans_counts[s0 + s, 0] += math.exp(al + v0)
                    trans_counts[s0 + s, 1] += math.exp(al + v1)
                    trans_counts[s0 + s, 2] += math.exp(al + v2)
            for s in range(lo[t], hi[t] + 1):
                e_cur[s] = _emission(f0 + t, col[s0 + s], tied, bl, idx, eg, W)
                g = math.exp(segbuf[o + s - at] + lb_cur[s] - ll)
                _post_sink(sink, g, min_post, f0 + t, t, s, s0, col, e_cur[s], post, idx, eg,
                           W, counts_c, X, occ_c, sx_c, sxx_c, gstats)
            for s in range(a1, b1 + 1):
                lb_next[s] = NEG
                e_next[s] = 0.0
            for s in range(lo[t], hi[t] + 1):
                lb_next[s] = lb_cur[s]
                lb_cur[s] = NEG
                e_next[s] = e_cur[s]
    band[0] = peak + seg_peak
    return ll, OK


@njit(cache=True, nogil=True)
def estep_one_log(tied, bl, idx, eg, W, frame_off, state_off, col, ltrans, lstart, lend, beam,
                  min_post, u, counts_c, trans_counts, X, occ_c, sx_c, sxx_c, gstats, max_cells,
                  diag_frac):
    """The log-space E-step of utterance u (the fallback of :func:`estep_batch`)."""
    f0 = frame_off[u]
    T = frame_off[u + 1] - f0
    s0 = state_off[u]
    S = state_off[u + 1] - s0
    ck = 0
    if T * S > max_cells:
        ck = max(16, int(math.sqrt(T)))
    band = np.zeros(1, np.int64)
    return chain_forward_backward_log(tied, bl, idx, eg, W, f0, T, s0, S, col, ltrans, lstart,
                                      lend, beam, min_post, SINK_TIED, np.zeros((1, 1)),
                                      counts_c, trans_counts, X, occ_c, sx_c, sxx_c, gstats,
                                      band, ck, _diag_states(diag_frac, T, S, max_cells))


@njit(cache=True, nogil=True, inline="always")
def _post_sink(sink, g, min_post, ft, t, s, s0, col, e_tc, post, idx, eg, W, counts_c, X,
               occ_c, sx_c, sxx_c, gstats):
    if sink == SINK_TIED:
        if g >= min_post:
            _accumulate_tied(g, col[s0 + s], ft, e_tc, idx, eg, W, counts_c, X, occ_c, sx_c,
                             sxx_c, gstats)
    elif sink == SINK_STATES:
        post[t, s] = g
    else:
        post[t, col[s0 + s]] += g


@njit(cache=True, nogil=True, parallel=True)
def estep_batch(tied, bl, idx, eg, W, frame_off, state_off, col, trans, start, end, beam,
                min_post, chunk_off, counts, trans_counts, loglik, status, X, occ, sx, sxx,
                gstats, cells, max_cells, diag_frac):
    """Tied-mixture E-step over a batch, in parallel over chunks of utterances.

    Chunk c (utterances chunk_off[c]:chunk_off[c+1]) accumulates into counts[c] (E, K)
    and, with gstats, occ[c] (K,), sx[c] and sxx[c] (K, D); the caller sums the chunks
    (the order of the sums does not depend on the number of threads). trans_counts
    (S_total, 3): expected self/next/skip counts per state. loglik[u], status[u],
    cells[u] (stored band cells) per utterance. Utterances whose T x S exceeds
    ``max_cells`` keep checkpoints every sqrt(T) frames instead of every band, and with
    ``diag_frac`` > 0 stay within that fraction of their states of the diagonal.
    """
    C = chunk_off.shape[0] - 1
    dummy = np.zeros((1, 1))
    for c in prange(C):
        band = np.zeros(1, np.int64)
        for u in range(chunk_off[c], chunk_off[c + 1]):
            f0 = frame_off[u]
            T = frame_off[u + 1] - f0
            s0 = state_off[u]
            S = state_off[u + 1] - s0
            ck = 0
            if T * S > max_cells:
                ck = max(16, int(math.sqrt(T)))
            ll, st = chain_forward_backward(tied, bl, idx, eg, W, f0, T, s0, S, col, trans,
                                            start, end, beam, min_post, SINK_TIED, dummy,
                                            counts[c], trans_counts, X, occ[c], sx[c], sxx[c],
                                            gstats, band, ck,
                                            _diag_states(diag_frac, T, S, max_cells))
            loglik[u] = ll
            status[u] = st
            cells[u] = band[0]


@njit(cache=True, nogil=True)
def chain_viterbi(tied, log_bl, idx, eg, W, f0, T, s0, S, col, ltrans, lstart, lend, beam,
                  path_out, band, max_cells=0):
    """Log-space Viterbi of one chain; back-pointers only for the active band.

    ``beam`` (<= 0, log units): states more than -beam below the frame's best are
    dropped (-inf: exact). Local state indices go to path_out[f0:f0+T]. Returns (best
    log score without the emissions' per-frame constants, status). band[0] receives
    the number of stored back-pointers. ``max_cells`` > 0: the search stops with
    OVER_BUDGET as soon as the band's back-pointers (one byte each) would pass it.
    """
    lo = np.empty(T, np.int64)
    hi = np.empty(T, np.int64)
    boff = np.empty(T + 1, np.int64)
    bp = np.empty(max(64, min(T * S, 64 * T + S)), np.int8)
    prev = np.empty(S + 2)
    cur = np.empty(S + 2)
    NEG = -np.inf
    mx = NEG
    for s in range(S):
        ls = lstart[s0 + s]
        v = NEG
        if ls > NEG:
            if tied:
                e = _emission(f0, col[s0 + s], tied, log_bl, idx, eg, W)
                v = ls + (math.log(e) if e > 0.0 else NEG)
            else:
                v = ls + log_bl[f0, col[s0 + s]]
        prev[s] = v
        if v > mx:
            mx = v
    if mx == NEG:
        band[0] = 0
        return NEG, IMPOSSIBLE
    a = 0
    b = S - 1
    thr = mx + beam
    while a < b and not prev[a] >= thr:
        a += 1
    while b > a and not prev[b] >= thr:
        b -= 1
    lo[0] = a
    hi[0] = b
    boff[0] = 0
    boff[1] = b - a + 1
    for s in range(a, b + 1):
        bp[s - a] = 0
    for t in range(1, T):
        pa = lo[t - 1]
        pb = hi[t - 1]
        a = pa
        b = min(pb + 2, S - 1)
        o = boff[t]
        boff[t + 1] = o + b - a + 1
        if max_cells > 0 and boff[t + 1] > max_cells:
            band[0] = o
            return NEG, OVER_BUDGET
        bp = _grow(bp, boff[t + 1])
        ft = f0 + t
        mx = NEG
        for s in range(a, b + 1):
            best = NEG
            k = 0
            if s <= pb:
                best = prev[s] + ltrans[s0 + s, 0]
            if s - 1 >= pa and s - 1 <= pb:
                v = prev[s - 1] + ltrans[s0 + s - 1, 1]
                if v > best:
                    best = v
                    k = 1
            if s - 2 >= pa and s - 2 <= pb:
                v = prev[s - 2] + ltrans[s0 + s - 2, 2]
                if v > best:
                    best = v
                    k = 2
            if best > NEG:
                if tied:
                    e = _emission(ft, col[s0 + s], tied, log_bl, idx, eg, W)
                    best = best + (math.log(e) if e > 0.0 else NEG)
                else:
                    best = best + log_bl[ft, col[s0 + s]]
            cur[s] = best
            bp[o + s - a] = k
            if best > mx:
                mx = best
        if mx == NEG:
            band[0] = boff[t + 1]
            return NEG, IMPOSSIBLE
        thr = mx + beam
        na = a
        nb = b
        while na < nb and not cur[na] >= thr:
            na += 1
        while nb > na and not cur[nb] >= thr:
            nb -= 1
        # keep the back-pointers of [na, nb] only: shift them to the frame's start
        if na > a:
            for s in range(na, nb + 1):
                bp[o + s - na] = bp[o + s - a]
        boff[t + 1] = o + nb - na + 1
        lo[t] = na
        hi[t] = nb
        for s in range(na, nb + 1):
            prev[s] = cur[s]
        # states outside the band are never read (guarded by pa/pb above)
    band[0] = boff[T]
    best = NEG
    arg = -1
    for s in range(lo[T - 1], hi[T - 1] + 1):
        v = prev[s] + lend[s0 + s]
        if v > best:
            best = v
            arg = s
    if arg < 0:
        return NEG, IMPOSSIBLE
    s = arg
    for t in range(T - 1, -1, -1):
        path_out[f0 + t] = s
        s -= bp[boff[t] + s - lo[t]]
    return best, OK


@njit(cache=True, nogil=True, parallel=True)
def viterbi_batch(tied, log_bl, idx, eg, W, frame_off, state_off, col, ltrans, lstart, lend,
                  beam, path_out, score, status, cells, max_cells=0):
    """Best state path of every utterance of a batch (local state indices into path_out);
    ``max_cells`` > 0 bounds each chain's back-pointers (:func:`chain_viterbi`)."""
    U = frame_off.shape[0] - 1
    for u in prange(U):
        band = np.zeros(1, np.int64)
        f0 = frame_off[u]
        T = frame_off[u + 1] - f0
        s0 = state_off[u]
        S = state_off[u + 1] - s0
        sc, st = chain_viterbi(tied, log_bl, idx, eg, W, f0, T, s0, S, col, ltrans, lstart,
                               lend, beam, path_out, band, max_cells)
        score[u] = sc
        status[u] = st
        cells[u] = band[0]


@njit(cache=True, nogil=True, parallel=True)
def tied_frame_emissions(idx, eg, W, cols, out):
    """out[t, j] = sum_n W[cols[j], idx[t, n]] * eg[t, n] (linear, per-frame scaled)."""
    T = idx.shape[0]
    for t in prange(T):
        for j in range(cols.shape[0]):
            out[t, j] = _emission(t, cols[j], True, out, idx, eg, W)


@njit(cache=True, nogil=True, parallel=True)
def rescore_candidates(X, cand, means, inv_var, const, n, idx_out, val_out):
    """Top-``n`` of each frame's candidate Gaussians ``cand`` (T, C), rescored exactly.

    log N(x | k) = const[k] - 0.5 * sum_d (x_d - mu_kd)^2 * inv_var_kd. Used after the
    Gaussians move a little (an EM update): the best few rarely leave a wider candidate set.
    """
    T, C = cand.shape
    D = X.shape[1]
    for t in prange(T):
        for j in range(n):
            val_out[t, j] = -np.inf
            idx_out[t, j] = 0
        for c in range(C):
            k = cand[t, c]
            acc = 0.0
            for d in range(D):
                diff = X[t, d] - means[k, d]
                acc += diff * diff * inv_var[k, d]
            _push_top(val_out[t], idx_out[t], const[k] - 0.5 * acc, k)


@njit(cache=True, nogil=True)
def first_bad_row(X, cols):
    """The first row ``t`` where ``X[t, c]`` is NaN or +inf for a ``c`` of ``cols``
    (int64); -1 when there is none. Reads the columns in place (no copy of them)."""
    for t in range(X.shape[0]):
        for j in range(cols.size):
            v = X[t, cols[j]]
            if v != v or v == np.inf:
                return t
    return -1


fast_cache_loads(globals())
