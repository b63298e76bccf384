"""Calibrated word and phone confidence: P(both boundaries within 50 ms (or 20 ms) of the truth).

The confidence of a segment is a small logistic model over cues that an aligner has
after its Viterbi pass:

* boundary posteriors: a forward-backward restricted to a corridor of states around the
  Viterbi path (:mod:`vqalign.hmm.boundaries`; band storage only) gives, for the
  segment's start and end, the posterior mass of the boundary within +-20 ms and +-50 ms
  of where Viterbi put it, and the posterior spread of the boundary (ms);
* the frame likelihood ratio (path column's emission over the frame's best column),
  averaged over the segment (the confidence of earlier versions);
* duration against the duration the model expects (self loops);
* energy: the segment's mean loudness between the recording's noise floor and its
  speech level, and the share of its frames near the noise floor (a word over
  near-silence is almost always misplaced).

The coefficients (:data:`COEFFICIENTS`) were fitted by
``python -m vqalign.eval.calibrate`` (the command and the data are recorded in
:mod:`vqalign.align._confidence_coefficients`) on alignments of the dev set and of
built-in synthesized speech, in single-utterance mode (from two versions of the
self-training: before and after this round's edge-silence and robustness changes, whose
errors differ: 62 % vs 27 % of dev-set words off by over 50 ms) and in corpus mode (a full corpus,
and small corpora of 10-15 utterances whose model often fails: without them a failed
corpus model was given 0.97 for words 73 % of which were off by over 50 ms), and
checked on data they were not fitted on.

A word whose frames are mostly near the noise floor (:data:`SILENT_FRACTION`) gets at
most :data:`SILENT_CAP` and a warning with its time span.
"""

from __future__ import annotations

import numpy as np

from vqalign.phones import CLASSES, PHONE_CLASS, VOWELS
from vqalign.phones import LOW_TILT_FRICATIVES as FRICATIVES

#: corridor half-width in states around the Viterbi path (3 states per phone: +-5 phones).
#: Posterior masses against a corridor of 24: equal to 1e-7 (30 dev utterances
#: self-trained; 12 differs by up to 0.11 there), in corpus mode to 1e-15 (whole dev set)
CORRIDOR = 16
#: frames per forward-backward job; longer recordings are cut into overlapping jobs
MAX_JOB_FRAMES = 12000
#: overlap of neighbouring jobs (frames), each boundary is taken from the job it is central in
JOB_OVERLAP = 1500
#: acoustic scale of the posterior pass (emission ** KAPPA): the model's per-frame
#: emissions are far sharper than its errors warrant (at 1.0 nearly every boundary gets
#: posterior mass 1 within +-20 ms)
KAPPA = 0.1
#: tolerances (s) of the two calibrated probabilities
TOLERANCES = (0.020, 0.050)
#: a frame is "near the noise floor" when its loudness is below this fraction of the way
#: from the recording's floor (5 % quantile of c0) to its speech level (95 % quantile)
NEAR_FLOOR = 0.2
#: a word with more than this share of its frames near the noise floor lies over silence
#: (on the dev set, corpus mode, and 40 synthesized utterances self-trained, no word
#: within 50 ms of the truth had more than 0.5; every word above 0.5 was misplaced)
SILENT_FRACTION = 0.6
#: its confidence is capped at this and a warning names its span
SILENT_CAP = 0.02
#: the single-file median's confidences (:func:`vqalign.align.second_opinion.merge`) lose
#: NOISE_SLOPE in logit per dB that the recording's estimated SNR
#: (:func:`vqalign.features.snr.estimate_snr_db`) lies below NOISE_FROM_DB (clean
#: recordings, TIMIT 32-54 dB, are left as they are). Fitted (log loss) on the built-in
#: synthesizer's speech: 24 utterances, clean and in white and babble noise at 0, 5, 10,
#: 15 and 20 dB SNR (expected calibration error 0.032 -> 0.016). Measured with `vqalign
#: bench timit` on the 40 TIMIT dev files (word within 50 ms; with the Sphinx opinion's
#: pause bias, :data:`vqalign.align.second_opinion.PAUSE_BIAS_BELOW_DB`), ECE before ->
#: after: white noise 10 dB 0.114 -> 0.100, 0 dB 0.152 -> 0.136; babble 10 dB 0.137 ->
#: 0.136, 0 dB 0.261 -> 0.222 (babble's SNR is estimated 4-10 dB too high, its talkers
#: partly taken for speech); clean unchanged (0.079)
NOISE_FROM_DB = 30.0
NOISE_SLOPE = 0.0125

FEATURES = (
    "logit_p50_start", "logit_p50_end", "log_spread_start_ms", "log_spread_end_ms",
    "log_frame_ratio", "abs_log_dur_ratio", "abs_log_rel_dur", "nb_abs_log_rel_dur",
    "log_dur_ms", "energy_rel", "near_floor_frac", "vowel_energy_rel",
    "flux_start", "flux_end", "flux_dist_start_ms", "flux_dist_end_ms",
    "plaus_mean", "plaus_min", "nb_plaus_min", "cls_mean", "cls_min", "nb_cls_min",
    "cls_edge_start", "cls_edge_end",
)
#: frames on each side of a boundary whose broad classes are compared (s)
EDGE_S = 0.03

# the phone tables (vowels, broad classes, low-tilt fricatives) live in vqalign.phones
#: spectral change is looked for within this many seconds of a boundary
FLUX_NEAR_S = 0.02
FLUX_FAR_S = 0.06

# Written by ``python -m vqalign.eval.calibrate fit ... --write-module`` (the command and
# the data are recorded in the module): "<mode>_<tier>_<tol ms>" -> dict(mean, scale,
# coef, intercept) of a standardized logistic model over FEATURES; CLASS_MODEL (the frame
# broad-class model of ``python -m vqalign.eval.calibrate classes``).
from vqalign.align._confidence_coefficients import (  # noqa: E402
    CALIBRATION,
    CLASS_MODEL,
    COEFFICIENTS,
)


def _logit(p):
    p = np.clip(p, 1e-4, 1.0 - 1e-4)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def boundary_stats(model, batch, path, frame_off, sel, hop_s, *, corridor=CORRIDOR,
                   max_job=MAX_JOB_FRAMES, overlap=JOB_OVERLAP, kappa=None):
    """Boundary posteriors of every unit of ``batch`` around its Viterbi ``path``, with the
    aligner's settings (:func:`vqalign.hmm.boundaries.boundary_posteriors`).

    Returns (stats (n_units, 2, 5) float64, unit_off (U + 1,) int64, vit (n_units, 2)
    int64 Viterbi start / end frames (utterance-local), ok (U,) bool). ``stats[k, side]``
    = [total mass, mean offset (frames, posterior minus Viterbi), spread (frames),
    mass within +-20 ms, mass within +-50 ms], side 0 the start, 1 the end.
    """
    from vqalign.hmm.boundaries import boundary_posteriors  # noqa: PLC0415

    return boundary_posteriors(model, batch, path, frame_off, sel, hop_s, corridor=corridor,
                               max_job=max_job, overlap=overlap,
                               kappa=KAPPA if kappa is None else kappa, tolerances=TOLERANCES)


def _flux(X, block: int = 1 << 16):
    """Spectral change per frame: |MFCC[t] - MFCC[t - 1]| over the 13 static (CMVN)
    coefficients, divided by its utterance median; frame 0 gets 0. Computed ``block``
    frames at a time (each frame's value alone: the same numbers; whole, the float64
    copies of a 180-minute recording took 340 MB at once)."""
    T = X.shape[0]
    d = np.zeros(T)
    for a in range(1, T, block):
        C = np.asarray(X[a - 1:min(a + block, T), :13], np.float64)
        d[a:a + C.shape[0] - 1] = np.sqrt(np.sum(np.diff(C, axis=0) ** 2, axis=1))
    med = np.median(d[1:]) if d.size > 1 else 1.0
    return d / max(med, 1e-9)


def _boundary_flux(flux, f, near, far, ms):
    """At boundary frames ``f`` (a boundary lies before frame f): the largest spectral
    change within +-near frames, and the distance (ms) to the largest within +-far."""
    T = flux.size
    off = np.arange(-far, far + 1)
    idx = np.clip(f[:, None] + off[None, :], 0, T - 1)
    v = flux[idx]
    v[(f[:, None] + off[None, :] < 0) | (f[:, None] + off[None, :] >= T)] = 0.0
    inner = np.abs(off) <= near
    peak = v[:, inner].max(axis=1) if f.size else np.zeros(0)
    dist = np.abs(off[np.argmax(v, axis=1)]) * ms if f.size else np.zeros(0)
    return np.log1p(peak), np.log1p(dist)


def _rows(st_start, st_end, fr_mean, exp_frames, n_frames, rel_dur, e_rel, near, vowel_e,
          flux_s, flux_e, pl_mean, pl_min, cl_mean, cl_min, edge_s, edge_e, hop_s, group=None):
    """Feature matrix (n, len(FEATURES)) from per-segment cues (arrays of length n);
    ``group`` (n,): the utterance of each row (neighbours are taken within it)."""
    ms = 1000.0 * hop_s
    ard = np.abs(rel_dur)
    nb = _neighbours(ard, np.maximum, 0.0, group)
    nbp = _neighbours(pl_min, np.minimum, 5.0, group)
    nbc = _neighbours(cl_min, np.minimum, 0.0, group)
    return np.column_stack([
        _logit(st_start[:, 4]), _logit(st_end[:, 4]),
        np.log1p(st_start[:, 2] * ms), np.log1p(st_end[:, 2] * ms),
        np.log(np.clip(fr_mean, 1e-6, 1.0)),
        np.abs(np.log(np.maximum(n_frames, 1) / np.maximum(exp_frames, 1e-3))),
        ard, nb,
        np.log(np.maximum(n_frames, 1) * ms),
        e_rel, near, vowel_e,
        flux_s[0], flux_e[0], flux_s[1], flux_e[1],
        pl_mean, pl_min, np.minimum(pl_min, nbp),
        cl_mean, cl_min, np.minimum(cl_min, nbc),
        edge_s, edge_e,
    ])


def _neighbours(x, op, fill, group=None):
    """op(previous, next) of each item (``fill`` past the ends of its group)."""
    out = np.full_like(x, fill)
    if x.size > 1:
        prev = x[:-1].copy()
        nxt = x[1:].copy()
        if group is not None:
            same = group[1:] == group[:-1]
            prev[~same] = fill
            nxt[~same] = fill
        out[1:] = prev
        out[:-1] = op(out[:-1], nxt)
    return out


def _class_fit(labels, X, a, b):
    """Per unit, the mean over its frames of log P(its broad class | frame) under the
    frame class model (:data:`CLASS_MODEL`, independent of the aligner's model); NaN for
    units without a class (characters, unknown phones)."""
    cls = np.array([CLASSES.index(PHONE_CLASS[x]) if x in PHONE_CLASS else -1
                    for x in (lab.rstrip("012") for lab in labels)], np.int64)
    out = np.full(len(labels), np.nan)
    if not CLASS_MODEL or not (cls >= 0).any():
        return out, None, cls
    A = np.asarray(CLASS_MODEL["coef"], np.float32)
    z = X @ A.T + np.asarray(CLASS_MODEL["intercept"], np.float32)
    # C: the cumulative log-posteriors, row block by row block (each block's sum carried
    # in as its first row, so the additions are the whole column's, in the same order)
    C = np.zeros((z.shape[0] + 1, z.shape[1]))
    for r0 in range(0, z.shape[0], _ROWS):
        r1 = min(z.shape[0], r0 + _ROWS)
        zb = z[r0:r1] - z[r0:r1].max(axis=1, keepdims=True)
        logp = (zb - np.log(np.exp(zb).sum(axis=1, keepdims=True))).astype(np.float64)
        C[r0 + 1:r1 + 1] = np.cumsum(np.concatenate([C[r0:r0 + 1], logp]), axis=0)[1:]
    del z
    ok = cls >= 0
    n = np.maximum(b - a, 1)
    out[ok] = (C[b[ok], cls[ok]] - C[a[ok], cls[ok]]) / n[ok]
    return out, C, cls


def _edge_evidence(C, f, lo, hi, c_in, c_out, inside_after):
    """Per boundary at frame ``f`` (window ``[lo, hi)`` around it, ``C`` the cumulative
    class log-probabilities): the mean log-probability ratio of the aligned classes
    (``c_in`` inside the unit, ``c_out`` outside) against the swapped ones on each side;
    0 when both sides share a class or one is unknown. Inside the unit is ``[f, hi)``
    for a start (``inside_after``), ``[lo, f)`` for an end."""
    ok = (c_in >= 0) & (c_out >= 0) & (c_in != c_out)
    ci, co = np.maximum(c_in, 0), np.maximum(c_out, 0)
    ia, ib = (f, hi) if inside_after else (lo, f)
    oa, ob = (lo, f) if inside_after else (f, hi)
    ni, no = np.maximum(ib - ia, 1), np.maximum(ob - oa, 1)
    ins = ((C[ib, ci] - C[ia, ci]) - (C[ib, co] - C[ia, co])) / ni
    out = ((C[ob, co] - C[oa, co]) - (C[ob, ci] - C[oa, ci])) / no
    return np.where(ok, ins + out, 0.0)


def _class_edges(C, cls, frame_cls, a, b, w):
    """Broad-class evidence for the boundaries at frames ``a`` (starts) and ``b`` (ends):
    over ``w`` frames on each side, how much better the classes on the aligned sides fit
    than the swapped ones (mean log-probability ratio; 0 when both sides share a class
    or one is unknown). ``frame_cls`` (T,): the class the path gives each frame."""
    T = C.shape[0] - 1

    def evidence(f, c_in, c_out, inside_after):
        return _edge_evidence(C, np.clip(f, 0, T), np.clip(f - w, 0, T), np.clip(f + w, 0, T),
                              c_in, c_out, inside_after)

    before = frame_cls[np.clip(a - 1, 0, T - 1)]
    before[a <= 0] = CLASSES.index("silence")
    after = frame_cls[np.clip(b, 0, T - 1)]
    after[b >= T] = CLASSES.index("silence")
    return evidence(a, cls, before, True), evidence(b, cls, after, False)


def _plausibility(labels, X, a, b):
    """Per unit, how well its frames fit its broad class, from the CMVN'd c0 (loudness)
    and c1 (spectral tilt) alone, without the model: a vowel should be loud with a steep
    tilt ((c0 + c1) / 2 high), a fricative flat (-c1 high); other units give NaN."""
    c0 = np.concatenate([[0.0], np.cumsum(X[:, 0], dtype=np.float64)])
    c1 = np.concatenate([[0.0], np.cumsum(X[:, 1], dtype=np.float64)])
    n = np.maximum(b - a, 1)
    m0 = (c0[b] - c0[a]) / n
    m1 = (c1[b] - c1[a]) / n
    base = [lab.rstrip("012") for lab in labels]
    vow = np.array([x in VOWELS or x.lower() in VOWELS for x in base], bool)
    fri = np.array([x in FRICATIVES or x.lower() in FRICATIVES for x in base], bool)
    out = np.full(len(labels), np.nan)
    out[vow] = 0.5 * (m0[vow] + m1[vow])
    out[fri & ~vow] = -m1[fri & ~vow]
    return out


def utterance_features(stats_u, vit_u, batch, u, frame_ratio, energy, X, trans, hop_s,
                       n_words, word_of_unit):
    """Per-unit and per-word feature matrices of one utterance.

    ``stats_u`` / ``vit_u``: its rows of :func:`boundary_stats` (vit local frames);
    ``frame_ratio``, ``energy`` (raw c0) and ``X`` (features) its frames. Returns
    (X_units, X_words, near_frac_words).
    """
    T = frame_ratio.size
    ms = 1000.0 * hop_s
    e = np.asarray(energy, np.float64)
    lo, hi = np.quantile(e, (0.05, 0.95))
    rel = np.clip((e - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    near = (rel < NEAR_FLOOR).astype(np.float64)
    flux = _flux(X)
    c_fr = np.concatenate([[0.0], np.cumsum(frame_ratio, dtype=np.float64)])
    c_rel = np.concatenate([[0.0], np.cumsum(rel)])
    c_near = np.concatenate([[0.0], np.cumsum(near)])
    s0 = int(batch.state_off[u])
    s1 = int(batch.state_off[u + 1])
    ui = batch.unit_index[s0:s1]
    sl = np.clip(trans[s0:s1, 0], 0.0, 0.999)
    nu = vit_u.shape[0]
    exp_u = np.zeros(nu)
    m = ui >= 0
    np.add.at(exp_u, ui[m], 1.0 / (1.0 - sl[m]))
    a = np.clip(vit_u[:, 0], 0, T)
    b = np.clip(vit_u[:, 1], 0, T)
    n = np.maximum(b - a, 1)
    near_f = max(1, int(round(FLUX_NEAR_S / hop_s)))
    far_f = max(near_f, int(round(FLUX_FAR_S / hop_s)))

    def seg_mean(c, a, b):
        return (c[b] - c[a]) / np.maximum(b - a, 1)

    labels = [lab for _, lab in batch.units[u]]
    vowel = np.array([lab.rstrip("012") in VOWELS or lab.lower() in VOWELS
                      for lab in labels], bool)
    e_u = seg_mean(c_rel, a, b)
    rel_u = np.log(n / max(np.median(n), 1.0))
    fs_u = _boundary_flux(flux, a, near_f, far_f, ms)
    fe_u = _boundary_flux(flux, b, near_f, far_f, ms)
    ve_u = np.where(vowel, e_u, np.nan)
    pl_u = _plausibility(labels, X, a, b)
    pl_u0 = np.nan_to_num(pl_u, nan=0.0)
    cl_u, C, cls = _class_fit(labels, X, a, b)
    cl_u0 = np.nan_to_num(cl_u, nan=0.0)
    if C is not None:
        # the class the path gives each frame: its unit's, silence between units
        frame_cls = np.full(T, CLASSES.index("silence"), np.int64)
        lens = b - a
        seg = np.repeat(np.arange(nu), lens)
        first = np.repeat(np.cumsum(lens) - lens, lens)
        frame_cls[np.arange(seg.size) - first + np.repeat(a, lens)] = cls[seg]
        w = max(1, int(round(EDGE_S / hop_s)))
        ed_s, ed_e = _class_edges(C, cls, frame_cls, a, b, w)
    else:
        ed_s = ed_e = np.zeros(nu)
    Xu = _rows(stats_u[:, 0], stats_u[:, 1], seg_mean(c_fr, a, b), exp_u, n, rel_u, e_u,
               seg_mean(c_near, a, b), np.where(vowel, e_u, e_u), fs_u, fe_u, pl_u0, pl_u0,
               cl_u0, cl_u0, ed_s, ed_e, hop_s)
    # units run in word order: each word's first and last unit
    change = np.flatnonzero(np.diff(word_of_unit) != 0) + 1
    wfirst = np.concatenate([[0], change]).astype(np.int64)
    wlast = np.concatenate([change - 1, [nu - 1]]).astype(np.int64)
    wa, wb = a[wfirst], b[wlast]
    nw = np.maximum(wb - wa, 1)
    exp_w = np.zeros(n_words)
    np.add.at(exp_w, word_of_unit, exp_u)
    nph = np.bincount(word_of_unit, minlength=n_words).astype(np.float64)
    per = nw / np.maximum(nph, 1.0)
    rel_w = np.log(per / max(np.median(per), 1e-9))
    # loudness of the word's vowels (its mean loudness when it has none)
    vs = np.zeros(n_words)
    vn = np.zeros(n_words)
    ok = np.isfinite(ve_u)
    np.add.at(vs, word_of_unit[ok], ve_u[ok] * n[ok])
    np.add.at(vn, word_of_unit[ok], n[ok])
    e_w = seg_mean(c_rel, wa, wb)
    ve_w = np.where(vn > 0, vs / np.maximum(vn, 1), e_w)
    near_w = seg_mean(c_near, wa, wb)
    has = np.isfinite(pl_u)
    ps = np.zeros(n_words)
    pn = np.zeros(n_words)
    pm = np.full(n_words, np.inf)
    np.add.at(ps, word_of_unit[has], pl_u[has])
    np.add.at(pn, word_of_unit[has], 1.0)
    np.minimum.at(pm, word_of_unit[has], pl_u[has])
    pl_mean = np.where(pn > 0, ps / np.maximum(pn, 1.0), 0.0)
    pl_min = np.where(pn > 0, pm, 0.0)
    has = np.isfinite(cl_u)
    cs = np.zeros(n_words)
    cn = np.zeros(n_words)
    cm = np.full(n_words, np.inf)
    np.add.at(cs, word_of_unit[has], cl_u[has])
    np.add.at(cn, word_of_unit[has], 1.0)
    np.minimum.at(cm, word_of_unit[has], cl_u[has])
    cl_mean = np.where(cn > 0, cs / np.maximum(cn, 1.0), 0.0)
    cl_min = np.where(cn > 0, cm, 0.0)
    Xw = _rows(stats_u[wfirst, 0], stats_u[wlast, 1], seg_mean(c_fr, wa, wb), exp_w, nw,
               rel_w, e_w, near_w, ve_w, _boundary_flux(flux, wa, near_f, far_f, ms),
               _boundary_flux(flux, wb, near_f, far_f, ms), pl_mean, pl_min, cl_mean, cl_min,
               ed_s[wfirst], ed_e[wlast], hop_s)
    return Xu, Xw, near_w


#: rows per block of the per-frame passes over a recording's features (a long recording's
#: (T, 13) float64 copies and their temporaries were the peak of its confidences)
_ROWS = 1 << 15


def _frame_distance(X, N):
    """(N,) float64: the Euclidean distance of each frame's first 13 features (the static
    cepstra) from the previous frame's, 0 for the first; block by block."""
    d = np.zeros(N)
    for a in range(1, N, _ROWS):
        b = min(N, a + _ROWS)
        c = np.asarray(X[a - 1:b, :13], np.float64)
        d[a:b] = np.sqrt(np.sum(np.diff(c, axis=0) ** 2, axis=1))
    return d


def batch_features(stats, vit, unit_off, batch, frame_off, frame_ratio, energies, X, trans,
                   hop_s):
    """:func:`utterance_features` of every utterance of a batch at once (the same values,
    computed on the batch's flat arrays: a few numpy passes instead of some hundred calls
    per utterance). ``vit`` holds global frames. Returns (X_units (n_units, F), X_words
    (n_words, F), near_frac_words, word_off (U + 1,), word_of_unit (n_units,) global)."""
    U = batch.n_utterances
    frame_off = np.asarray(frame_off, np.int64)
    N = int(frame_off[-1])
    ms = 1000.0 * hop_s
    lens_f = np.diff(frame_off)
    utt_of_frame = np.repeat(np.arange(U), lens_f)
    e = np.concatenate([np.asarray(x, np.float64) for x in energies]) if U else np.zeros(0)
    q = np.array([np.quantile(e[frame_off[u]:frame_off[u + 1]], (0.05, 0.95))
                  if lens_f[u] else (0.0, 1.0) for u in range(U)]).reshape(U, 2)
    lo, hi = q[utt_of_frame, 0], q[utt_of_frame, 1]
    rel = np.clip((e - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
    near = (rel < NEAR_FLOOR).astype(np.float64)
    d = _frame_distance(X, N)
    starts = frame_off[:-1][lens_f > 0]
    d[starts] = 0.0
    med = np.array([np.median(d[frame_off[u] + 1:frame_off[u + 1]]) if lens_f[u] > 1 else 1.0
                    for u in range(U)])
    flux = d / np.maximum(med, 1e-9)[utt_of_frame]

    def csum(x):
        return np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])

    c_fr, c_rel, c_near = csum(frame_ratio), csum(rel), csum(near)
    NU = int(unit_off[-1])
    utt_of_unit = np.repeat(np.arange(U), np.diff(unit_off))
    ui = batch.unit_index.astype(np.int64)
    utt_of_state = np.repeat(np.arange(U), np.diff(batch.state_off))
    m = ui >= 0
    sl = np.clip(trans[:, 0], 0.0, 0.999)
    exp_u = np.zeros(NU)
    np.add.at(exp_u, unit_off[utt_of_state[m]] + ui[m], 1.0 / (1.0 - sl[m]))
    f0u = frame_off[utt_of_unit]
    f1u = frame_off[utt_of_unit + 1]
    a = np.clip(vit[:, 0], f0u, f1u)
    b = np.clip(vit[:, 1], f0u, f1u)
    n = np.maximum(b - a, 1)
    near_f = max(1, int(round(FLUX_NEAR_S / hop_s)))
    far_f = max(near_f, int(round(FLUX_FAR_S / hop_s)))

    def seg_mean(c, a, b):
        return (c[b] - c[a]) / np.maximum(b - a, 1)

    def bflux(f, f0, f1):
        off = np.arange(-far_f, far_f + 1)
        g = f[:, None] + off[None, :]
        out = (g < f0[:, None]) | (g >= f1[:, None])
        v = flux[np.clip(g, 0, max(N - 1, 0))] if N else np.zeros(g.shape)
        v[out] = 0.0
        inner = np.abs(off) <= near_f
        if not f.size:
            return np.zeros(0), np.zeros(0)
        return np.log1p(v[:, inner].max(axis=1)), np.log1p(np.abs(off[np.argmax(v, axis=1)])
                                                            * ms)

    labels = [lab for u in range(U) for _, lab in batch.units[u]]
    vowel = np.array([lab.rstrip("012") in VOWELS or lab.lower() in VOWELS
                      for lab in labels], bool)
    e_u = seg_mean(c_rel, a, b)
    med_n = np.array([np.median(n[unit_off[u]:unit_off[u + 1]]) if unit_off[u + 1] > unit_off[u]
                      else 1.0 for u in range(U)])
    rel_u = np.log(n / np.maximum(med_n, 1.0)[utt_of_unit])
    fs_u, fe_u = bflux(a, f0u, f1u), bflux(b, f0u, f1u)
    ve_u = np.where(vowel, e_u, np.nan)
    pl_u = _plausibility(labels, X, a, b)
    pl_u0 = np.nan_to_num(pl_u, nan=0.0)
    cl_u, C, cls = _class_fit(labels, X, a, b)
    cl_u0 = np.nan_to_num(cl_u, nan=0.0)
    if C is not None:
        sil = CLASSES.index("silence")
        frame_cls = np.full(N, sil, np.int64)
        lens = b - a
        seg = np.repeat(np.arange(NU), lens)
        first = np.repeat(np.cumsum(lens) - lens, lens)
        frame_cls[np.arange(seg.size) - first + np.repeat(a, lens)] = cls[seg]
        w = max(1, int(round(EDGE_S / hop_s)))

        def evidence(f, c_in, c_out, inside_after):
            return _edge_evidence(C, f, np.clip(f - w, f0u, f1u), np.clip(f + w, f0u, f1u),
                                  c_in, c_out, inside_after)

        before = frame_cls[np.clip(a - 1, 0, max(N - 1, 0))]
        before[a <= f0u] = sil
        after = frame_cls[np.clip(b, 0, max(N - 1, 0))]
        after[b >= f1u] = sil
        ed_s, ed_e = evidence(a, cls, before, True), evidence(b, cls, after, False)
    else:
        ed_s = ed_e = np.zeros(NU)
    Xu = _rows(stats[:, 0], stats[:, 1], seg_mean(c_fr, a, b), exp_u, n, rel_u, e_u,
               seg_mean(c_near, a, b), e_u, fs_u, fe_u, pl_u0, pl_u0, cl_u0, cl_u0, ed_s,
               ed_e, hop_s, group=utt_of_unit)
    # words: global ids (words run in order within and across utterances)
    lw = np.array([w for u in range(U) for w, _ in batch.units[u]], np.int64)
    n_words = np.array([(max(w for w, _ in batch.units[u]) + 1) if batch.units[u] else 0
                        for u in range(U)], np.int64)
    word_off = np.zeros(U + 1, np.int64)
    word_off[1:] = np.cumsum(n_words)
    NW = int(word_off[-1])
    wou = word_off[utt_of_unit] + lw
    change = np.flatnonzero(np.diff(wou) != 0) + 1
    wfirst = np.concatenate([[0], change]).astype(np.int64) if NU else np.zeros(0, np.int64)
    wlast = np.concatenate([change - 1, [NU - 1]]).astype(np.int64) if NU else wfirst
    utt_of_word = utt_of_unit[wfirst]
    wa, wb = a[wfirst], b[wlast]
    nw = np.maximum(wb - wa, 1)
    exp_w = np.zeros(NW)
    np.add.at(exp_w, wou, exp_u)
    nph = np.bincount(wou, minlength=NW).astype(np.float64)
    per = nw / np.maximum(nph, 1.0)
    med_p = np.array([np.median(per[word_off[u]:word_off[u + 1]]) if n_words[u] else 1.0
                      for u in range(U)])
    rel_w = np.log(per / np.maximum(med_p, 1e-9)[utt_of_word])

    def word_sum(x, ok):
        s_ = np.zeros(NW)
        c_ = np.zeros(NW)
        np.add.at(s_, wou[ok], x[ok])
        np.add.at(c_, wou[ok], 1.0)
        return s_, c_

    ok = np.isfinite(ve_u)
    vs = np.zeros(NW)
    vn = np.zeros(NW)
    np.add.at(vs, wou[ok], ve_u[ok] * n[ok])
    np.add.at(vn, wou[ok], n[ok])
    e_w = seg_mean(c_rel, wa, wb)
    ve_w = np.where(vn > 0, vs / np.maximum(vn, 1), e_w)
    near_w = seg_mean(c_near, wa, wb)
    aggs = []
    for x in (pl_u, cl_u):
        has = np.isfinite(x)
        s_, c_ = word_sum(x, has)
        mn = np.full(NW, np.inf)
        np.minimum.at(mn, wou[has], x[has])
        aggs += [np.where(c_ > 0, s_ / np.maximum(c_, 1.0), 0.0), np.where(c_ > 0, mn, 0.0)]
    Xw = _rows(stats[wfirst, 0], stats[wlast, 1], seg_mean(c_fr, wa, wb), exp_w, nw, rel_w,
               e_w, near_w, ve_w, bflux(wa, f0u[wfirst], f1u[wfirst]),
               bflux(wb, f0u[wfirst], f1u[wfirst]), aggs[0], aggs[1], aggs[2], aggs[3],
               ed_s[wfirst], ed_e[wlast], hop_s, group=utt_of_word)
    return Xu, Xw, near_w, word_off, wou


def noise_adjusted(p, snr_db):
    """Confidences ``p`` (any shape, NaN kept) lowered for a recording of estimated SNR
    ``snr_db`` (dB; None: as they are): ``logit(p) - NOISE_SLOPE * max(0, NOISE_FROM_DB
    - snr_db)``. The calibrated models were fitted on clean speech; in noise their
    words are wrong more often than they say.

    Returns
    -------
    ndarray, float64
    """
    p = np.asarray(p, np.float64)
    if snr_db is None or not np.isfinite(snr_db) or snr_db >= NOISE_FROM_DB:
        return p.copy()
    return _sigmoid(_logit(p) - NOISE_SLOPE * (NOISE_FROM_DB - float(snr_db)))


def predict(X, tier, tol_ms, mode="corpus"):
    """Calibrated probability of each row of ``X`` (NaN where a feature is unknown):
    ``tier`` "words" or "units", ``tol_ms`` 50 or 20, ``mode`` "corpus" (a model fitted
    on a corpus) or "self" (self-trained on the audio it aligns)."""
    key = f"{mode}_{tier}_{tol_ms}"
    if key not in COEFFICIENTS:
        return np.full(X.shape[0], np.nan)
    c = COEFFICIENTS[key]
    mu = np.asarray(c["mean"])
    sd = np.asarray(c["scale"])
    w = np.asarray(c["coef"])
    z = c["intercept"] + ((X - mu) / sd) @ w
    p = _sigmoid(z)
    p[~np.all(np.isfinite(X), axis=1)] = np.nan
    return p


def alignment_confidence(model, batch, path, frame_off, sel, frame_ratio, energies, X, hop_s,
                         mode="corpus"):
    """Confidences of every utterance of a decoded batch (``mode``: "corpus" for a model
    fitted on a corpus, "self" for one self-trained on this audio: their errors differ,
    so each has its own coefficients).

    Returns a list (one per utterance) of dicts: ``units`` / ``words`` (calibrated
    P(within 50 ms)), ``units_20`` / ``words_20`` (within 20 ms), ``features`` (per tier
    rows in :data:`FEATURES` order, for re-calibration), ``silent_words`` (indices of
    words over near-silence, with their share of near-floor frames), or None for an
    utterance whose posteriors could not be computed.
    """
    stats, unit_off, vit, ok = boundary_stats(model, batch, path, frame_off, sel, hop_s)
    trans, _, _ = model.transitions(batch)
    Xu, Xw, near_w, word_off, wou = batch_features(stats, vit, unit_off, batch, frame_off,
                                                   frame_ratio, energies, X, trans, hop_s)
    probs = {}
    for tier, F in (("words", Xw), ("units", Xu)):
        for tol in (50, 20):
            probs[tier if tol == 50 else f"{tier}_20"] = predict(F, tier, tol, mode)
    silent = near_w > SILENT_FRACTION
    for key in ("words", "words_20"):
        probs[key][silent] = np.minimum(np.nan_to_num(probs[key][silent], nan=SILENT_CAP),
                                        SILENT_CAP)
    # a phone of a word over silence cannot be better placed than its word
    su = silent[wou] if wou.size else np.zeros(0, bool)
    for key in ("units", "units_20"):
        probs[key][su] = np.minimum(np.nan_to_num(probs[key][su], nan=SILENT_CAP), SILENT_CAP)
    out = []
    for u in range(batch.n_utterances):
        ka, kb = int(unit_off[u]), int(unit_off[u + 1])
        wa, wb = int(word_off[u]), int(word_off[u + 1])
        if not ok[u] or frame_off[u + 1] == frame_off[u]:
            nan_u, nan_w = np.full(kb - ka, np.nan), np.full(wb - wa, np.nan)
            out.append({"units": nan_u, "words": nan_w, "units_20": nan_u, "words_20": nan_w,
                        "features": None, "silent_words": [], "failed": True, "mode": mode})
            continue
        res = {key: v[wa:wb] if key.startswith("words") else v[ka:kb]
               for key, v in probs.items()}
        res["features"] = {"words": Xw[wa:wb], "units": Xu[ka:kb]}
        sw = np.flatnonzero(silent[wa:wb])
        res["silent_words"] = [(int(w), float(near_w[wa + w])) for w in sw]
        res["mode"] = mode
        out.append(res)
    return out


def attach(alignment, conf, *, ndigits=4):
    """Record ``conf`` (one entry of :func:`alignment_confidence`) in the alignment's
    diagnostics (``"confidence"``) and warn about words over near-silence."""
    import math as _m  # noqa: PLC0415

    if conf is None:
        return
    diag = alignment.diagnostics
    unit = alignment.unit_tier or "phones"

    def rounded(a):
        return [None if not _m.isfinite(v) else round(float(v), ndigits) for v in a]

    block = {
        "meaning": "confidence = P(start and end both within 50 ms of the truth); "
                   "*_20ms: within 20 ms",
        "calibration": CALIBRATION.get("command", "uncalibrated"),
        "mode": conf.get("mode"),
        "words_20ms": rounded(conf["words_20"]),
        f"{unit}_20ms": rounded(conf["units_20"]),
    }
    if conf.get("failed"):
        block["failed"] = ("the boundary posteriors could not be computed (every path "
                           "left the corridor around the Viterbi path); confidences unknown")
    elif conf.get("features") is not None:
        block["features"] = list(FEATURES)
        block["word_features"] = [rounded(r) for r in conf["features"]["words"]]
        block[f"{unit}_features"] = [rounded(r) for r in conf["features"]["units"]]
    diag["confidence"] = block
    words = alignment.words
    warns = diag.setdefault("warnings", [])
    for w, frac in conf.get("silent_words", []):
        if w >= len(words):
            continue
        s = words[w]
        msg = (f"words: {s.label!r} at {s.start:.2f}-{s.end:.2f} s lies over near-silence "
               f"({100 * frac:.0f} % of its frames are near the recording's noise floor); it "
               f"is probably misplaced (confidence set to <= {SILENT_CAP:g}): check the "
               "transcript against the audio there")
        if msg not in warns:
            warns.append(msg)
