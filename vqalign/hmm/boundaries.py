"""Posteriors of each unit's boundaries around a Viterbi path: the engine's side of the
aligner's confidence (:mod:`vqalign.align.confidence` chooses the settings and turns the
statistics into calibrated probabilities). The work runs in
:func:`vqalign.hmm._confidence_kernels.boundary_posteriors`, band storage only."""

from __future__ import annotations

import math

import numpy as np

from vqalign.hmm import _confidence_kernels as CK


def boundary_posteriors(model, batch, path, frame_off, sel, hop_s, *, corridor, max_job, overlap,
                        kappa, tolerances):
    """Boundary posteriors of every unit of ``batch`` around its Viterbi ``path``.

    A forward-backward kept to ``corridor`` states either side of the Viterbi path (long
    utterances cut into jobs of at most ``max_job`` frames overlapping by ``overlap``),
    emissions scaled by ``kappa``; ``tolerances`` (seconds) are the windows whose posterior
    mass is reported.

    Parameters
    ----------
    model : TiedMixtureHMM
        A fitted model (its ``weights_`` and ``transitions``).
    batch : ChainBatch
        The utterances' chains.
    path : ndarray of int32, shape (n_frames,)
        Each frame's local state index (the Viterbi path).
    frame_off : ndarray of int64, shape (n_utterances + 1,)
        Each utterance's first frame.
    sel : Selection
        Each frame's Gaussian candidates (``sel.idx``, ``sel.eg``).
    hop_s : float
        Frame hop in seconds.
    corridor, max_job, overlap : int
    kappa : float
    tolerances : tuple of float

    Returns (stats (n_units, 2, 5) float64, unit_off (U + 1,) int64, vit (n_units, 2)
    int64 Viterbi start / end frames (utterance-local), ok (U,) bool). ``stats[k, side]``
    = [total mass, mean offset (frames, posterior minus Viterbi), spread (frames),
    mass within +-20 ms, mass within +-50 ms], side 0 the start, 1 the end.
    """
    frame_off = np.asarray(frame_off, np.int64)
    U = batch.n_utterances
    n_units = np.array([len(batch.units[u]) for u in range(U)], np.int64)
    unit_off = np.zeros(U + 1, np.int64)
    unit_off[1:] = np.cumsum(n_units)
    NU = int(unit_off[-1])
    ui = batch.unit_index.astype(np.int64)
    S = ui.size
    first_of = np.full(S, -1, np.int32)
    last_of = np.full(S, -1, np.int32)
    sp = ui >= 0
    prev = np.full(S, -2, np.int64)
    prev[1:] = ui[:-1]
    nxt = np.full(S, -2, np.int64)
    nxt[:-1] = ui[1:]
    starts_u = np.zeros(S, bool)
    starts_u[batch.state_off[:-1]] = True
    ends_u = np.zeros(S, bool)
    ends_u[batch.state_off[1:] - 1] = True
    first = sp & ((prev != ui) | starts_u)
    last = sp & ((nxt != ui) | ends_u)
    first_of[first] = ui[first]
    last_of[last] = ui[last]
    vit = np.full((NU, 2), -1, np.int64)
    for u in range(U):
        a, b = frame_off[u], frame_off[u + 1]
        ids, st, en = batch.segments(path[a:b], u)
        vit[unit_off[u] + ids, 0] = st + a
        vit[unit_off[u] + ids, 1] = en + a
    jobs = []
    for u in range(U):
        a, b = int(frame_off[u]), int(frame_off[u + 1])
        T = b - a
        s0 = int(batch.state_off[u])
        Su = int(batch.state_off[u + 1]) - s0
        if T == 0 or Su == 0:
            continue
        if T <= max_job:
            jobs.append((a, T, s0, Su, int(unit_off[u]), 0, a, b + 1))
            continue
        n = int(math.ceil(T / max_job))
        cuts = np.linspace(a, b, n + 1).round().astype(np.int64)
        for k in range(n):
            ka, kb = int(cuts[k]), int(cuts[k + 1])
            fa, fb = max(a, ka - overlap), min(b, kb + overlap)
            pin = (1 if fa > a else 0) | (2 if fb < b else 0)
            jobs.append((fa, fb - fa, s0, Su, int(unit_off[u]), pin, ka,
                         kb + 1 if k == n - 1 else kb))
    J = np.array(jobs, np.int64).reshape(-1, 8)
    trans, start, end = model.transitions(batch)
    win = np.array([int(math.floor(t / hop_s + 1e-9)) for t in tolerances], np.int64)
    raw = np.zeros((NU, 2, 3 + win.size))
    status = np.zeros(J.shape[0], np.int32)
    if J.shape[0]:
        CK.boundary_posteriors(sel.idx, sel.eg, model.weights_, J[:, 0].copy(), J[:, 1].copy(),
                               J[:, 2].copy(), J[:, 3].copy(), J[:, 4].copy(),
                               J[:, 5].copy(), J[:, 6].copy(), J[:, 7].copy(), batch.emit_ids,
                               np.ascontiguousarray(trans), start, end,
                               np.ascontiguousarray(path, np.int32), int(corridor), first_of,
                               last_of, vit[:, 0].copy(), vit[:, 1].copy(), win,
                               float(kappa), raw, status)
    ok = np.ones(U, bool)
    for j in np.flatnonzero(status != 0):
        u = int(np.searchsorted(frame_off, J[j, 0], side="right") - 1)
        ok[u] = False
    tot = np.maximum(raw[:, :, 0], 1e-300)
    mean = raw[:, :, 1] / tot
    var = np.maximum(raw[:, :, 2] / tot - mean ** 2, 0.0)
    stats = np.zeros((NU, 2, 5))
    stats[:, :, 0] = raw[:, :, 0]
    stats[:, :, 1] = mean
    stats[:, :, 2] = np.sqrt(var)
    stats[:, :, 3] = np.clip(raw[:, :, 3] / tot, 0.0, 1.0)
    stats[:, :, 4] = np.clip(raw[:, :, 4] / tot, 0.0, 1.0)
    bad = raw[:, :, 0] < 0.5
    stats[bad] = np.nan
    return stats, unit_off, vit, ok
