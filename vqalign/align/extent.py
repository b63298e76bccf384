"""A long recording's speech before its transcript's first word or after its last.

A transcript that starts late or ends early against the audio (minutes of speech, music
or noise that it does not cover at either end) pulls every word of a self-trained long
alignment: the flat start spreads the transcript's units over the whole recording and the
chain must end at its last frame, so with 40 s of untranscribed speech after 120 s of
transcribed speech the words drift late by up to 40 s (devdata synth, issue 26). The
self-trained model cannot see this (EM settles on the stretched path it started from),
so a model that needs no training locates the transcript first, in time linear in the
recording:

1. **locate** -- vqalign's English prior (:mod:`vqalign.align.prior`) decodes the
   transcript with a filler unit (the mean of the model's columns: a generic sound, with
   the chain's edge silences around it) at both ends, by the engine's beam Viterbi, once
   forwards and once on the reversed recording (the chain and every unit's sub-states
   reversed; a frame's emission does not depend on the direction). A beam keeps what looks
   best so far: going forwards, the words take untranscribed speech at the start before
   the path reaches the speech that is theirs (and so going backwards at the end); when
   the two passes disagree, the extent that passes the other way confirm is kept
   (:func:`locate`);
2. **mask** -- a stretch outside that extent with at least ``MIN_SPEECH_S`` of VAD speech
   (beyond ``MARGIN_S`` from the words) is replaced, for the self-training, by the
   recording's quietest frames (features, energy, VAD flags; the second opinions align
   their windows without it, :func:`unmuted`), like the minute of silence inside a
   recording that the schedule already aligns;
3. **report** -- a warning names the span and what to do (add the missing text or cut the
   audio), and ``diagnostics["untranscribed_s"]`` lists it, as one file at a time
   (:mod:`vqalign.align.coverage`).

English phones only (the prior knows ARPAbet phones): with ``unit="chars"`` or
``reference="flat"`` nothing is located or left out, and the alignment is what it was
before; a transcript with far fewer units than its recording's speech holds
(``MIN_UNITS_PER_S``) is reported by :func:`rate_warning`, without a span.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import replace

import numpy as np

from vqalign.align.windows import trimmed
from vqalign.features.constants import FEATURE_SR
from vqalign.hmm import STATUS_OK, STATUS_OVER_BUDGET
from vqalign.hmm.stats import Selection

#: the filler unit's symbol (never a phone or a letter of a transcript)
FILLER = "<untranscribed>"
#: the filler's self loop: it may last minutes
FILLER_SELF_LOOP = 0.999
#: a stretch before the first word or after the last is left out when it holds at least
#: this much VAD speech (s); shorter ones (a cough, "thank you") stay with the edge silence
MIN_SPEECH_S = 2.0
#: audio kept next to the located words (s), for the words' own edges
MARGIN_S = 0.5
#: the forward and the backward pass agree on an end within this (s)
AGREE_S = 0.5
#: passes of :func:`locate`'s search for a fixed point from each first pass
SETTLE_ROUNDS = 3
#: a checking pass runs this far (s) past the end it starts from: untranscribed speech in
#: it pulls the words as at the recording's ends (5 s: no fixed point for two synthetic
#: sentences between two left out of the transcript, tests/test_extent.py)
REFINE_PAD_S = 1.0
#: Viterbi beams of the locating passes, tried in turn (log units)
BEAMS = (-60.0, -200.0)
#: ... within this many stored back-pointers (bytes) per frame, here and in
#: :mod:`vqalign.align.gaps`: a search over it stops (no path, as a lost beam). The
#: searches that found the words or a stretch stored at most 112 per frame (devdata synth
#: 6 min + 200 s of music, seed 3: 106 at -200; with 2 min of music, silence or noise:
#: 11-46 at -60; TIMIT dev files joined, 35 min: 75-112). There, a gap state seeded on the
#: recording's mean occupancy fits the speech: -200 lost the path, and -1000 stored 5264
#: per frame (1.1 GB, 32 s; 5.7 GB at 180 minutes) to find nothing
MAX_CELLS_PER_FRAME = 256
#: the VAD's frame step (s) (vqalign.features.frontend.speech_frames)
VAD_HOP_S = 0.010
#: where the prior cannot locate the words: a transcript with fewer units per second of
#: VAD speech than this is reported (:func:`rate_warning`). About 2/3 of the slowest
#: utterance measured (per utterance, units per second of speech_frames' speech: devdata
#: synth, 200 files, phones 9.0-18.8 (p95), letters 10.2-22.5; TIMIT, 40 files, phones
#: 10.5-15.9, letters 12.9-18.9): it catches a transcript that lacks a third (the slowest
#: voices) to a half (the median) of the speech or more, not 40 s of 160 s
MIN_UNITS_PER_S = {"phones": 6.0, "chars": 7.0}


def uses_prior(unit, estimator) -> bool:
    """Whether the recording's extent is located with the English prior: English phones,
    an estimator whose ``reference`` is not "flat" and that brings no codebook."""
    return (unit == "phones" and estimator is not None
            and getattr(estimator, "reference", "auto") != "flat"
            and getattr(estimator, "codebook", None) is None)


def _locator(model, units):
    """A copy of ``model`` knowing ``units``' symbols and the filler."""
    m = copy.deepcopy(model)
    m.add_symbols(sorted({u for w in units for u in w}))
    m.add_symbols([FILLER])   # the mean of the columns: a generic sound
    cols = [m.emit_index_[(FILLER, j)] for j in range(m._n_sub(FILLER))]
    m.self_loop_[cols] = FILLER_SELF_LOOP
    return m


def _reversed_batch(batch):
    """``batch`` (of reversed words) with every unit's sub-states in reverse order."""
    ui = batch.unit_index
    e = batch.emit_ids.copy()
    starts = np.flatnonzero(np.diff(np.concatenate([[-2], ui])) != 0)
    stops = np.concatenate([starts[1:], [ui.size]])
    for a, b in zip(starts, stops):
        if ui[a] >= 0 and b - a > 1:
            e[a:b] = e[a:b][::-1].copy()
    return replace(batch, emit_ids=e)


def _flipped(sel):
    return Selection(np.ascontiguousarray(sel.idx[::-1]), np.ascontiguousarray(sel.eg[::-1]),
                     np.ascontiguousarray(sel.gmax[::-1]))


def _words_extent(m, units, sel, backwards):
    """(score, first frame, end frame) of the transcript's words on the best path of the
    chain filler + ``units`` + filler over the frames of ``sel`` (``backwards``: ``sel``
    is flipped in time, the frames returned are of the flipped order), or None when no
    beam keeps a path."""
    words = [[FILLER]] + [list(w) for w in units] + [[FILLER]]
    if backwards:
        words = [list(reversed(w)) for w in reversed(words)]
    batch = m.batch([words])
    if backwards:
        batch = _reversed_batch(batch)
    if int(batch.min_frames()[0]) > sel.idx.shape[0]:
        return None
    got = _beam_path(m, batch, sel)
    if got is None:
        return None
    u = batch.unit_index[got[0]]
    last = sum(len(w) for w in words) - 1
    f = np.flatnonzero((u >= 1) & (u < last))
    if f.size == 0:
        return None
    return got[1], int(f[0]), int(f[-1]) + 1


def _beam_path(m, batch, sel, beams=BEAMS):
    """(path, log score) of the one chain of ``batch`` over the frames of ``sel`` by the
    first of ``beams`` that keeps a path within ``MAX_CELLS_PER_FRAME`` back-pointers per
    frame; None when every beam loses it, or as soon as one passes that budget (a wider
    beam would store more). Here and in :mod:`vqalign.align.gaps`."""
    T = sel.idx.shape[0]
    for beam in beams:
        path, score, status, _ = m.viterbi_batch(
            np.empty((T, 0), np.float32), np.array([0, T], np.int64), batch, sel, beam=beam,
            retry_exact=False, max_cells=MAX_CELLS_PER_FRAME * T)
        if status[0] == STATUS_OK:
            return path, float(score[0])
        if status[0] == STATUS_OVER_BUDGET:
            return None
    return None


def _filler_score(m, sel, a, b):
    """Log-likelihood of the filler alone over frames ``a:b`` of ``sel`` (0 when too
    short for it)."""
    batch = m.batch([[[FILLER]]])
    if b - a < int(batch.min_frames()[0]):
        return 0.0
    got = _beam_path(m, batch, sel.rows(a, b))
    return -np.inf if got is None else got[1]


def locate(model, X, units, hop_s):
    """The frames ``(first, end)`` that a fitted model places the transcript's words in,
    with a filler unit free to take any audio before and after them (module docstring,
    step 1); None when no path is found.

    The forward pass is right where the audio before the words holds no untranscribed
    speech, the backward pass where the audio after them holds none. When the two
    disagree, each is checked from the end it found: a pass the other way from
    ``REFINE_PAD_S`` past it must find the same anchored end again (a fixed point; else
    the search goes on from what it found, ``SETTLE_ROUNDS`` passes at most). Of the fixed
    points, the likeliest as one path of the whole recording (the words' pass and the
    filler alone outside it) is kept; with none, None. (The model's likelihood alone
    does not choose: on TIMIT files joined to 35 min with the last or first 3 min left
    out of the transcript, the prior scores the words stretched over the whole recording
    above the filler taking those 3 min, while the pass that runs out of words finds the
    end within 0.3 s. The prior was trained at a 5 ms hop and decodes the 10 ms frames
    with its own durations: scaled to 10 ms, the passes compressed the words of the
    both-ends case of tests/test_extent.py and settled 12 s off.)

    Parameters
    ----------
    model : vqalign.hmm.TiedMixtureHMM
        Fitted (vqalign's English prior's).
    X : ndarray, shape (T, D) float32
        The recording's features.
    units : list of list of str
        The transcript's units per word.
    hop_s : float

    Returns
    -------
    (int, int) or None
    """
    m = _locator(model, units)
    T = X.shape[0]
    sel = m.select(X)
    pad = int(round(REFINE_PAD_S / hop_s))

    @functools.cache
    def forward(a):        # words on frames a:T: (whole-recording score, first, end)
        r = _words_extent(m, units, sel.rows(a, T), False)
        return None if r is None else (r[0] + _filler_score(m, sel, 0, a), a + r[1], a + r[2])

    @functools.cache
    def backward(b):       # words on frames 0:b, the pass run on them reversed
        r = _words_extent(m, units, _flipped(sel.rows(0, b)), True)
        return None if r is None else (r[0] + _filler_score(m, sel, b, T), b - r[2], b - r[1])

    def settle(c, was_forward):
        # a pass the other way from past the end c found; a fixed point when it finds c's
        # anchored end again (within AGREE_S), else go on from what it found
        for _ in range(SETTLE_ROUNDS):
            r = backward(min(T, c[2] + pad)) if was_forward else forward(max(0, c[1] - pad))
            if r is None:
                return None
            if (abs(r[1] - c[1]) if was_forward else abs(r[2] - c[2])) <= tol:
                return r[0], c[1], c[2]
            c, was_forward = r, not was_forward
        return None

    fwd, bwd = forward(0), backward(T)
    if fwd is None or bwd is None:
        return None
    tol = int(round(AGREE_S / hop_s))
    if abs(fwd[1] - bwd[1]) <= tol and abs(fwd[2] - bwd[2]) <= tol:
        return min(fwd[1], bwd[1]), max(fwd[2], bwd[2])
    found = [c for c in (settle(fwd, True), settle(bwd, False)) if c is not None]
    if not found:
        return None
    best = max(found, key=lambda c: c[0])
    return best[1], best[2]


def edge_spans(p, hop_s, extent, speech):
    """Frame spans ``[(f0, f1)]`` of the recording ``p`` before and after ``extent``
    (less ``MARGIN_S``) that hold at least ``MIN_SPEECH_S`` of VAD speech.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
    hop_s : float
    extent : (int, int)
        The words' first and end frame (:func:`locate`).
    speech : ndarray of bool, shape (n_vad,)
        The VAD's 10 ms speech flags.

    Returns
    -------
    list of (int, int)
    """
    T = p.X.shape[0]
    margin = int(round(MARGIN_S / hop_s))
    out = []
    for f0, f1 in ((0, extent[0] - margin), (extent[1] + margin, T)):
        if f1 - f0 <= 0:
            continue
        v0, v1 = (int(round(f * hop_s / VAD_HOP_S)) for f in (f0, f1))
        if np.count_nonzero(speech[v0:v1]) * VAD_HOP_S >= MIN_SPEECH_S:
            out.append((int(f0), int(f1)))
    return out


def masked(p, spans, hop_s, speech):
    """``p`` with the frames of ``spans`` replaced by its quietest frames (features and
    energy, taken in turn) and its VAD flags off there; the arrays are copied, ``p`` is
    left as it is."""
    X, energy, on = p.X.copy(), p.energy.copy(), np.asarray(speech, bool).copy()
    out = np.zeros(X.shape[0], bool)
    for f0, f1 in spans:
        out[f0:f1] = True
    inside = np.flatnonzero(~out)
    quiet = inside[np.argsort(energy[inside], kind="stable")[:max(1, inside.size // 20)]]
    quiet.sort()
    for f0, f1 in spans:
        take = quiet[np.arange(f1 - f0) % quiet.size]
        X[f0:f1] = X[take]
        energy[f0:f1] = energy[take]
        v0, v1 = (int(round(f * hop_s / VAD_HOP_S)) for f in (f0, f1))
        on[v0:v1] = False
    return replace(p, X=X, energy=energy, speech=on)


def unmuted(y, a, b, hop_s, spans):
    """The part of the window ``y`` (the recording's frames ``a:b``, its samples at 16 kHz
    from frame ``a`` on) outside the left-out frame ``spans`` at its start or end:
    ``(samples, first frame, end frame)`` (``y`` itself when no span touches it). The
    second opinions align it without the untranscribed audio (a 3-minute stretch in a
    window made the Sphinx model's window 3 minutes long)."""
    a2, b2 = trimmed(a, b, spans)
    if (a2, b2) == (a, b):
        return y, a, b
    s0, s1 = (int(round((f - a) * hop_s * FEATURE_SR)) for f in (a2, b2))
    return y[s0:s1], a2, b2


def message(a, b, speech_s, head, word):
    """The warning (str) of untranscribed audio at ``a``-``b`` s."""
    where = (f"before the transcript's first word ({word!r})" if head
             else f"after the transcript's last word ({word!r})")
    return (f"{a:.1f}-{b:.1f} s: {speech_s:.1f} s of speech (or other sound) {where} that "
            "the transcript does not cover; it was left out of the alignment "
            "(diagnostics['untranscribed_s']) so that no word is stretched over it: add "
            "the missing text to the transcript, or cut that audio")


def find(p, *, unit, hop_s, estimator, speech, load, middle=None):
    """The spans of ``p`` to leave out of a self-trained long alignment: ``[(f0, f1)]``
    frames in time order (empty when nothing is found or the prior cannot serve,
    :func:`uses_prior`). A span from frame 0 is untranscribed audio before the first word,
    one to the last frame after the last word; any other is one of ``middle``'s.

    ``load``: :meth:`vqalign.align.Aligner.load` (the prior is an Aligner file).
    ``middle``: ``middle(model, X, units, hop_s) -> [(f0, f1)]``, stretches inside the
    recording to leave out (:func:`vqalign.align.gaps.find`): masked (:func:`masked`)
    before the words' extent is located (minutes of music between two sentences pulled
    the located start a minute early), and kept where they lie inside that extent."""
    if not uses_prior(unit, estimator):
        return []
    from vqalign.align import prior  # noqa: PLC0415
    model = prior.prior_aligner(load).model_
    if p.X.ndim != 2 or p.X.shape[1] != model.gmm_.means_.shape[1]:
        return []   # features of another kind than the prior's
    mid = [] if middle is None else middle(model, p.X, p.tokens.units, hop_s)
    q = masked(p, mid, hop_s, speech) if mid else p
    ext = locate(model, q.X, p.tokens.units, hop_s)
    if ext is None:
        return list(mid)
    inside = [(max(a, ext[0]), min(b, ext[1])) for a, b in mid if ext[0] < (a + b) // 2 < ext[1]]
    return sorted(edge_spans(p, hop_s, ext, q.speech) + inside)


def report(aln, p, spans, hop_s, speech):
    """Add the warning and ``diagnostics["untranscribed_s"]`` of every span to ``aln``
    (in place; returned)."""
    if not spans:
        return aln
    d = aln.diagnostics
    out = []
    for f0, f1 in spans:
        head = f0 == 0
        a, b = round(f0 * hop_s, 3), round(min(f1 * hop_s, p.duration), 3)
        v0, v1 = (int(round(f * hop_s / VAD_HOP_S)) for f in (f0, f1))
        sp = float(np.count_nonzero(speech[v0:v1])) * VAD_HOP_S
        word = p.tokens.words[0 if head else -1]
        d.setdefault("warnings", []).append(message(a, b, sp, head, word))
        out.append([a, b])
    d["untranscribed_s"] = out
    return aln



def rate_warning(p, speech, unit):
    """A warning (str) when the transcript of ``p`` has fewer than ``MIN_UNITS_PER_S``
    units per second of the VAD's speech ``speech`` (10 ms flags): much of the speech is
    then probably not in it; else None."""
    speech_s = float(np.count_nonzero(speech)) * VAD_HOP_S
    n = sum(len(w) for w in p.tokens.units)
    least = MIN_UNITS_PER_S.get(unit, MIN_UNITS_PER_S["chars"])
    if speech_s <= 0 or n / speech_s >= least:
        return None
    what = "phones" if unit == "phones" else "letters"
    return (f"the transcript has {n} {what} for {speech_s:.0f} s of speech ({n / speech_s:.1f} "
            f"a second; speech has over {least:.0f}): much of the recording's speech is "
            "probably not in the transcript (its start or end missing?), and the words are "
            "stretched over it; add the missing text, or cut the audio it does not cover "
            "(with unit='phones' the English prior locates such speech at the ends)")
