"""Plain reference kernels the benchmarks hold the engine against (numba, no tricks).

``plain_band_fb``: the textbook scaled forward-backward of a linear chain (self loop,
next state, skip one), O(T * S): every state of every frame is visited and stored (no
band, no beam, no checkpoints), emissions read from a dense (T, E) linear table. The
same work per cell as the engine's kernel without its pruning.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def plain_band_fb(bl, col, trans, start, end, post):
    """State posteriors of one chain into post (T, S); returns the log-likelihood
    (without the emissions' per-frame constants)."""
    T = bl.shape[0]
    S = col.shape[0]
    alpha = np.zeros((T, S))
    scale = np.zeros(T)
    for s in range(S):
        alpha[0, s] = start[s] * bl[0, col[s]]
    c = alpha[0].sum()
    scale[0] = c
    alpha[0] /= c
    for t in range(1, T):
        tot = 0.0
        for s in range(S):
            v = alpha[t - 1, s] * trans[s, 0]
            if s >= 1:
                v += alpha[t - 1, s - 1] * trans[s - 1, 1]
            if s >= 2:
                v += alpha[t - 1, s - 2] * trans[s - 2, 2]
            v *= bl[t, col[s]]
            alpha[t, s] = v
            tot += v
        scale[t] = tot
        for s in range(S):
            alpha[t, s] /= tot
    z = 0.0
    for s in range(S):
        z += alpha[T - 1, s] * end[s]
    beta = np.empty(S)
    nb = np.empty(S)
    for s in range(S):
        beta[s] = end[s] / z
        post[T - 1, s] = alpha[T - 1, s] * beta[s]
    for t in range(T - 2, -1, -1):
        for s in range(S):
            v = trans[s, 0] * bl[t + 1, col[s]] * beta[s]
            if s + 1 < S:
                v += trans[s, 1] * bl[t + 1, col[s + 1]] * beta[s + 1]
            if s + 2 < S:
                v += trans[s, 2] * bl[t + 1, col[s + 2]] * beta[s + 2]
            nb[s] = v / scale[t + 1]
        for s in range(S):
            beta[s] = nb[s]
            post[t, s] = alpha[t, s] * beta[s]
    ll = np.log(z)
    for t in range(T):
        ll += np.log(scale[t])
    return ll


@njit(cache=True, parallel=True)
def plain_band_fb_batch(bl, frame_off, state_off, col, trans, start, end, loglik):
    """:func:`plain_band_fb` over a batch of utterances, in parallel over utterances."""
    U = frame_off.shape[0] - 1
    for u in prange(U):
        f0, f1 = frame_off[u], frame_off[u + 1]
        s0, s1 = state_off[u], state_off[u + 1]
        post = np.empty((f1 - f0, s1 - s0))
        loglik[u] = plain_band_fb(bl[f0:f1], col[s0:s1], trans[s0:s1], start[s0:s1],
                                  end[s0:s1], post)
