"""Batched numba kernels for tied-mixture HMM alignment (private).

Used by :mod:`vqalign.align._model` (the aligner's EM and decoding over a whole
batch of utterances at once); moved here from ``vqalign/align/_model_kernels.py``
so that numba code lives in ``_kernels`` files of the HMM engine.

Flat arrays in, caller-allocated outputs, a status code instead of an exception.
Utterances are batched: frames of utterance ``u`` are rows
``frame_off[u]:frame_off[u + 1]`` of the global frame tables and its HMM states are
``state_off[u]:state_off[u + 1]`` of the global state tables. Every state has a
self loop, a move to the next state and (when the next state is a skippable
silence) a skip over it: ``log_trans[s] = (self, next, skip)``.

Status codes: 0 ok, 1 no path (too few frames or all paths impossible),
2 numerical underflow in the scaled recursion.

The single-utterance banded kernels of :mod:`vqalign.hmm` (``_kernels.py``) are
separate; these keep the aligner's batched layout (one flat table for a corpus).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from vqalign.hmm._kernels import _push_top

OK = 0
NO_PATH = 1
UNDERFLOW = 2


@njit(cache=True, parallel=True)
def tied_emissions(idx, eg, weights_t, out):
    """out[t, e] = sum_j weights_t[idx[t, j], e] * eg[t, j]: linear emission likelihoods.

    ``weights_t`` is the (K, E) transpose of the mixture weights. ``eg[t, j] =
    exp(loglik of Gaussian idx[t, j] - gmax[t])`` over the top-n Gaussians of frame t,
    so ``out`` is the likelihood divided by ``exp(gmax[t])``, a factor common to every
    column of the frame (the scaled recursions never need it back).
    """
    T, n = idx.shape
    E = weights_t.shape[1]
    for t in prange(T):
        for e in range(E):
            out[t, e] = 0.0
        for j in range(n):
            k = idx[t, j]
            g = np.float32(eg[t, j])
            for e in range(E):
                out[t, e] += weights_t[k, e] * g


@njit(cache=True)
def _accumulate_frame(g, e, t, idx, eg, weights, counts_c, X, occ_c, sx_c, sxx_c, gstats):
    n = idx.shape[1]
    den = 0.0
    for j in range(n):
        den += weights[e, idx[t, j]] * eg[t, j]
    if den <= 0.0:
        return
    f = g / den
    for j in range(n):
        k = idx[t, j]
        r = f * weights[e, k] * eg[t, j]
        counts_c[e, k] += r
        if gstats:
            occ_c[k] += r
            for d in range(X.shape[1]):
                x = X[t, d]
                sx_c[k, d] += r * x
                sxx_c[k, d] += r * x * x


@njit(cache=True)
def _fb_one(bl, f0, T, s0, S, col, trans, start, end, beam, idx, eg, weights, min_post,
            counts_c, trans_counts, X, occ_c, sx_c, sxx_c, gstats):
    """Pruned scaled forward-backward of one utterance; accumulates into chunk buffers."""
    alpha = np.empty((T, S))
    lo = np.empty(T, np.int64)
    hi = np.empty(T, np.int64)
    scale = np.empty(T)
    # frame 0
    tot = 0.0
    mx = 0.0
    for s in range(S):
        v = start[s0 + s] * bl[f0, col[s0 + s]]
        alpha[0, s] = v
        tot += v
        if v > mx:
            mx = v
    if not tot > 0.0:
        return -np.inf, UNDERFLOW
    a = 0
    b = S - 1
    while a < b and alpha[0, a] < beam * mx:
        a += 1
    while b > a and alpha[0, b] < beam * mx:
        b -= 1
    lo[0] = a
    hi[0] = b
    scale[0] = tot
    for s in range(a, b + 1):
        alpha[0, s] /= tot
    for t in range(1, T):
        a = lo[t - 1]
        b = min(hi[t - 1] + 2, S - 1)
        tot = 0.0
        mx = 0.0
        ft = f0 + t
        for s in range(a, b + 1):
            v = 0.0
            if s <= hi[t - 1]:
                v = alpha[t - 1, s] * trans[s0 + s, 0]
            if s - 1 >= a and s - 1 <= hi[t - 1]:
                v += alpha[t - 1, s - 1] * trans[s0 + s - 1, 1]
            if s - 2 >= a and s - 2 <= hi[t - 1]:
                v += alpha[t - 1, s - 2] * trans[s0 + s - 2, 2]
            v *= bl[ft, col[s0 + s]]
            alpha[t, s] = v
            tot += v
            if v > mx:
                mx = v
        if not tot > 0.0:
            return -np.inf, UNDERFLOW
        while a < b and alpha[t, a] < beam * mx:
            a += 1
        while b > a and alpha[t, b] < beam * mx:
            b -= 1
        lo[t] = a
        hi[t] = b
        scale[t] = tot
        inv = 1.0 / tot
        for s in range(a, b + 1):
            alpha[t, s] *= inv
    pend = 0.0
    for s in range(lo[T - 1], hi[T - 1] + 1):
        pend += alpha[T - 1, s] * end[s0 + s]
    if not pend > 0.0:
        return -np.inf, NO_PATH
    ll = math.log(pend)
    for t in range(T):
        ll += math.log(scale[t])
    # backward over the forward band; beta_next holds frame t+1
    beta_next = np.zeros(S + 2)
    beta_cur = np.zeros(S + 2)
    for s in range(lo[T - 1], hi[T - 1] + 1):
        beta_next[s] = end[s0 + s] / pend
    # posteriors of the last frame
    for s in range(lo[T - 1], hi[T - 1] + 1):
        g = alpha[T - 1, s] * beta_next[s]
        if g >= min_post:
            _accumulate_frame(g, col[s0 + s], f0 + T - 1, idx, eg, weights, counts_c, X,
                              occ_c, sx_c, sxx_c, gstats)
    for t in range(T - 2, -1, -1):
        inv = 1.0 / scale[t + 1]
        ft1 = f0 + t + 1
        a1 = lo[t + 1]
        b1 = hi[t + 1]
        for s in range(lo[t], hi[t] + 1):
            v0 = 0.0
            v1 = 0.0
            v2 = 0.0
            if s >= a1 and s <= b1:
                v0 = trans[s0 + s, 0] * bl[ft1, col[s0 + s]] * beta_next[s]
            if s + 1 >= a1 and s + 1 <= b1:
                v1 = trans[s0 + s, 1] * bl[ft1, col[s0 + s + 1]] * beta_next[s + 1]
            if s + 2 >= a1 and s + 2 <= b1:
                v2 = trans[s0 + s, 2] * bl[ft1, col[s0 + s + 2]] * beta_next[s + 2]
            beta_cur[s] = (v0 + v1 + v2) * inv
            al = alpha[t, s] * inv
            trans_counts[s0 + s, 0] += al * v0
            trans_counts[s0 + s, 1] += al * v1
            trans_counts[s0 + s, 2] += al * v2
        for s in range(lo[t], hi[t] + 1):
            g = alpha[t, s] * beta_cur[s]
            if g >= min_post:
                _accumulate_frame(g, col[s0 + s], f0 + t, idx, eg, weights, counts_c, X,
                                  occ_c, sx_c, sxx_c, gstats)
        for s in range(lo[t + 1], hi[t + 1] + 1):
            beta_next[s] = 0.0
        for s in range(lo[t], hi[t] + 1):
            beta_next[s] = beta_cur[s]
            beta_cur[s] = 0.0
    return ll, OK


@njit(cache=True, parallel=True)
def em_estep_batch(bl, frame_off, state_off, col, trans, start, end, beam, idx, eg, weights,
                   min_post, chunk_off, counts, trans_counts, loglik, status, X, occ, sx, sxx,
                   gstats):
    """E-step over a batch of utterances, in parallel over chunks of utterances.

    bl (N, E) linear emissions; trans (S_total, 3), start/end (S_total,) linear
    probabilities; chunk c owns utterances chunk_off[c]:chunk_off[c+1] and accumulates
    into counts[c] (E, K) and, with gstats, occ[c] (K,), sx[c]/sxx[c] (K, D) (summed by
    the caller). trans_counts (S_total, 3) receives expected self/next/skip counts.
    loglik[u] excludes the per-frame factors the emissions were divided by.
    """
    C = chunk_off.shape[0] - 1
    for c in prange(C):
        for u in range(chunk_off[c], chunk_off[c + 1]):
            f0 = frame_off[u]
            T = frame_off[u + 1] - f0
            s0 = state_off[u]
            S = state_off[u + 1] - s0
            ll, st = _fb_one(bl, f0, T, s0, S, col, trans, start, end, beam, idx, eg,
                             weights, min_post, counts[c], trans_counts, X, occ[c], sx[c],
                             sxx[c], gstats)
            loglik[u] = ll
            status[u] = st


@njit(cache=True)
def _viterbi_one(bl, f0, T, s0, S, col, trans, start, end, path_out):
    """Max-product Viterbi in the scaled linear domain (normalised by the frame maximum)."""
    bp = np.zeros((T, S), dtype=np.int8)
    prev = np.zeros(S)
    cur = np.zeros(S)
    logscore = 0.0
    mx = 0.0
    for s in range(S):
        prev[s] = start[s0 + s] * bl[f0, col[s0 + s]]
        if prev[s] > mx:
            mx = prev[s]
    if not mx > 0.0:
        return -np.inf, NO_PATH
    for s in range(S):
        prev[s] /= mx
    logscore += math.log(mx)
    for t in range(1, T):
        ft = f0 + t
        mx = 0.0
        for s in range(S):
            best = prev[s] * trans[s0 + s, 0]
            arg = 0
            if s >= 1:
                v = prev[s - 1] * trans[s0 + s - 1, 1]
                if v > best:
                    best = v
                    arg = 1
            if s >= 2:
                v = prev[s - 2] * trans[s0 + s - 2, 2]
                if v > best:
                    best = v
                    arg = 2
            v = best * bl[ft, col[s0 + s]]
            cur[s] = v
            bp[t, s] = arg
            if v > mx:
                mx = v
        if not mx > 0.0:
            return -np.inf, NO_PATH
        inv = 1.0 / mx
        logscore += math.log(mx)
        for s in range(S):
            v = cur[s] * inv
            prev[s] = v if v > 1e-290 else 0.0
    best = 0.0
    arg = -1
    for s in range(S):
        v = prev[s] * end[s0 + s]
        if v > best:
            best = v
            arg = s
    if arg < 0:
        return -np.inf, NO_PATH
    s = arg
    for t in range(T - 1, -1, -1):
        path_out[f0 + t] = s
        s -= bp[t, s]
    return logscore + math.log(best), OK


@njit(cache=True, parallel=True)
def viterbi_batch(bl, frame_off, state_off, col, trans, start, end, path_out, score, status):
    """Best state path of every utterance (local state indices into ``path_out``)."""
    U = frame_off.shape[0] - 1
    for u in prange(U):
        f0 = frame_off[u]
        T = frame_off[u + 1] - f0
        s0 = state_off[u]
        S = state_off[u + 1] - s0
        sc, st = _viterbi_one(bl, f0, T, s0, S, col, trans, start, end, path_out)
        score[u] = sc
        status[u] = st


@njit(cache=True, parallel=True)
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
