"""Minutes of audio that is not speech inside a long recording: music, noise, silence.

A stretch of music (or steady noise, or silence) minutes long between two transcribed
sentences of a long recording has no words. The VAD calls loud music and noise speech,
so the windows schedule's anchor pass spreads the words over it (devdata synth, 6 min
with 150 s of synthetic music inside: every word after it off by a minute, issue 26),
and stationary noise lost the anchor's path altogether (an AlignmentError). Here the
English prior (:mod:`vqalign.align.prior`) finds such a stretch before the self-training,
in time linear in the recording:

1. **a gap unit** -- the transcript's chain (with :mod:`vqalign.align.extent`'s filler
   unit at both ends) whose optional silence between two words is a *gap* state: a
   one-state unit with a long self loop (``GAP_SELF_LOOP``) whose weights over the
   prior's Gaussians start as half silence, half the mean of the model's columns;
2. **seeds** -- the beam Viterbi of that chain, and once more with the gap's weights the
   recording's own mean Gaussian occupancy: runs of the gap state of ``SEED_S`` or more
   (runs of ``PIECE_S`` or more closer than ``MERGE_S`` joined: words placed on the
   music cut it in parts while the gap's weights do not fit it yet) are the seeds;
3. **re-estimation** -- the gap's weights become the Gaussian occupancy of the seeds'
   frames and of every run found since (``FILLER_SHARE`` of the mean column and
   ``SILENCE_SHARE`` of the silence mixed in) and the Viterbi runs again, up to
   ``ROUNDS`` times, until its runs (joined only over frames the gap state fits nearly
   as well as the phones: three long pauses joined made a stretch of the speech between
   them) stop changing. A gap state that models the
   recording's music fits it better than any phone; the transcript's words cannot be
   left out, so where they are spoken the gap state does not take their audio;
4. **both ways** -- the search runs forwards, then on the reversed recording (as
   :func:`vqalign.align.extent.locate`; the forward stretches among its seeds); a
   stretch is kept when both find it over ``MIN_GAP_S`` or more, the frames at its ends
   that only one of them gives it kept where the gap state fits them nearly as well as
   the phones, and an end inside the VAD's speech moved to a pause within ``SNAP_S``
   (:func:`snapped`, in :mod:`vqalign.align.longform`). The gap state
   must then fit the rest of the recording far worse than the phones (:func:`_distinct`):
   re-estimated on untranscribed speech at an end or in the middle, it fits the
   transcript's speech too. A pause of a few seconds is a pause (``MIN_GAP_S``).

:mod:`vqalign.align.extent` then locates the transcript's ends on the recording with the
stretches masked, and the stretches are left out of the self-training like its
untranscribed ends (masked by the quietest frames unless silent, and cut from the edges
of the windows: :func:`vqalign.align.windows.trimmed`), cut from the second opinions'
windows and reported with their time span (``diagnostics["non_speech_s"]``).

English phones only, like the extent check (:func:`vqalign.align.extent.uses_prior`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import numpy as np

from vqalign.align import extent as E
from vqalign.features.frontend import true_runs
from vqalign.hmm.stats import Selection

#: the gap unit's symbol (never a phone or a letter of a transcript)
GAP = "<not speech>"
#: its self loop: it may last minutes
GAP_SELF_LOOP = 0.999
#: a stretch of audio without words is reported and left out from this length on (s):
#: devdata's long builds have pauses of 0.2-1.5 s (and the VAD's runs of silence on a
#: pause-and-word path reach 2-3 s); minutes of music are what this is for
MIN_GAP_S = 20.0
#: runs of the gap state from this length (s) seed its re-estimation
SEED_S = 10.0
#: ... runs of this length or more (s) closer than MERGE_S are joined first (a few words
#: placed on the music split it in parts while the gap's weights do not yet fit it all)
PIECE_S = 3.0
MERGE_S = 10.0
#: ... and always when under JOIN_S (s) apart (a word placed on the music)
JOIN_S = 1.0
#: shares of the mean column (the extent's filler) and of the prior's silence in the
#: re-estimated gap weights (the silence: the pauses at both sides of the music are the
#: gap state's too, not the words')
FILLER_SHARE = 0.1
SILENCE_SHARE = 0.1
#: re-estimation rounds at most
ROUNDS = 5
#: frames the gap state fits with an emission at least exp(WIDEN_LOG_RATIO) times the
#: best phone column's (mean over the frames) are its (:meth:`_Search._like_gap`).
#: Devdata synth, 6 min, seed 1, 150 s of music, gap weights fitted on the music alone
#: (an earlier estimate than the search's): that log ratio was -1.5 on the music's
#: frames (median; 10th percentile -2.9), -5.3 on the rest (90th percentile -2.4)
WIDEN_LOG_RATIO = -3.0
#: frames outside the stretches sampled by :func:`_distinct`, one in this many, and the
#: median log ratio (gap state over the best phone) under which the gap state is
#: distinct from the recording's speech. Devdata synth, 6 min, seeds 1-2, 150 s inside:
#: music -4.2 and -4.1, noise -5.1, silence -5.3; re-estimated on untranscribed speech
#: (tests/test_windows.py's 40 s before the first word, after the last, in the middle):
#: -3.2 to -3.3. Chosen between, on those synthetic voices only
DISTINCT_STEP = 10
DISTINCT_LOG_RATIO = -3.7
#: audio kept beside the words at each side of a stretch left out (s): none. The
#: stretch's ends are those of the words beside it, within a few frames, or of the music
#: where a pause lies between, and music left beside the stretch takes the next word:
#: with 0.25 s (0.05 s), 'he' began 0.8 s (0.7 s) early, in the 0.25 s (60 ms) of music
#: left (devdata synth, 6 min, seed 1, 150 s of music)
MARGIN_S = 0.0
#: a stretch's end inside the VAD's speech moves to a pause at most this far inside
#: it (s) (:func:`snapped`)
SNAP_S = 1.0
#: the VAD's frame step (s) (vqalign.features.frontend.speech_frames)
VAD_HOP_S = 0.010
#: a stretch with fewer loud frames than this share (:func:`loud_share`) is silence: it
#: is reported as such and not masked (vqalign.align.longform)
QUIET_SHARE = 0.1
#: Viterbi beams tried in turn (log units). A gap state seeded in part on speech fits
#: it about as well as the words do, and the narrower beams then keep no path to the
#: chain's end (devdata synth, 6 min, seed 3, 200 s of music)
BEAMS = (-60.0, -200.0, -1000.0)


def _soft_counts(sel, frames, w):
    """Gaussian occupancy (K,) of the frames ``frames`` (bool mask) under weights ``w``."""
    idx, eg = sel.idx[frames], sel.eg[frames]
    r = w[idx] * eg
    r /= np.maximum(r.sum(1, keepdims=True), 1e-300)
    return np.bincount(idx.ravel(), weights=r.ravel(), minlength=w.size)


class _Search:
    """One direction's search (module docstring, steps 1-3) over the frames of ``sel``."""

    def __init__(self, m, units, sel, hop_s, backwards):
        self.m, self.sel, self.hop = m, sel, hop_s
        self.g = m.emit_index_[(GAP, 0)]
        words = [[E.FILLER]] + [list(w) for w in units] + [[E.FILLER]]
        if backwards:
            words = [list(reversed(w)) for w in reversed(words)]
        b = m.batch([words])
        if backwards:
            b = E._reversed_batch(b)
        ui = b.unit_index
        last = sum(len(w) for w in words) - 1
        first_word, last_word = np.flatnonzero(ui == 1)[0], np.flatnonzero(ui == last)[0]
        states = np.arange(ui.size)
        self.inner = (ui < 0) & (states > first_word) & (states < last_word)
        e = b.emit_ids.copy()
        e[self.inner] = self.g
        self.batch = replace(b, emit_ids=e)
        self.T = sel.idx.shape[0]

    def set_weights(self, w):
        w = np.maximum(np.asarray(w, np.float64), 1e-6)
        self.m.weights_[self.g] = (w / w.sum()).astype(np.float32)

    def runs(self, merge=False):
        """Runs (frames) of the gap state of ``SEED_S`` or more on the best path, parts of
        ``PIECE_S`` or more closer than ``MERGE_S`` joined when the gap state fits the
        frames between them nearly as well as the phones (:meth:`_like_gap`; with
        ``merge``, always); None when no beam keeps a path."""
        got = E._beam_path(self.m, self.batch, self.sel, BEAMS)
        if got is None:
            return None
        a, b = true_runs(self.inner[got[0]])
        piece, gap, join = (int(round(s / self.hop)) for s in (PIECE_S, MERGE_S, JOIN_S))
        out = []
        for x, y in zip(a.tolist(), b.tolist()):
            if y - x < piece:
                continue
            if out and x - out[-1][1] <= gap and (merge or x - out[-1][1] <= join
                                                  or self._like_gap(out[-1][1], x)):
                out[-1][1] = y
            else:
                out.append([x, y])
        return [(x, y) for x, y in out if y - x >= int(round(SEED_S / self.hop))]

    def _like_gap(self, a, b):
        """Whether the gap state fits frames ``a:b`` nearly as well as the best phone
        (their mean log ratio at least ``WIDEN_LOG_RATIO``); False when there are none."""
        if b <= a:
            return False
        return bool(np.mean(_gap_vs_speech(self.m, self.sel.rows(a, b))) >= WIDEN_LOG_RATIO)

    def run(self, filler, silence, seeds=()):
        """The stretches (frames) of this direction (module docstring, steps 2-3), from
        its own seeds and ``seeds``."""
        self.set_weights(0.5 * silence + 0.5 * filler)
        seeds = list(seeds) + (self.runs(merge=True) or [])
        self.set_weights((1 - FILLER_SHARE) * _norm(_soft_counts(
            self.sel, np.ones(self.T, bool), filler)) + FILLER_SHARE * filler)
        seeds = sorted(set(seeds) | set(self.runs(merge=True) or []))
        spans, w = seeds, filler
        mask = np.zeros(self.T, bool)
        for _ in range(ROUNDS):
            if not spans:
                return []
            for a, b in spans:    # every run seen so far (a round's runs alone shrank
                mask[a:b] = True  # round by round on the music's other chords)
            w = _norm(_soft_counts(self.sel, mask, w))
            self.set_weights((1 - FILLER_SHARE - SILENCE_SHARE) * w + FILLER_SHARE * filler
                             + SILENCE_SHARE * silence)
            new = self.runs()
            if new is None:
                break
            if new == spans:
                break
            spans = new
        return spans


def _gap_vs_speech(m, sel):
    """Per frame of ``sel``, log of the gap column's emission over the best phone
    column's, at most 0."""
    g = m.emit_index_[(GAP, 0)]
    other = {g, *(m.emit_index_[(E.FILLER, j)] for j in range(m._n_sub(E.FILLER)))}
    cols = np.array([c for c in range(m.weights_.shape[0]) if c not in other] + [g], np.int32)
    sub = copy.copy(m)
    sub.weights_ = m.weights_[cols]
    ratio, _ = sub.frame_ratio(sel, np.full(sel.idx.shape[0], cols.size - 1, np.int32))
    return np.log(np.maximum(ratio, 1e-300))


def _distinct(m, sel, spans, c0):
    """Whether the gap state, as re-estimated, fits the loud frames outside ``spans``
    (every ``DISTINCT_STEP``-th; louder than halfway between the 15th percentile and the
    median of ``c0``, as :func:`loud_share`) far worse than the phones: median log ratio
    under ``DISTINCT_LOG_RATIO``. Re-estimated on untranscribed speech (40 s before the
    first word: tests/test_gaps.py), it fits the transcribed speech as well, and what it
    found is speech, not a stretch without it."""
    out = np.ones(sel.idx.shape[0], bool)
    for a, b in spans:
        out[a:b] = False
    rows = np.flatnonzero(out)[::DISTINCT_STEP]
    if rows.size == 0:
        return False
    e = c0[rows]
    lo, med = np.quantile(e, 0.15), np.median(e)
    rows = rows[e > lo + 0.5 * (med - lo)]
    if rows.size == 0:
        return False
    sub = Selection(sel.idx[rows], sel.eg[rows], sel.gmax[rows])
    return bool(np.median(_gap_vs_speech(m, sub)) < DISTINCT_LOG_RATIO)


def _norm(c):
    return c / max(float(c.sum()), 1e-300)


def find(model, X, units, hop_s):
    """Stretches of the recording's frames ``X`` that are not speech and hold no word of
    the transcript, to leave out: ``[(first frame, end frame)]`` in time order, each
    found forwards and backwards and lasting ``MIN_GAP_S`` or more (module docstring),
    less ``MARGIN_S`` at each side; empty when none.

    Parameters
    ----------
    model : vqalign.hmm.TiedMixtureHMM
        Fitted (vqalign's English prior's).
    X : ndarray, shape (T, D) float32
    units : list of list of str
        The transcript's units per word.
    hop_s : float

    Returns
    -------
    list of (int, int)
    """
    m = E._locator(model, units)
    m.add_symbols([GAP])
    m.self_loop_[m.emit_index_[(GAP, 0)]] = GAP_SELF_LOOP
    fill = [m.emit_index_[(E.FILLER, j)] for j in range(m._n_sub(E.FILLER))]
    filler = m.weights_[fill].astype(np.float64).mean(0)
    silence = m.weights_[m.emit_index_[(m.optional_silence, 0)]].astype(np.float64)
    T = X.shape[0]
    sel = m.select(X)
    fwd = _Search(m, units, sel, hop_s, False).run(filler, silence)
    if not fwd:
        return []
    bwd = [(T - b, T - a) for a, b in _Search(m, units, E._flipped(sel), hop_s, True)
           .run(filler, silence, [(T - b, T - a) for a, b in fwd])]
    need = int(round(MIN_GAP_S / hop_s))
    look = _Search.__new__(_Search)
    look.m, look.sel = m, sel
    both = [(max(a, c), min(b, d)) for a, b in fwd for c, d in bwd
            if min(b, d) - max(a, c) >= need]
    if not both:
        return []
    # the gap's weights of what both found alone (the rounds' seeds held speech too)
    core = np.zeros(T, bool)
    for a, b in both:
        core[a:b] = True
    w = filler
    for _ in range(2):
        w = _norm(_soft_counts(sel, core, w))
    m.weights_[m.emit_index_[(GAP, 0)]] = ((1 - FILLER_SHARE - SILENCE_SHARE) * w
                                           + FILLER_SHARE * filler
                                           + SILENCE_SHARE * silence).astype(np.float32)
    out = []
    for a, b in fwd:
        for c, d in bwd:
            if min(b, d) - max(a, c) < need:
                continue
            # both found it: the frames only one of them gives it are its when the gap
            # state fits them nearly as well as the phones
            lo = min(a, c) if look._like_gap(min(a, c), max(a, c)) else max(a, c)
            hi = max(b, d) if look._like_gap(min(b, d), max(b, d)) else min(b, d)
            out.append((lo, hi))
    if out and not _distinct(m, sel, out, X[:, 0]):
        return []
    k = int(round(MARGIN_S / hop_s))
    return [(a + k, b - k) for a, b in out if b - a > 2 * k]


def snapped(spans, speech, hop_s):
    """``spans`` (frames) whose end (start) lies in the VAD's speech ``speech`` (10 ms
    flags) moved back (forward) to the end (start) of a pause within ``SNAP_S`` inside
    it: a stretch found 0.14 s into the next word ('he' after 150 s of music, devdata
    synth 6 min, seed 1) took that word's start, and the alignment put the word before
    the stretch, 151 s early."""
    on = np.asarray(speech, bool)
    if on.size == 0:
        return list(spans)
    r = hop_s / VAD_HOP_S
    k = int(round(SNAP_S / VAD_HOP_S))
    out = []
    for a, b in spans:
        va, vb = min(int(a * r), on.size - 1), min(int(b * r), on.size) - 1
        if vb >= 0 and on[vb]:
            quiet = np.flatnonzero(~on[max(0, vb - k):vb + 1])
            if quiet.size:
                b = int(round((max(0, vb - k) + quiet[-1] + 1) / r))
        if on[va]:
            quiet = np.flatnonzero(~on[va:va + k + 1])
            if quiet.size:
                a = int(round((va + quiet[0]) / r))
        out.append((a, max(a, b)))
    return out


def message(a, b, loud, before, after):
    """The warning (str) of a stretch ``a``-``b`` s without words between the words
    ``before`` and ``after`` (``loud``: the share of its frames louder than the
    recording's pauses, :func:`loud_share`)."""
    what = "silence" if loud < QUIET_SHARE else "audio that is not speech (music or noise)"
    return (f"{a:.1f}-{b:.1f} s: {b - a:.1f} s of {what} between {before!r} and {after!r} "
            "holds no word of the transcript; it was left out of the alignment "
            "(diagnostics['non_speech_s']) so that no word is stretched over it. If speech "
            "there is missing from the transcript, add it; else nothing is to be done (or "
            "cut that audio)")


#: the quality warning of a long silence between two words (vqalign.align.alignment), its
#: span: replaced by :func:`message` where a reported stretch lies inside it
_SILENCE_WARNING = re.compile(r"^words: [0-9.]+ s of silence between .* \(([0-9.]+)-([0-9.]+) s\)")


def loud_share(energy, f0, f1):
    """Share of the frames ``f0:f1`` louder than halfway (in log energy) between the
    rest's quiet frames (15th percentile) and its median: the test of
    :func:`vqalign.align.longform`'s warning of a loud stretch aligned as a pause. (Not
    the VAD's flags: in a recording whose pauses are digital silence the VAD calls the
    noise floor of a silent stretch speech.)"""
    e = np.asarray(energy, np.float64)
    rest = np.concatenate([e[:f0], e[f1:]])
    if rest.size == 0 or f1 <= f0:
        return 1.0
    lo, med = np.quantile(rest, 0.15), np.median(rest)
    return float(np.mean(e[f0:f1] > lo + 0.5 * (med - lo)))


def report(aln, p, spans, hop_s):
    """Add the warning (:func:`message`) and ``diagnostics["non_speech_s"]`` of every
    stretch ``spans`` (frames) to ``aln`` (in place; returned): its span up to the words
    before and after it as aligned, those words named, the quality warning of a long silence that holds it dropped, its
    frames' ``frame_loglik`` None where they were masked (not silence).

    Parameters
    ----------
    aln : Alignment
    p : prepared recording as given (``duration``, ``energy``)
    spans : list of (int, int)
    hop_s : float
    """
    if not spans:
        return aln
    d = aln.diagnostics
    words = aln.tiers["words"]
    ends = np.array([w.end for w in words])
    warns = d.setdefault("warnings", [])
    out = []
    fl = d.get("frame_loglik")
    for f0, f1 in spans:
        a, b = f0 * hop_s, min(f1 * hop_s, p.duration)
        i = int(np.searchsorted(ends, 0.5 * (a + b)))    # the first word after its middle
        before = words[i - 1].label if i > 0 else ""
        after = words[i].label if i < len(words) else ""
        # the span between the words as aligned (its found ends may reach into them)
        a = round(max(a, words[i - 1].end) if i > 0 else a, 3)
        b = round(min(b, words[i].start) if i < len(words) else b, 3)
        loud = loud_share(p.energy, f0, f1)
        keep = []
        for w in warns:
            m = _SILENCE_WARNING.match(w)
            if not (m and float(m.group(1)) <= a + 1.0 and float(m.group(2)) >= b - 1.0):
                keep.append(w)
        warns[:] = keep
        warns.append(message(a, b, loud, before, after))
        out.append([a, b])
        if isinstance(fl, list) and loud >= QUIET_SHARE:
            fl[f0:min(f1, len(fl))] = [None] * max(0, min(f1, len(fl)) - f0)
    d["non_speech_s"] = out
    return aln


__all__ = ["GAP", "MIN_GAP_S", "find", "message", "report", "snapped"]
