"""Decoding: a Viterbi path -> segments -> an :class:`~vqalign.align.alignment.Alignment`.

:func:`decode` runs the engine's batched Viterbi over prepared utterances, turns each
path into unit and word segments (:func:`path_segments`), attaches calibrated
confidences (:mod:`vqalign.align.confidence`) and the quality warnings. The tiers of an
utterance whose edges were left out are moved back onto the whole recording by
:func:`restore_span`.
"""

from __future__ import annotations

import numpy as np

from vqalign.align.alignment import Alignment, Segment, add_quality_warnings
from vqalign.align.confidence import SILENT_CAP, alignment_confidence, attach
from vqalign.align.recipe import SIL
from vqalign.align.utterance import frames
from vqalign.exceptions import AlignmentError


def decode(utts, X, offs, sel, model, *, unit, hop_s, mode, history=None, em_paths=None,
           warn_extra=None, shift=0.0, confidence=True):
    """Viterbi, segments, confidences and warnings of prepared utterances.

    Parameters
    ----------
    utts : list of vqalign.align.utterance.Utterance
    X : ndarray, shape (N, 39), float32
        Their frames end to end.
    offs : ndarray, shape (U + 1,), int64
        Frame offsets of the utterances.
    sel : vqalign.hmm.train.Selection
        Each frame's Gaussians under ``model``.
    model : vqalign.hmm.TiedMixtureHMM
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    mode : {"corpus", "self"}
        Which confidence model (a corpus-trained model, or one self-trained on the audio).
    history : vqalign.history.History, optional
        Kept in ``diagnostics["em_history"]``.
    em_paths : list, optional
        Every EM step's boundaries (``diagnostics["em_paths"]``).
    warn_extra : list of str, optional
        Warnings added to every utterance's own.
    shift : float
        Seconds every inner boundary is moved (before the warnings quote any time).
    confidence : bool
        False: no calibrated confidences (a segment's is the mean frame ratio), no
        ``diagnostics["confidence"]`` and no warnings from them (for a caller that keeps
        only the segments' times and labels: the same either way).

    Returns
    -------
    list
        Per utterance an Alignment, or an AlignmentError when no path was found.
    """
    hop = hop_s
    batch = model.batch([p.tokens.units for p in utts])
    path, score, status, _ = model.viterbi_batch(X, offs, batch, sel)
    cols = batch.emit_ids[batch.state_off[np.repeat(np.arange(len(utts)),
                                                    np.diff(offs))] + path]
    fconf, own = model.frame_ratio(sel, cols)
    frame_ll = np.log(np.maximum(own, 1e-300)) + sel.gmax
    confs = (alignment_confidence(model, batch, path, offs, sel, fconf,
                                  [p.energy for p in utts], X, hop, mode) if confidence
             else [None] * len(utts))
    out = []
    sil_tier = "phones" if unit == "phones" else "chars"
    for u, p in enumerate(utts):
        a, b = offs[u], offs[u + 1]
        if status[u] != 0:
            out.append(AlignmentError(
                f"no alignment path for {p.name or 'the utterance'}: the transcript "
                f"({sum(len(w) for w in p.tokens.units)} units) cannot be fitted to "
                f"{(b - a) * hop:.2f} s of audio"))
            continue
        units, words = path_segments(path[a:b], batch, u, hop, p.duration, fconf[a:b],
                                     conf=confs[u], shift=shift)
        seg_units = [Segment(s, e, lab, c) for s, e, lab, c in units]
        seg_words = [Segment(s, e, p.tokens.words[wi], c) for s, e, wi, c in words]
        wlist = list(p.warnings)
        if warn_extra:
            wlist.extend(warn_extra)
        diag = {
            "hop_s": hop,
            "frame_loglik": np.round(frame_ll[a:b], 3).tolist(),
            "path_score": float(score[u]),
            "warnings": wlist,
            "oov": sorted(set(p.tokens.oov)),
            "unit": unit,
            "n_states": int(batch.state_off[u + 1] - batch.state_off[u]),
            "model": "tied-mixture HMM",
        }
        if history is not None:
            diag["em_history"] = history.to_dict()
        if em_paths is not None:
            diag["em_paths"] = em_paths
        if p.noise_db is not None:
            diag["noise_only_db"] = round(p.noise_db, 2)
        aln = Alignment(tiers={"words": seg_words, sil_tier: seg_units}, audio=p.name,
                        sample_rate=int(p.sr), duration=float(p.duration), diagnostics=diag)
        if confidence:
            attach(aln, confs[u])
            add_warnings(aln)
        out.append(aln)
    return out


def path_segments(path_u, batch, u: int, hop_s: float, duration: float, frame_conf=None,
                  conf=None, shift=0.0):
    """Units and words of one utterance from its local state path (vectorised).

    Returns (units [(start_s, end_s, label, conf)], words [(start_s, end_s, word_index,
    conf)]); conf is ``conf["units"]`` / ``conf["words"]`` (calibrated probabilities from
    :func:`vqalign.align.confidence.alignment_confidence`, one per unit / word in order)
    when given, else the mean of ``frame_conf`` over the segment's frames (NaN without
    either). A boundary between frames t-1 and t lies at (t - 0.5) * hop (frames are
    centred); the first frame starts at 0 and the last ends at ``duration``.

    Parameters
    ----------
    path_u : ndarray, shape (T,)
        The utterance's Viterbi path (local state indices).
    batch : vqalign.hmm.topology.Batch
        The batch the path belongs to.
    u : int
        The utterance's index in ``batch``.
    hop_s, duration : float
        Frame hop and the utterance's duration (s).
    frame_conf : ndarray, shape (T,), optional
    conf : dict, optional
    shift : float
        Seconds every inner boundary is moved.

    Returns
    -------
    units, words : list of tuple
    """
    calibrated = conf
    ids, starts, ends = batch.segments(path_u, u)
    T = len(path_u)
    if starts.size == 0:
        return [], []

    def to_s(f):
        t = np.clip((f - 0.5) * hop_s + shift, 0.0, duration)
        t[f <= 0] = 0.0
        t[f >= T] = duration
        return t

    ts, te = to_s(starts), to_s(ends)
    if frame_conf is not None:
        csum = np.concatenate([[0.0], np.cumsum(frame_conf, dtype=np.float64)])
        fsum = csum[ends] - csum[starts]
        conf = fsum / (ends - starts)
    else:
        fsum = np.full(starts.size, np.nan)
        conf = fsum
    units = batch.units[u]
    labels = [units[i][1] for i in ids]
    out_units = list(zip(ts.tolist(), te.tolist(), labels, conf.tolist()))
    widx = np.array([units[i][0] for i in ids])
    wchange = np.flatnonzero(widx[1:] != widx[:-1]) + 1
    wa = np.concatenate([[0], wchange])
    wb = np.concatenate([wchange, [widx.size]]) - 1
    if frame_conf is not None:
        nfr = np.add.reduceat(ends - starts, wa)
        wconf = (np.add.reduceat(fsum, wa) / nfr).tolist()
    else:
        wconf = [float("nan")] * wa.size
    if calibrated is not None:
        out_units = [(a, b, lab, float(calibrated["units"][i]))
                     for (a, b, lab, _), i in zip(out_units, ids.tolist())]
        wconf = [float(calibrated["words"][w]) for w in widx[wa].tolist()]
    out_words = list(zip(ts[wa].tolist(), te[wb].tolist(), widx[wa].tolist(), wconf))
    return out_units, out_words



def boundary_times(path_u, batch, u, hop_s, duration):
    """Unit boundary times (s) of one Viterbi path: every unit start and the last end.

    Parameters are those of :func:`path_segments`.

    Returns
    -------
    list of float
        Rounded to 0.1 ms.
    """
    units, _ = path_segments(path_u, batch, u, hop_s, duration)
    times = [s for s, _, _, _ in units]
    if units:
        times.append(units[-1][1])
    return [round(t, 4) for t in times]


def restore_span(aln, p, extra=None):
    """An alignment of the speech span of the utterance ``p`` moved back onto the whole
    recording: times shifted by ``p.offset_s``, duration the recording's, warnings re-made
    at the shifted times (and the EM paths shifted). Exceptions and untrimmed ones pass.

    Parameters
    ----------
    aln : Alignment or Exception
    p : vqalign.align.utterance.Utterance
    extra : list of str, optional
        Warnings added to the utterance's own.

    Returns
    -------
    Alignment or Exception
        ``aln`` itself, changed in place.
    """
    if isinstance(aln, Exception) or p.full_duration is None:
        return aln
    off = float(p.offset_s)
    shift_tiers(aln, off, p.full_duration)
    aln.duration = float(p.full_duration)
    d = aln.diagnostics
    d["speech_span_s"] = [round(off, 4), round(off + p.duration, 4)]
    if d.get("em_paths"):
        d["em_paths"] = [[round(t + off, 4) for t in step] for step in d["em_paths"]]
    if isinstance(d.get("reference"), dict):  # the three alignments' word spans
        d["reference"]["words"] = {k: [[round(min(t + off, p.full_duration), 4) for t in ab]
                                       for ab in v] for k, v in d["reference"]["words"].items()}
    d["warnings"] = list(p.warnings) + list(extra or [])
    add_warnings(aln)
    return aln



def shift_tiers(aln, dt: float, duration: float):
    """Move every segment of ``aln`` by ``dt`` seconds (kept within [0, duration]), in
    place.

    Parameters
    ----------
    aln : Alignment
    dt, duration : float
    """
    for segs in aln.tiers.values():
        for seg in segs:
            seg.start = min(max(seg.start + dt, 0.0), duration)
            seg.end = min(max(seg.end + dt, 0.0), duration)


def add_warnings(aln):
    """The quality warnings (:func:`vqalign.align.alignment.add_quality_warnings`) of
    ``aln``, which never break an alignment: a failed check is itself reported. Audio in
    which no speech stands out from the noise (``diagnostics["noise_only_db"]``,
    :func:`vqalign.align.utterance.noise_only_db`) has every confidence capped at
    :data:`vqalign.align.confidence.SILENT_CAP` first."""
    if aln.diagnostics.get("noise_only_db") is not None:
        for segs in aln.tiers.values():
            for seg in segs:
                if seg.confidence is not None:
                    seg.confidence = min(float(seg.confidence), SILENT_CAP)
    try:
        add_quality_warnings(aln)
    except Exception as exc:  # noqa: BLE001 - warnings must never break an alignment
        aln.diagnostics.setdefault("warnings", []).append(f"quality check failed: {exc}")


def observations(model, p, hop_s):
    """Per-frame emission log-likelihoods of every HMM state of ``p``'s chain and its
    Viterbi path under ``model``.

    Parameters
    ----------
    model : vqalign.hmm.TiedMixtureHMM
        Knowing every symbol of ``p``.
    p : vqalign.align.utterance.Utterance
    hop_s : float

    Returns
    -------
    dict
        ``log_emit`` (T, S) float32, ``path`` (T,) int32, ``labels`` list of str (per
        state, e.g. "AH.1", "sil"), ``hop_s``.
    """
    X, _, offs = frames([p])
    sel = model.select(X)
    batch = model.batch([p.tokens.units])
    path, _, status, _ = model.viterbi_batch(X, offs, batch, sel)
    if status[0] != 0:
        raise AlignmentError("no alignment path through the utterance")
    cols = np.unique(batch.emit_ids).astype(np.int32)
    le = model._log_emissions(sel, cols) + sel.gmax[:, None]
    log_emit = le[:, np.searchsorted(cols, batch.emit_ids)].astype(np.float32)
    labels = [model.emit_labels_[c] if not batch.skippable[s] else SIL
              for s, c in enumerate(batch.emit_ids)]
    return {"log_emit": log_emit, "path": path.astype(np.int32), "labels": labels,
            "hop_s": hop_s}
