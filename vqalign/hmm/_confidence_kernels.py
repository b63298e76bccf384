"""Numba kernel for boundary posteriors around a Viterbi path (alignment confidence).

A scaled forward-backward of a linear chain restricted to a corridor of
``2 * M + 1`` states centred on the Viterbi path (state ``path[t] - M .. path[t] + M``
at frame t), with tied-mixture emissions computed from the frame's selected Gaussians.
Storage is the corridor only (``T x (2M + 1)`` forward values), never ``T x S``.

For every unit (phone / character) it accumulates, over the transitions that enter the
unit's first state and those that leave its last state, the posterior mass of the
boundary at each frame: the mass within ``+-win[k]`` frames of the Viterbi boundary, and
the first two moments of the boundary frame (posterior mean and spread).

House rules: flat arrays in, caller-allocated outputs, int32/int64 indices,
``cache=True``, a status per job instead of an exception (0 ok, 1 the corridor lost
every path: the caller reports the unit's confidence as unknown).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from vqalign._jit import fast_cache_loads

OK = 0
LOST = 1

_TINY = 1e-280


@njit(cache=True, nogil=True, inline="always")
def _emit(t, c, idx, eg, W, kappa):
    v = 0.0
    for j in range(idx.shape[1]):
        v += W[c, idx[t, j]] * eg[t, j]
    if kappa != 1.0:
        v = v ** kappa
    return v


@njit(cache=True, nogil=True, inline="always")
def _add(stats, u, side, fb, vit, win, p):
    """Add boundary mass ``p`` at frame ``fb`` to unit u's start (side 0) or end (1):
    stats[u, side, :] = [total, sum f, sum f^2, mass within win[0], win[1], ...]."""
    d = fb - vit
    stats[u, side, 0] += p
    stats[u, side, 1] += p * d
    stats[u, side, 2] += p * d * d
    ad = d if d >= 0 else -d
    for k in range(win.shape[0]):
        if ad <= win[k]:
            stats[u, side, 3 + k] += p


@njit(cache=True, nogil=True)
def _job(idx, eg, W, f0, T, s0, S, col, trans, start, end, path, M, pin_start, pin_end,
         first_of, last_of, u0, vit_start, vit_end, ka, kb, win, kappa, stats):
    """One job: frames f0:f0+T of a chain whose states are s0:s0+S (``path`` local state
    indices of those frames). Boundaries whose Viterbi frame lies in [ka, kb) (global
    frame numbers) are accumulated into ``stats`` (rows u0 + local unit index)."""
    Wd = 2 * M + 1
    alpha = np.zeros((T, Wd))
    em = np.zeros((T, Wd))      # scaled emissions, computed once (forward), read backward
    scale = np.empty(T)
    # frame 0
    c0 = path[f0] - M
    tot = 0.0
    for r in range(Wd):
        s = c0 + r
        if s < 0 or s >= S:
            continue
        if pin_start:
            v = 1.0 if s == path[f0] else 0.0
        else:
            v = start[s0 + s]
        if v > 0.0:
            e0 = _emit(f0, col[s0 + s], idx, eg, W, kappa)
            em[0, r] = e0
            v *= e0
        alpha[0, r] = v
        tot += v
    if not tot > 0.0:
        return LOST
    scale[0] = tot
    for r in range(Wd):
        v = alpha[0, r] / tot
        alpha[0, r] = v if v > _TINY else 0.0
    for t in range(1, T):
        ft = f0 + t
        cp = path[ft - 1] - M
        cc = path[ft] - M
        tot = 0.0
        for r in range(Wd):
            s = cc + r
            if s < 0 or s >= S:
                continue
            v = 0.0
            for d in range(3):
                sp = s - d
                rp = sp - cp
                if rp >= 0 and rp < Wd and sp >= 0:
                    v += alpha[t - 1, rp] * trans[s0 + sp, d]
            if v > 0.0:
                et = _emit(ft, col[s0 + s], idx, eg, W, kappa)
                em[t, r] = et
                v *= et
            alpha[t, r] = v
            tot += v
        if not tot > 0.0 or tot == np.inf:
            return LOST
        scale[t] = tot
        inv = 1.0 / tot
        for r in range(Wd):
            v = alpha[t, r] * inv
            alpha[t, r] = v if v > _TINY else 0.0
    # end
    cl = path[f0 + T - 1] - M
    beta = np.zeros(Wd)
    pend = 0.0
    for r in range(Wd):
        s = cl + r
        if s < 0 or s >= S:
            continue
        if pin_end:
            e = 1.0 if s == path[f0 + T - 1] else 0.0
        else:
            e = end[s0 + s]
        beta[r] = e
        pend += alpha[T - 1, r] * e
    if not pend > 0.0:
        return LOST
    for r in range(Wd):
        beta[r] /= pend
    # posteriors at the last frame: units still open end at frame T (only for a real end)
    if not pin_end:
        for r in range(Wd):
            s = cl + r
            if s < 0 or s >= S:
                continue
            g = alpha[T - 1, r] * beta[r]
            if g > 0.0 and last_of[s0 + s] >= 0:
                u = last_of[s0 + s]
                v = vit_end[u0 + u]
                if v >= ka and v < kb:
                    _add(stats, u0 + u, 1, f0 + T, v, win, g)
    eb = np.zeros(Wd)       # emission x beta of frame t + 1
    bcur = np.zeros(Wd)
    for t in range(T - 2, -1, -1):
        ft = f0 + t
        cn = path[ft + 1] - M
        cc = path[ft] - M
        for r in range(Wd):
            s = cn + r
            if s < 0 or s >= S:
                eb[r] = 0.0
            else:
                eb[r] = em[t + 1, r] * beta[r]
        inv = 1.0 / scale[t + 1]
        for r in range(Wd):
            s = cc + r
            bcur[r] = 0.0
            if s < 0 or s >= S:
                continue
            a = alpha[t, r]
            bv = 0.0
            for d in range(3):
                sn = s + d
                rn = sn - cn
                if rn < 0 or rn >= Wd or sn >= S:
                    continue
                x = trans[s0 + s, d] * eb[rn] * inv
                bv += x
                if d > 0 and a > 0.0 and x > 0.0:
                    xi = a * x           # posterior of s(t) -> s + d (t + 1)
                    lo = last_of[s0 + s]
                    if lo >= 0:
                        v = vit_end[u0 + lo]
                        if v >= ka and v < kb:
                            _add(stats, u0 + lo, 1, ft + 1, v, win, xi)
                    fi = first_of[s0 + sn]
                    if fi >= 0:
                        v = vit_start[u0 + fi]
                        if v >= ka and v < kb:
                            _add(stats, u0 + fi, 0, ft + 1, v, win, xi)
            bcur[r] = bv if bv > _TINY else 0.0
        for r in range(Wd):
            beta[r] = bcur[r]
    # units entered at the first frame (only for a real start)
    if not pin_start:
        for r in range(Wd):
            s = c0 + r
            if s < 0 or s >= S:
                continue
            g = alpha[0, r] * beta[r]
            if g > 0.0 and first_of[s0 + s] >= 0:
                u = first_of[s0 + s]
                v = vit_start[u0 + u]
                if v >= ka and v < kb:
                    _add(stats, u0 + u, 0, f0, v, win, g)
    return OK


@njit(cache=True, parallel=True)
def boundary_posteriors(idx, eg, W, job_f0, job_T, job_s0, job_S, job_u0, job_pin,
                        job_ka, job_kb, col, trans, start, end, path, M, first_of, last_of,
                        vit_start, vit_end, win, kappa, stats, status):
    """Run every job (in parallel). ``path`` holds each frame's local state index;
    ``first_of`` / ``last_of`` (S_total,) the local unit of a unit's first / last state
    (-1 otherwise); ``vit_start`` / ``vit_end`` (n_units,) the Viterbi boundary frames
    (global); ``stats`` (n_units, 2, 3 + len(win)) is filled (jobs must own disjoint
    [ka, kb) frame ranges); ``kappa`` scales the emission log-likelihoods (acoustic
    scale: emission ** kappa; < 1 flattens the posteriors of a sharp model);
    ``status`` (n_jobs,) receives OK or LOST."""
    for j in prange(job_f0.shape[0]):
        status[j] = _job(idx, eg, W, job_f0[j], job_T[j], job_s0[j], job_S[j], col, trans,
                         start, end, path, M, (job_pin[j] & 1) != 0, (job_pin[j] & 2) != 0,
                         first_of, last_of, job_u0[j], vit_start, vit_end, job_ka[j],
                         job_kb[j], win, kappa, stats)


fast_cache_loads(globals())
