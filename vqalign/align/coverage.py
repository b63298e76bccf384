"""Speech the transcript does not cover: find it after alignment, align around it.

A transcript that lacks a sentence of the audio makes a forced aligner stretch the words
it has over the untranscribed speech: the words after the gap drift and every one of them
is misplaced. This module looks for such spans after the first alignment and, when one is
found, aligns again with the span cut out of the audio, so that the words on either side
land on their own speech; the span is a gap in the tiers, listed in
``diagnostics["untranscribed_s"]`` and named by a warning with its time span.

The test works on stretches of speech (energy VAD, :func:`vqalign.features.frontend.speech_frames`,
runs separated by pauses over ``ISLAND_PAUSE_S``) and on the calibrated word confidences
(P(both boundaries within 50 ms)):

1. candidates, from the first alignment at no cost: stretches of at least ``MIN_SPAN_S``
   whose words average a confidence below ``LOW_CONF``, and whose removal leaves the
   transcript ``MIN_S_PER_PHONE_LEFT`` of speech per phone; each one alone and each with
   the next when the pause between them is under ``JOIN_PAUSE_S``, the least confident
   first;
2. a check of each (up to ``MAX_TRIALS`` per utterance): the utterance is aligned again
   without it (self-trained again, or decoded again with the fitted model). Cutting speech
   the transcript covers squeezes its words into the rest and their confidence falls;
   cutting speech it lacks lets the words after it fall back onto their own speech. The
   best cut is taken when it raises the expected number of words within 50 ms (the sum of
   the word confidences) by ``MIN_GAIN_WORDS`` and by ``MIN_GAIN_SHARE`` of the words
   (the checks stop at a cut whose words reach a mean confidence of ``GOOD_CONF``);
3. a span taken grows by the stretch next to it (a sentence with a pause inside) when
   that adds ``MIN_GROW_WORDS`` more; a second span is looked for the same way
   (``MAX_SPANS``);
4. stretches the final alignment gives to silence (words over less than ``SILENCE_COVER``
   of them) join the span next to them, or are reported alone from ``MIN_SPAN_S``.

Nothing is re-aligned when there is no candidate (measured: 3 of devdata's 200 files have
one, 4 checks in all, none taken).
"""

from __future__ import annotations

import math

import numpy as np

from vqalign.align.decode import add_warnings
from vqalign.align.utterance import frames, with_audio
from vqalign.features.frontend import FEATURE_SR, speech_frames, speech_stretches

#: shortest stretch of speech (s) reported as missing from the transcript
MIN_SPAN_S = 0.8
#: a stretch is a candidate when the words aligned over it average below this confidence
LOW_CONF = 0.5
#: share of a stretch's duration covered by words below which it counts as given to silence
SILENCE_COVER = 0.3
#: speech (VAD, s) per transcript phone that must be left when a stretch is cut out
MIN_S_PER_PHONE_LEFT = 0.04
#: re-alignments tried per utterance (each one a self-training or a decode)
MAX_TRIALS = 8
#: a cut must raise the expected number of words within 50 ms (the sum of the word
#: confidences) by this many words and by this share of the transcript's words
MIN_GAIN_WORDS = 2.0
MIN_GAIN_SHARE = 0.05
#: audio kept before / after the VAD stretch when it is cut (weak edges of its sounds)
CUT_PAD_S = (0.02, 0.03)
#: spans found per utterance at most (each one another round of checks)
MAX_SPANS = 2


def expected_good_words(aln) -> float:
    """Expected number of words within 50 ms: the sum of their confidences (what the
    coverage cuts and the aligner's edge retry are judged by).

    Parameters
    ----------
    aln : Alignment

    Returns
    -------
    float
    """
    c = np.array([w.confidence for w in aln.words], float)
    return float(np.nansum(c))


def _mean_conf(aln) -> float:
    c = np.array([w.confidence for w in aln.words], float)
    c = c[np.isfinite(c)]
    return float(c.mean()) if c.size else math.nan


def candidates(aln, on, n_phones, *, hop_vad=0.010, min_span_s=MIN_SPAN_S, low_conf=LOW_CONF):
    """Stretches of VAD speech that the first alignment ``aln`` probably gives to words
    that are not spoken there: [(start_s, end_s, words over it, silent)], in time order.

    ``on``: (n,) bool VAD frames (10 ms) of the audio the alignment's times refer to;
    ``n_phones``: phones of the transcript. ``silent`` is True for a stretch that no word
    covers (the aligner gave it to silence).

    Parameters
    ----------
    aln : Alignment
    on : ndarray, shape (n,), bool
    n_phones : int
    hop_vad : float
        Hop of ``on`` (s).
    min_span_s, low_conf : float
        The shortest stretch and the confidence below which it is a candidate.

    Returns
    -------
    list of (float, float, list of str, bool)
    """
    speech = float(np.count_nonzero(on)) * hop_vad
    words = aln.words
    ws = np.array([w.start for w in words], float)
    we = np.array([w.end for w in words], float)
    conf = np.array([w.confidence for w in words], float)
    out = []
    for a, b in speech_stretches(on, hop_s=hop_vad):
        if b - a < min_span_s:
            continue
        inside = np.count_nonzero(on[int(round(a / hop_vad)):int(round(b / hop_vad))]) * hop_vad
        if n_phones and (speech - inside) < MIN_S_PER_PHONE_LEFT * n_phones:
            continue  # the rest of the speech could not hold the transcript
        ov = np.clip(np.minimum(we, b) - np.maximum(ws, a), 0.0, None)
        over = np.flatnonzero(ov > 0)
        covered = float(ov.sum())
        if covered < SILENCE_COVER * (b - a):
            out.append((a, b, [words[i].label for i in over], True))
            continue
        c = conf[over]
        c = c[np.isfinite(c)]
        if c.size and float(np.average(c, weights=ov[over][np.isfinite(conf[over])])) < low_conf:
            out.append((a, b, [words[i].label for i in over], False))
    return out


def _cut_mask(n, spans_samples):
    keep = np.ones(n, bool)
    for s, e in spans_samples:
        keep[s:e] = False
    return keep


class _TimeMap:
    """Times of audio with sample ranges cut out -> times of the whole audio."""

    def __init__(self, cuts, sr):
        cuts = sorted(cuts)
        self.orig = [(s / sr, e / sr) for s, e in cuts]
        removed = np.cumsum([0.0] + [e - s for s, e in self.orig])
        # a cut's place in the shortened audio
        self.at = np.array([s - removed[i] for i, (s, _) in enumerate(self.orig)])
        self.shift = removed[1:]

    def __call__(self, t, side):
        """``side`` "start": a time at a cut point goes after the cut; "end": before."""
        t = np.asarray(t, float)
        k = (np.searchsorted(self.at, t, side="right") if side == "start"
             else np.searchsorted(self.at, t, side="left"))
        return t + np.concatenate([[0.0], self.shift])[k]


def _map_back(aln, tm: _TimeMap, duration):
    """Move the segments of an alignment of the shortened audio onto the whole audio; a
    segment across a cut point keeps its larger side."""
    for name, segs in aln.tiers.items():
        kept = []
        for seg in segs:
            a = float(tm(seg.start, "start"))
            b = float(tm(seg.end, "end"))
            for (cs, ce) in tm.orig:
                if a < cs < b or a < ce < b or (a >= cs and b <= ce):
                    if (cs - a) >= (b - ce):
                        b = min(b, cs)
                    else:
                        a = max(a, ce)
            seg.start, seg.end = min(a, duration), min(max(a, b), duration)
            kept.append(seg)
        aln.tiers[name] = kept
    aln.duration = float(duration)


def _cut_prepared(p, cuts, hop_s, dither):
    """``p`` with the sample ranges ``cuts`` of its 16 kHz audio left out (features made
    again from the shortened audio)."""
    keep = _cut_mask(p.y16.size, cuts)
    return with_audio(p, np.ascontiguousarray(p.y16[keep]), hop_s, dither,
                      offset_s=0.0, full_duration=None)


def message(a, b, words, silent):
    """The warning (str) for untranscribed speech at ``a``-``b`` s: ``words`` the first
    alignment put over it, ``silent`` when it gave it to silence."""
    if silent:
        how = "the aligner gave it to silence"
    elif words:
        shown = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
        how = f"the first alignment stretched the words {shown!r} over it"
    else:
        how = "no word of the transcript is spoken there"
    return (f"speech at {a:.2f}-{b:.2f} s is not in the transcript ({how}); it was left out "
            f"of the alignment (a gap in the tiers, diagnostics['untranscribed_s']): the "
            f"transcript probably lacks the words spoken at {a:.2f}-{b:.2f} s; add them or cut "
            "that audio")


def cover(p, aln, realign, *, hop_s, dither, extra=None):
    """Check the alignment ``aln`` of the prepared utterance ``p`` (times local to
    ``p.y16``) for speech the transcript lacks.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
    aln : Alignment or Exception
        Its first alignment.
    realign : callable
        ``realign(q)`` aligns a prepared utterance ``q`` the way ``aln`` was made (an
        Alignment or an exception).
    hop_s : float
        Frame hop (s) of the features.
    dither : float
        Dither of the features made again from shortened audio.
    extra : list of str, optional
        Warnings the caller adds to every alignment of ``p``.

    Returns
    -------
    (alignment, spans)
        ``spans`` lists (start_s, end_s, warning) in the recording's times; with none
        found ``aln`` comes back unchanged and nothing was re-aligned unless a candidate
        was checked.
    """
    if (isinstance(aln, Exception) or p.y16 is None or p.tokens.unit != "phones"
            or not aln.words):
        return aln, []
    on = speech_frames(p.y16)
    stretches = [(float(a), float(b)) for a, b in speech_stretches(on)]
    n_ph = sum(len(u) for u in p.tokens.units)
    n = p.y16.size
    state = {"best": aln, "tm": None, "trials": 0}
    spans: list = []

    def left(sp):
        """VAD frames outside the spans ``sp``."""
        out = on.copy()
        for a, b in sp:
            out[int(round(a / 0.010)):int(round(b / 0.010))] = False
        return out

    tried: dict = {}

    def attempt(sp):
        """Align without the spans ``sp``: (alignment in ``p``'s times, time map) or None
        (each set of spans aligned once)."""
        key = tuple(sorted(sp))
        if key not in tried:
            tried[key] = _attempt(sp)
        return tried[key]

    def _attempt(sp):
        if n_ph and float(np.count_nonzero(left(sp))) * 0.010 < MIN_S_PER_PHONE_LEFT * n_ph:
            return None
        cuts = sorted((max(0, int((a - CUT_PAD_S[0]) * FEATURE_SR)),
                       min(n, int((b + CUT_PAD_S[1]) * FEATURE_SR))) for a, b in sp)
        state["trials"] += 1
        try:
            res = realign(_cut_prepared(p, cuts, hop_s, dither))
        except Exception:  # noqa: BLE001 - a failed check is a rejected candidate
            return None
        if isinstance(res, Exception) or not res.words:
            return None
        tm = _TimeMap(cuts, FEATURE_SR)
        _map_back(res, tm, p.duration)
        return res, tm

    n_words = len(aln.words)

    def better(options, gain):
        """The best of the span sets ``options`` whose alignment raises the expected
        number of words within 50 ms by ``gain`` (words; and by ``gain / 40`` of the
        transcript's words): (spans, alignment, map) or None."""
        base = expected_good_words(state["best"])
        gain = max(gain, gain * MIN_GAIN_SHARE / MIN_GAIN_WORDS * n_words)
        pick = None
        for sp in options:
            if state["trials"] >= MAX_TRIALS:
                break
            got = attempt(sp)
            if got is None:
                continue
            c = expected_good_words(got[0])
            if c >= base + gain and (pick is None or c > pick[0]):
                pick = (c, sp, *got)
                if _mean_conf(got[0]) >= GOOD_CONF:
                    break  # as good as alignments get: the rest need not be tried
        return None if pick is None else pick[1:]

    while len(spans) < MAX_SPANS and state["trials"] < MAX_TRIALS:
        cand = [(a, b) for a, b, _, silent in _trials(candidates(state["best"], left(spans),
                                                                 n_ph)) if not silent]
        cand.sort(key=lambda c: _span_conf(state["best"], c))  # the likeliest first
        got = better([spans + [c] for c in cand if not _overlaps(c, spans)], MIN_GAIN_WORDS)
        if got is None:
            break
        spans, state["best"], state["tm"] = got
        # grow the span found by the stretches next to it (a sentence with pauses in it)
        while state["trials"] < MAX_TRIALS:
            last = spans[-1]
            nb = _neighbours(last, stretches, spans)
            got = better([spans[:-1] + [(min(last[0], a), max(last[1], b))] for a, b in nb],
                         MIN_GROW_WORDS)
            if got is None:
                break
            spans, state["best"], state["tm"] = got
    best, tm = state["best"], state["tm"]
    # stretches of speech the final alignment gives to silence: joined to a span next to
    # them, or reported alone from MIN_SPAN_S
    silent = [(a, b) for a, b, _, sil in candidates(best, left(spans), 0, min_span_s=0.0,
                                                    low_conf=-1.0) if sil]
    found = _merge(spans, silent, best.words)
    if not found:
        return aln, []
    d = best.diagnostics
    off = float(p.offset_s)
    out = []
    for a, b in found:
        w = [x.label for x in aln.words if min(x.end, b) - max(x.start, a) > 0]
        cover_s = sum(max(0.0, min(x.end, b) - max(x.start, a)) for x in aln.words)
        out.append((a + off, b + off, message(a + off, b + off, w,
                                              cover_s < SILENCE_COVER * (b - a))))
    d["untranscribed_s"] = [[round(a, 3), round(b, 3)] for a, b, _ in out]
    if best is not aln:
        d["first_pass_mean_confidence"] = round(_mean_conf(aln), 4)
        if d.get("frame_loglik"):
            d["frame_loglik"] = _frames_back(d["frame_loglik"], tm, hop_s,
                                             p.X.shape[0])
        if d.get("em_paths"):
            d["em_paths"] = [[round(float(tm(t, "start")), 4) for t in step]
                             for step in d["em_paths"]]
    d["warnings"] = list(p.warnings) + list(extra or []) + [m for _, _, m in out]
    add_warnings(best)
    return best, out


#: a span found grows by a stretch next to it when that adds this many expected words
MIN_GROW_WORDS = 1.0
#: mean word confidence of a checked alignment after which no other candidate is tried
GOOD_CONF = 0.8


def _span_conf(aln, span):
    """Mean confidence of the words over ``span``, weighted by their overlap with it."""
    a, b = span
    w = [(min(x.end, b) - max(x.start, a), x.confidence) for x in aln.words]
    w = [(o, c) for o, c in w if o > 0 and math.isfinite(c)]
    return sum(o * c for o, c in w) / sum(o for o, _ in w) if w else 0.0


def _overlaps(c, spans):
    return any(c[0] < b and a < c[1] for a, b in spans)


def _neighbours(span, stretches, spans):
    """The stretches just before and just after ``span`` (pause under JOIN_PAUSE_S) that
    no span holds."""
    a, b = span
    before = [s for s in stretches if s[1] <= a + 1e-9 and a - s[1] < JOIN_PAUSE_S
              and not _overlaps(s, spans)]
    after = [s for s in stretches if s[0] >= b - 1e-9 and s[0] - b < JOIN_PAUSE_S
             and not _overlaps(s, spans)]
    return before[-1:] + after[:1]


#: candidate stretches closer than this (s) are also tried together (a sentence with a pause)
JOIN_PAUSE_S = 0.75


def _trials(cands):
    """Each candidate, and each with the next one when the pause between them is short,
    in time order."""
    out = []
    for i, c in enumerate(cands):
        out.append(c)
        if i + 1 < len(cands) and cands[i + 1][0] - c[1] < JOIN_PAUSE_S:
            n = cands[i + 1]
            out.append((c[0], n[1], c[2] + [w for w in n[2] if w not in c[2][-1:]],
                        c[3] and n[3]))
    return out


def _merge(spans, silent, words):
    """Spans and silent stretches, sorted and joined where no word starts between them;
    a silent stretch joined to no span is kept from MIN_SPAN_S."""
    items = sorted([(a, b, True) for a, b in spans] + [(a, b, False) for a, b in silent])
    if not items:
        return []
    starts = np.array([w.start for w in words], float)
    out = [list(items[0])]
    for a, b, real in items[1:]:
        prev = out[-1]
        if not np.any((starts >= prev[1] - 1e-9) & (starts < a)):
            prev[1] = max(prev[1], b)
            prev[2] = prev[2] or real
        else:
            out.append([a, b, real])
    return [(a, b) for a, b, real in out if real or b - a >= MIN_SPAN_S]


def _frames_back(fl, tm, hop, n_frames):
    """Per-frame values of the shortened audio placed on the whole audio's frames (None
    in the cut frames)."""
    fl = np.asarray(fl, float)
    t = np.arange(n_frames) * hop
    inside = np.zeros(n_frames, bool)
    for s, e in tm.orig:
        inside |= (t >= s) & (t < e)
    shift = np.zeros(n_frames)
    for (_, e), r in zip(tm.orig, tm.shift):
        shift[t >= e] = r
    idx = np.clip(np.round((t - shift) / hop).astype(int), 0, fl.size - 1)
    out = fl[idx]
    out[inside] = np.nan
    return [None if not math.isfinite(v) else float(v) for v in out]


def check_self_trained(p, aln, *, train_one, decode, shift, hop_s, dither):
    """:func:`cover` for a model self-trained on ``p``: each check self-trains again on
    the shortened audio.

    Parameters
    ----------
    p, aln
        As :func:`cover`.
    train_one : callable
        ``train_one(q) -> (model, history, selection, X, frame_off)``.
    decode : callable
        ``decode([q], X, frame_off, selection, history=..., model=..., shift=...)``.
    shift : float
        The boundary shift of the first alignment (s).
    hop_s, dither : float
        As :func:`cover`.

    Returns
    -------
    (alignment, warnings to keep)
    """
    def again(q):
        model, history, sel, X, offs = train_one(q)
        # boundaries shifted as the first alignment's
        return decode([q], X, offs, sel, history=history, model=model, shift=shift)[0]
    res, spans = cover(p, aln, again, hop_s=hop_s, dither=dither)
    return res, [m for *_, m in spans]


def check_fitted(p, aln, extra=None, *, decode, select, hop_s, dither):
    """:func:`cover` for a fitted model: each check is one decode of the shortened audio.

    Parameters
    ----------
    p, aln, extra
        As :func:`cover`.
    decode : callable
        ``decode([q], X, frame_off, selection, history=None, warn_extra=extra)`` with the
        fitted model.
    select : callable
        ``select(X)``: the fitted model's Gaussian selection of frames ``X``.
    hop_s, dither : float
        As :func:`cover`.

    Returns
    -------
    (alignment, warnings to keep)
    """
    def again(q):
        X, _, offs = frames([q])
        return decode([q], X, offs, select(X), history=None, warn_extra=extra)[0]
    res, spans = cover(p, aln, again, hop_s=hop_s, dither=dither, extra=extra)
    return res, [m for *_, m in spans]
