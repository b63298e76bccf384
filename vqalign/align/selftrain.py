"""Self-training on the audio being aligned: one utterance, no other data.

:func:`self_train` is the single-utterance road: the recipe's starts and EM on this
utterance (``train_one``), a decode with the boundary shift, the edge retry
(:func:`edge_retry`), the check for speech the transcript lacks
(:func:`vqalign.align.coverage.check_self_trained`) and, for English phones, the Sphinx
model's second opinion (:mod:`vqalign.align.second_opinion`). It receives the functions
it needs (training, decoding, the length check) and knows no Aligner.
"""

from __future__ import annotations

import numpy as np

from vqalign.align.coverage import check_self_trained, expected_good_words
from vqalign.align.decode import boundary_times, restore_span
from vqalign.align.recipe import single_policy, single_shift
from vqalign.align.refine import refine_prepared
from vqalign.align.utterance import with_audio
from vqalign.features.frontend import FEATURE_SR

#: when the first (last) word of a self-trained alignment lies mostly before (after) the
#: first (last) 50 ms of sound, self-train again on the audio cut this many seconds before
#: (after) that sound (None: no retry). Devdata (200 files): 23.9 -> 21.95 ms mean
#: word-boundary error; the kal voice starts 60 % of its files with 0.2 s of hum at -43 dB
#: (the noise floor is -63 dB), which a model of one utterance made its first word
EDGE_RETRY_S = 0.05


#: the loudness (share of the c0 range between its 5th and 95th percentiles) above which
#: frames count as sound for that check (as "near the noise floor" in
#: vqalign.align.confidence)
EDGE_LOUD = 0.2


def self_train(p, *, unit, hop_s, dither, train_one, decode, length_error, keep_paths=False,
               second_opinion=None):
    """Codebook, weights and self loops learned from the utterance ``p`` alone; its
    alignment on the whole recording.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    dither : float
        Dither of features made again (the edge retry, the coverage cuts).
    train_one : callable
        ``train_one(q, on_step=None) -> (model, history, selection, X, frame_off)``.
    decode : callable
        ``decode(utts, X, frame_off, selection, *, model, history, em_paths=None,
        shift=0.0) -> list``.
    length_error : callable
        ``length_error(q) -> Exception or None``.
    keep_paths : bool
        Keep every EM step's boundaries in ``diagnostics["em_paths"]``.
    second_opinion : callable, optional
        ``second_opinion(q, alignment) -> alignment`` (:func:`vqalign.align.
        second_opinion.with_reference`) when no untranscribed speech was found.

    Returns
    -------
    vqalign.align.alignment.Alignment
    """
    err = length_error(p)
    if err is not None:
        raise err
    shift = single_shift(unit)
    runs = {} if keep_paths else None  # EM paths of each flat start's model
    on_step = None
    if runs is not None:
        offs = np.array([0, p.X.shape[0]], np.int64)

        def on_step(step, m, sel):
            """The Viterbi path's boundary times after each EM step."""
            batch = m.batch([p.tokens.units])
            path, _, status, _ = m.viterbi_batch(p.X, offs, batch, sel)
            if status[0] == 0:
                runs.setdefault(id(m), []).append(
                    boundary_times(path, batch, 0, hop_s, p.duration))
    model, history, sel, X, offs = train_one(p, on_step=on_step)
    em_paths = runs.get(id(model), []) if runs is not None else None
    res = decode([p], X, offs, sel, history=history, em_paths=em_paths, model=model,
                 shift=shift)[0]
    if isinstance(res, Exception):
        raise res
    if EDGE_RETRY_S is not None and single_policy(unit):
        retry = edge_retry(p, res, hop_s=hop_s, dither=dither, train_one=train_one,
                           decode=decode, length_error=length_error, shift=shift)
        if retry is not None:
            p, res = retry
    res, gaps = check_self_trained(p, res, train_one=train_one, decode=decode, shift=shift,
                                   hop_s=hop_s, dither=dither)  # untranscribed speech
    if not gaps and second_opinion is not None:
        res = second_opinion(p, res)
    res = restore_span(res, p, gaps)
    return res if gaps else refine_prepared(res, p)


def edge_retry(p, res, *, hop_s, dither, train_one, decode, length_error, shift):
    """Self-train once more on a shorter span when the first or the last word of a
    self-trained alignment ``res`` lies mostly over the silence before the first / after
    the last stretch of VAD speech (a model of one utterance sometimes makes the
    leading silence its first word): the audio is cut ``EDGE_RETRY_S`` before / after
    that speech; the retry is kept when the sum of its word confidences is higher.

    Parameters are those of :func:`self_train` (``shift``: the boundary shift, s).

    Returns
    -------
    (Utterance, Alignment) of the retry, or None (no retry or not kept).
    """
    if p.y16 is None or not res.tiers["words"]:
        return None
    # loud frames: c0 above the near-floor level of vqalign.align.confidence (0.2 of
    # the way from its 5th to its 95th percentile), in runs of 50 ms
    lo, hi = np.percentile(p.energy, [5, 95])
    on = p.energy >= lo + EDGE_LOUD * (hi - lo)
    hop = hop_s
    run = max(1, int(round(0.05 / hop)))
    c = np.concatenate([[0], np.cumsum(on)])
    full = np.flatnonzero(c[run:] - c[:-run] == run)
    if full.size == 0:
        return None
    onset = (full[0] - 0.5) * hop
    offset = min((full[-1] + run - 0.5) * hop, p.duration)
    w0, w1 = res.tiers["words"][0], res.tiers["words"][-1]
    lead = (min(w0.end, onset) - w0.start) > 0.5 * (w0.end - w0.start)
    trail = (w1.end - max(w1.start, offset)) > 0.5 * (w1.end - w1.start)
    if not (lead or trail):
        return None
    a = int(max(0.0, onset - EDGE_RETRY_S) * FEATURE_SR) if lead else 0
    b = (int(min(p.duration, offset + EDGE_RETRY_S) * FEATURE_SR) if trail
         else p.y16.size)
    if b - a < int(0.1 * FEATURE_SR):
        return None
    p2 = with_audio(p, p.y16[a:b], hop_s, dither,
                    offset_s=p.offset_s + a / FEATURE_SR,
                    full_duration=p.full_duration if p.full_duration is not None
                    else p.duration)
    if length_error(p2) is not None:
        return None
    model, history, sel, X2, offs = train_one(p2)
    res2 = decode([p2], X2, offs, sel, history=history, model=model, shift=shift)[0]
    if isinstance(res2, Exception):
        return None
    # kept when it raises the expected number of words within 50 ms (the sum of the
    # calibrated word confidences)
    if expected_good_words(res2) <= expected_good_words(res):
        return None
    return p2, res2
