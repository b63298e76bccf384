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

OK = 0
UNDERFLOW = 1      # scaled recursion hit an all-zero frame (try the log method)
IMPOSSIBLE = 2     # no path has non-zero probability
BAD_VALUE = 3      # NaN or +inf in the emissions

NEG_INF = -np.inf

# posterior modes
POST_NONE = 0
POST_STATES = 1
POST_EMIT = 2


# ---------------------------------------------------------------------------
# banded (linear chain) scaled forward-backward
# ---------------------------------------------------------------------------

# constants of the vectorizable exp below (Cody-Waite reduction, degree-12 Taylor)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_MAGIC = 6755399441055744.0            # 1.5 * 2**52: adding it rounds to an integer
_MAGIC_BITS = 0x4338000000000000
_EXP_MIN = -708.0                      # below this the result is flushed to 0
#: scaled alpha, beta and posterior values below this are set to 0, keeping the recursions
#: out of the denormal range; alpha sums to 1 per frame and sum(alpha * beta) = 1, so what
#: is dropped is below 1e-280 of a posterior
_TINY = 1e-280


@njit(cache=True, nogil=True, fastmath={"contract"})
def vexp_nonpos(x, out, pb, yb):
    """out[j] = exp(x[j]) for x[j] <= 0 (max rel. error ~4e-16), SIMD-friendly.

    x < -708 gives 0 (no denormals: a frame whose reachable states all fall that far
    below the row max then reports underflow and the caller switches to log space).
    pb, yb: float64
    scratch of the same length. LLVM vectorizes the three loops (libm's exp is
    not vectorized without SVML), which makes the scaled forward pass ~3x faster.
    """
    n = x.shape[0]
    for j in range(n):
        v = max(x[j], _EXP_MIN)
        y = v * _LOG2E + _MAGIC
        kf = y - _MAGIC
        r = v - kf * _LN2_HI - kf * _LN2_LO
        p = 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        pb[j] = p
        yb[j] = y
    ib = yb.view(np.int64)
    for j in range(n):
        ib[j] = (ib[j] - _MAGIC_BITS + 1023) << 52     # bits of 2**k
    fb = ib.view(np.float64)
    for j in range(n):
        out[j] = pb[j] * fb[j] if x[j] >= _EXP_MIN else 0.0


@njit(cache=True, nogil=True)
def _emit_row(log_emit, t, cols, xb, ebc, pb, yb):
    """ebc[j] = exp(log_emit[t, cols[j]] - m) with m the row max over cols; (m, status)."""
    nc = cols.shape[0]
    m = -np.inf
    for j in range(nc):
        x = np.float64(log_emit[t, cols[j]])
        if x != x or x == np.inf:
            return m, BAD_VALUE
        xb[j] = x
        if x > m:
            m = x
    if m == -np.inf:
        return m, IMPOSSIBLE
    for j in range(nc):
        xb[j] -= m
    vexp_nonpos(xb, ebc, pb, yb)
    return m, OK


@njit(cache=True, nogil=True)
def band_forward_backward_scaled(log_emit, cidx, cols, A0, A1, A2, start, end, emit_ids,
                                 mode, alpha, scale, out, info):
    """Scaled forward-backward over a banded left-to-right chain, O(T * S).

    log_emit: (T, E) float32/float64 log-likelihoods. cols: int32 distinct
    emission columns used; cidx: int32 (S,) index into cols of each state's column
    (cols[cidx[s]] == emit_ids[s]). A0/A1/A2/start/end: float64 (S,) linear
    probabilities (end is 1 where a path may end). mode: 0 likelihood only (alpha
    is (2, S) scratch); 1 state posteriors: alpha *is* out (T, S) and is
    overwritten by the posteriors; 2 emission posteriors accumulated into out
    (T, E) (zeroed by the caller) with alpha (T, S) scratch. scale: (T, 2)
    float64 scratch (row max, scale). info[0] <- log-likelihood, info[1] <- frame
    of a failure. Returns a status.

    Each emission row is shifted by its max over the used columns before exp.
    The backward pass needs no exp: b[t+1, j] / c[t+1] = alpha[t+1, j] / pred[t+1, j]
    where pred is alpha[t] pushed through the transitions (recomputed in O(S)).
    UNDERFLOW is also returned if beta overflows (transition probabilities below
    ~1e-20); the caller then uses the log-space version.
    """
    T = log_emit.shape[0]
    S = cidx.shape[0]
    nc = cols.shape[0]
    identity = nc == S
    if identity:
        for s in range(S):
            if cidx[s] != s:
                identity = False
                break
    xb = np.empty(nc)
    ebc = np.empty(nc)
    pb = np.empty(nc)
    yb = np.empty(nc)
    bs = ebc if identity else np.empty(S)
    store = mode != POST_NONE
    ll = 0.0
    info[0] = -np.inf
    info[1] = 0
    for t in range(T):
        m, st = _emit_row(log_emit, t, cols, xb, ebc, pb, yb)
        if st != OK:
            info[1] = t
            return st
        if not identity:
            for s in range(S):
                bs[s] = ebc[cidx[s]]
        rc = t if store else t & 1
        cur = alpha[rc]
        if t == 0:
            for s in range(S):
                cur[s] = start[s] * bs[s]
        else:
            prev = alpha[t - 1 if store else (t - 1) & 1]
            cur[0] = prev[0] * A0[0] * bs[0]
            if S > 1:
                cur[1] = (prev[1] * A0[1] + prev[0] * A1[0]) * bs[1]
            for s in range(2, S):
                cur[s] = (prev[s] * A0[s] + prev[s - 1] * A1[s - 1]
                          + prev[s - 2] * A2[s - 2]) * bs[s]
        c = 0.0
        for s in range(S):
            c += cur[s]
        if not (c > 0.0) or c == np.inf:
            info[1] = t
            return UNDERFLOW
        inv = 1.0 / c
        for s in range(S):
            v = cur[s] * inv
            cur[s] = v if v > _TINY else 0.0     # no denormals: they are ~100x slower
        scale[t, 0] = m
        scale[t, 1] = c
        ll += math.log(c) + m
    last = alpha[T - 1 if store else (T - 1) & 1]
    z = 0.0
    for s in range(S):
        z += last[s] * end[s]
    if not (z > 0.0):
        info[1] = T - 1
        return UNDERFLOW
    ll += math.log(z)
    info[0] = ll
    if not store:
        return OK
    # backward pass with one row of beta, rescaled so that sum_s alpha[t, s] beta[s] = 1:
    # then alpha * beta is the posterior, and b[t+1, j] / c[t+1] = alpha[t+1, j] / pred[j]
    # where pred is alpha[t] pushed through the transitions (no exp needed)
    beta = np.empty(S)
    pred = np.empty(S)
    gb = np.empty(S)
    w = np.zeros(S + 2)
    for s in range(S):
        beta[s] = end[s]
    for t in range(T - 2, -1, -1):
        a = alpha[t]
        a1 = alpha[t + 1]
        pred[0] = a[0] * A0[0]
        if S > 1:
            pred[1] = a[1] * A0[1] + a[0] * A1[0]
        for s in range(2, S):
            pred[s] = a[s] * A0[s] + a[s - 1] * A1[s - 1] + a[s - 2] * A2[s - 2]
        tot = 0.0
        for s in range(S):
            tot += a1[s] * beta[s]
        inv = 1.0 / tot if tot > 0.0 else 0.0
        for s in range(S):
            g = a1[s] * beta[s] * inv
            gb[s] = g
            w[s] = g / pred[s] if (g > _TINY and pred[s] > 0.0) else 0.0
        _write_posterior(gb, t + 1, emit_ids, mode, out)
        bsum = 0.0
        for s in range(S):
            v = A0[s] * w[s] + A1[s] * w[s + 1] + A2[s] * w[s + 2]
            v = v if v > _TINY else 0.0
            beta[s] = v
            bsum += v
        if not (bsum < np.inf):               # overflow with extreme transitions
            info[1] = t
            return UNDERFLOW
    tot = 0.0
    for s in range(S):
        tot += alpha[0, s] * beta[s]
    inv = 1.0 / tot if tot > 0.0 else 0.0
    for s in range(S):
        gb[s] = alpha[0, s] * beta[s] * inv
    _write_posterior(gb, 0, emit_ids, mode, out)
    return OK


@njit(cache=True, nogil=True)
def _write_posterior(g, t, emit_ids, mode, out):
    """Store the posterior row g of frame t (states) or add it per emission column."""
    S = g.shape[0]
    if mode == POST_STATES:
        row = out[t]
        for s in range(S):
            row[s] = g[s]
    else:
        for s in range(S):
            out[t, emit_ids[s]] += g[s]


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


@njit(cache=True, nogil=True)
def band_viterbi(log_emit, emit_ids, lA0, lA1, lA2, lstart, lend, bp, path, info):
    """Viterbi over a banded chain in log space.

    bp: int8 (T, S) scratch for back-pointer offsets (0 stay, 1 from s-1,
    2 from s-2); path: int32 (T,) output. info[0] <- best log-probability,
    info[1] <- frame of a failure. Returns a status.
    """
    T = log_emit.shape[0]
    S = emit_ids.shape[0]
    info[0] = -np.inf
    info[1] = 0
    prev = np.empty(S)
    cur = np.empty(S)
    for s in range(S):
        x = np.float64(log_emit[0, emit_ids[s]])
        if x != x or x == np.inf:
            return BAD_VALUE
        prev[s] = lstart[s] + x
        bp[0, s] = 0
    for t in range(1, T):
        for s in range(S):
            x = np.float64(log_emit[t, emit_ids[s]])
            if x != x or x == np.inf:
                info[1] = t
                return BAD_VALUE
            best = prev[s] + lA0[s]
            k = 0
            if s >= 1:
                v = prev[s - 1] + lA1[s - 1]
                if v > best:
                    best = v
                    k = 1
            if s >= 2:
                v = prev[s - 2] + lA2[s - 2]
                if v > best:
                    best = v
                    k = 2
            cur[s] = best + x
            bp[t, s] = k
        for s in range(S):
            prev[s] = cur[s]
    best = -np.inf
    arg = -1
    for s in range(S):
        v = prev[s] + lend[s]
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
        s -= bp[t, s]
    return OK


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
def nearest_sq(X, C, labels, dist):
    """Nearest row of C (K, D) for each row of X by squared distance (small K*D)."""
    T, D = X.shape
    K = C.shape[0]
    for t in range(T):
        best = np.inf
        arg = 0
        for k in range(K):
            acc = 0.0
            for d in range(D):
                diff = np.float64(X[t, d]) - C[k, d]
                acc += diff * diff
            if acc < best:
                best = acc
                arg = k
        labels[t] = arg
        dist[t] = best
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
