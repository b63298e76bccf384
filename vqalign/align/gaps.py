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
   (runs of ``PIECE_S`` or more closer than ``MERGE_S`` joined) are the seeds;
3. **re-estimation** -- the gap's weights become the Gaussian occupancy of the seeds'
   frames and of every run found since (``FILLER_SHARE`` of the mean column and
   ``SILENCE_SHARE`` of the silence mixed in) and the Viterbi runs again, up to
   ``ROUNDS`` times, until its runs stop changing. A gap state that models the
   recording's music fits it better than any phone; the transcript's words cannot be
   left out, so where they are spoken the gap state does not take their audio;
4. **both ways** -- the search runs forwards, then on the reversed recording (as
   :func:`vqalign.align.extent.locate`; the forward stretches among its seeds); a
   stretch is kept when both find it, their ends
   within ``AGREE_S`` (untranscribed speech at an end of the recording, or in the middle,
   is taken by the gap state in one direction only, at another place), and it lasts
   ``MIN_GAP_S`` or more (a pause of a few seconds is a pause).

:mod:`vqalign.align.extent` then locates the transcript's ends on the recording with the
stretches masked, and the stretches (less ``MARGIN_S`` at each side) are left out of the
self-training like its untranscribed ends, cut from the second opinions' windows and
reported with their time span (``diagnostics["non_speech_s"]``).

English phones only, like the extent check (:func:`vqalign.align.extent.uses_prior`).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from vqalign.align import extent as E

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
#: shares of the mean column (the extent's filler) and of the prior's silence in the
#: re-estimated gap weights (the silence: the pauses at both sides of the music are the
#: gap state's too, not the words')
FILLER_SHARE = 0.1
SILENCE_SHARE = 0.1
#: re-estimation rounds at most
ROUNDS = 5
#: the forward and the backward search agree on a stretch's ends within this (s)
AGREE_S = 2.0
#: audio kept beside the words at each side of a stretch left out (s): none. The
#: stretch's ends are those of the words beside it, within a few frames, or of the music
#: where a pause lies between, and music left beside the stretch takes the next word:
#: with 0.25 s (0.05 s), 'he' began 0.8 s (0.7 s) early, in the 0.25 s (60 ms) of music
#: left (devdata synth, 6 min, seed 1, 150 s of music)
MARGIN_S = 0.0
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

    def runs(self):
        """Runs (frames) of the gap state of ``SEED_S`` or more on the best path (parts of
        ``PIECE_S`` closer than ``MERGE_S`` joined); None when no beam keeps a path."""
        T = self.T
        for beam in BEAMS:
            path, _, status, _ = self.m.viterbi_batch(
                np.empty((T, 0), np.float32), np.array([0, T], np.int64), self.batch,
                self.sel, beam=beam, retry_exact=False)
            if status[0] == 0:
                break
        else:
            return None
        a, b = _runs(self.inner[path])
        piece, merge = (int(round(s / self.hop)) for s in (PIECE_S, MERGE_S))
        out = []
        for x, y in zip(a.tolist(), b.tolist()):
            if y - x < piece:
                continue
            if out and x - out[-1][1] <= merge:
                out[-1][1] = y
            else:
                out.append([x, y])
        return [(x, y) for x, y in out if y - x >= int(round(SEED_S / self.hop))]

    def run(self, filler, silence, seeds=()):
        """The stretches (frames) of this direction (module docstring, steps 2-3), from
        its own seeds and ``seeds``."""
        self.set_weights(0.5 * silence + 0.5 * filler)
        seeds = list(seeds) + (self.runs() or [])
        self.set_weights((1 - FILLER_SHARE) * _norm(_soft_counts(
            self.sel, np.ones(self.T, bool), filler)) + FILLER_SHARE * filler)
        seeds = sorted(set(seeds) | set(self.runs() or []))
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


def _norm(c):
    return c / max(float(c.sum()), 1e-300)


def _runs(mask):
    """(starts, stops) of the runs of True in the 1-D boolean ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return edges[0::2], edges[1::2]


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
    tol, need = int(round(AGREE_S / hop_s)), int(round(MIN_GAP_S / hop_s))
    out = []
    for a, b in fwd:
        for c, d in bwd:
            if abs(a - c) <= tol and abs(b - d) <= tol and min(b, d) - max(a, c) >= need:
                out.append((max(a, c), min(b, d)))
    k = int(round(MARGIN_S / hop_s))
    return [(a + k, b - k) for a, b in out if b - a > 2 * k]


def message(a, b, loud, before, after):
    """The warning (str) of a stretch ``a``-``b`` s without words between the words
    ``before`` and ``after`` (``loud``: the share of its frames louder than the
    recording's pauses, :func:`loud_share`)."""
    what = "silence" if loud < 0.1 else "audio that is not speech (music or noise)"
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
    stretch ``spans`` (frames) to ``aln`` (in place; returned): the words before and
    after it named, the quality warning of a long silence that holds it dropped, its
    frames' ``frame_loglik`` None (they were masked).

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
        a, b = round(f0 * hop_s, 3), round(min(f1 * hop_s, p.duration), 3)
        i = int(np.searchsorted(ends, a + 1e-6))        # the first word ending after a
        before = words[i - 1].label if i > 0 else ""
        after = words[i].label if i < len(words) else ""
        loud = loud_share(p.energy, f0, f1)
        keep = []
        for w in warns:
            m = _SILENCE_WARNING.match(w)
            if not (m and float(m.group(1)) <= a + 1.0 and float(m.group(2)) >= b - 1.0):
                keep.append(w)
        warns[:] = keep
        warns.append(message(a, b, loud, before, after))
        out.append([a, b])
        if isinstance(fl, list):
            fl[f0:min(f1, len(fl))] = [None] * max(0, min(f1, len(fl)) - f0)
    d["non_speech_s"] = out
    return aln


__all__ = ["GAP", "MIN_GAP_S", "find", "message", "report"]
