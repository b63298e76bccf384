"""Long recordings: one chain and one beam-pruned Viterbi over the whole recording.

A 60-minute recording at a 10 ms hop has 360,000 frames and its transcript some
100,000 HMM states. The engine (:mod:`vqalign.hmm`) handles the chain whole: its
forward-backward keeps the states within its beam of each frame's best, and only every
sqrt(T)-th frame's band (checkpoints; the backward pass recomputes the rest), and its
Viterbi keeps int8 back-pointers for the band only. No windows, no anchors that can be
lost, no drift: every boundary comes from one global path.

An unfitted Aligner self-trains on the whole chain (EM from a flat start; the first
step's band is wide, the next ones a few states) from each of ``WHOLE_STARTS`` and keeps
the likeliest, decodes, then runs ``RETRAIN_ROUNDS`` corpus-style EM rounds (weights,
transitions and Gaussians) on the path cut at pauses into chunks of about ``CHUNK_S``
seconds, and decodes again (a round that moves a run of words wholesale is undone: it
refines boundaries, it does not move words). One flat start is not enough on a chain of hundreds of words
and dozens of pauses: EM from it settles where whole words have slid across a pause
(:func:`_self_train_whole`). The runner-up start's path is decoded too: where the two
place a run of words far apart, the alignment is reported as unsure there.

From ``WINDOWS_MIN_S`` on, an unfitted Aligner self-trains in linear time instead
(:func:`vqalign.align.windows.self_train_long`): a coarse anchor pass in a fixed corridor,
flat-start EM pooled over ~20 s windows cut at its path's pauses, one beam Viterbi over
every frame, re-training rounds on that path's windows; every step is kept in a work
folder, so an interrupted run resumes where it stopped. For English phones with the
Sphinx model at hand, the result is then the per-boundary median of three opinions, as
one file at a time (:mod:`vqalign.align.longref`).

Stretches that do not match the transcript are reported as warnings with their time
span: words stretched over far more audio than they can take (over ``LONG_WORD_S``, or
over ``STRETCH_S`` and ``STRETCH`` times their units' typical length), long loud stretches
labelled silence, and speech-like audio left after the last word. A path that the beam
loses is retried with a wider beam, then reported as an AlignmentError.
"""

from __future__ import annotations

import copy
import functools
import pickle
import time
from dataclasses import replace

import numpy as np

from vqalign.align import recipe
from vqalign.align.alignment import Alignment, Segment
from vqalign.align.confidence import alignment_confidence, attach
from vqalign.align.decode import add_warnings, path_segments
from vqalign.align.utterance import too_short_message
from vqalign.exceptions import AlignmentError
from vqalign.features.frontend import speech_frames, true_runs

CHUNK_S = 20.0             # target chunk length for the corpus-style re-training
RETRAIN_ROUNDS = 1
RETRAIN_ITER = 10
BEAMS = (-60.0, -200.0)    # Viterbi beams tried in turn (log units)
LONG_WORD_S = 2.5          # a word longer than this is reported (transcript mismatch?)
#: ... and so is a word over STRETCH_S seconds that lasts over STRETCH times its units'
#: median length on the path (the recording's own rate). Devdata voices, 3 minutes: the
#: true words reach 3.3 times; a path that slid by a few words stretched 'bowed' 6.5 times
STRETCH = 5.0
STRETCH_S = 1.0
LONG_PAUSE_S = 3.0         # a loud stretch labelled silence longer than this is reported
CORRIDOR_S = 60.0          # flat-start corridor around the diagonal, at least this wide
CORRIDOR_FRACTION = 0.05   # and at least this share of the recording
WINDOWS = True             # self-train by vqalign.align.windows (linear time)
#: ... from this length on (devdata synth, seed 4: 1.7 min 40.6 ms mean word error with the
#: windows, 28.0 ms whole; 5 min 17.1 vs 20.7 ms; 10 min 14.8 vs 15.4 ms). At 5 min, seed 1,
#: the windows lost their place (11932 ms mean word error; the whole chain from
#: WHOLE_STARTS 14.9 ms, seed 2 18.9 vs 13.9 ms, about 20x real time); at 5.5, 7 and 9 min,
#: seeds 1-6, the windows gave 14.6-19.7 ms
WINDOWS_MIN_S = 360.0

#: flat starts of a recording self-trained whole (below WINDOWS_MIN_S); EM runs from each
#: and the highest final log-likelihood is kept: "broad" the broad-class phone weights
#: (:func:`vqalign.align.recipe.broad_class_start`), "pauses" silence seeded from the VAD's
#: pauses as well as from the quietest frames (phones alike), "pauses+broad" both. One
#: plain start (phones alike, silence from the quietest 5 % of frames only) settled on
#: devdata recordings of 2-3 minutes (seeds 1-6) where words had slid across pauses:
#: 18-80 ms mean word error on some seeds, 227-2098 ms on others. Measured per start,
#: before the re-training round (ms, 2 min seeds 1-6 / 3 min seeds 1-6): plain 244 28
#: 2098 40 38 1063 / 80 18 1290 37 227 653; broad 24 16 13 30 24 62 / 71 15 15 17 18
#: 17; pauses 236 22 2399 34 43 1054 / 29 18 70 22 287 655; pauses+broad 518 18 14 18 23
#: 24 / 244 16 16 17 18 16; the likeliest of the last three 24 16 13 18 23-43 24 / 29 15
#: 15 17 18 16 (TIMIT joined to 3 min, seeds 1-3: 29 36 27, plain 81 350 44)
WHOLE_STARTS = ("broad", "pauses", "pauses+broad")
#: ... with unit="chars" (no broad classes of letters): the plain start and "pauses"
WHOLE_STARTS_CHARS = ("plain", "pauses")
#: VAD pauses at least this long seed the silence of the "pauses" starts: in a recording
#: whose gaps are digital silence the quietest frames are all of that one kind, and the
#: utterances' own quieter-than-speech pauses start as speech
PAUSE_SEED_S = 0.3
#: the best and the runner-up start's paths disagree on a word when one of its boundaries
#: moves more than this (s); DISAGREE_WORDS such words in a row are reported as unsure
DISAGREE_S = 0.15
DISAGREE_WORDS = 3
#: the VAD's frame step (s) (vqalign.features.frontend.speech_frames)
VAD_HOP_S = 0.010


def _corridor(p):
    """Half-width of the flat start's diagonal corridor, as a fraction of the chain: the
    larger of CORRIDOR_S seconds and CORRIDOR_FRACTION of the recording. (Built from
    devdata's voices, 5-35 minutes, the words stray at most 6-16 s from the diagonal.)"""
    return max(CORRIDOR_FRACTION, CORRIDOR_S / max(p.duration, 1e-9))


def pause_frames(speech, n_frames, hop_s, min_s=PAUSE_SEED_S):
    """Frames (every ``hop_s``) inside the VAD's pauses of at least ``min_s`` seconds.

    Parameters
    ----------
    speech : ndarray, shape (n_vad,), bool
        The VAD's 10 ms speech flags (:func:`vqalign.features.frontend.speech_frames`).
    n_frames : int
    hop_s : float
    min_s : float

    Returns
    -------
    ndarray, shape (n_frames,), bool
    """
    speech = np.asarray(speech, bool)
    out = np.zeros(n_frames, bool)
    if speech.size == 0 or n_frames == 0:
        return out
    j = np.minimum(np.floor(np.arange(n_frames) * (hop_s / VAD_HOP_S) + 1e-6).astype(np.int64),
                   speech.size - 1)
    need = max(1, int(round(min_s / hop_s)))
    for a, b in zip(*true_runs(~speech[j])):
        if b - a >= need:
            out[a:b] = True
    return out


def _start(p, name, hop_s):
    """``(name, fn(model, selection))``: flat start ``name`` ("plain", "broad", "pauses"
    or "pauses+broad") as a seed of :func:`vqalign.align.recipe.train`: silence weights
    from the quietest frames (and the VAD's pauses), phone weights from the other frames
    (and by broad class)."""
    T = p.X.shape[0]
    offs = np.array([0, T], np.int64)
    quiet = recipe.quiet_masks(p.energy, offs, recipe.SINGLE_SILENCE_QUANTILE)[0]
    if "pauses" in name:
        speech = (p.speech if p.speech is not None else speech_frames(p.y16)
                  if p.y16 is not None else np.zeros(0, bool))
        quiet = quiet | pause_frames(speech, T, hop_s)

    def seed(m, sel):
        m.init_weights(*m.quiet_counts(sel.idx[:, 0], quiet))
        if "broad" in name:
            recipe.broad_class_start(m, p.X, offs, [quiet], sel)
    return name, seed


def _self_train_whole(p, *, unit, hop_s, train_one):
    """(model, history, selection, path, batch, beam, cells, diagnostics) of a recording
    self-trained whole: EM from every flat start of WHOLE_STARTS (WHOLE_STARTS_CHARS),
    the likeliest kept.
    ``diagnostics["other_path"]``: the runner-up start's path (:func:`disagreements`)."""
    runs = []
    for name in WHOLE_STARTS if unit == "phones" else WHOLE_STARTS_CHARS:
        model, history, sel, _, _ = train_one(p, diagonal=_corridor(p),
                                              seed=_start(p, name, hop_s))
        ll = history["log_likelihood"]
        runs.append((float(ll[-1]) if len(ll) else -np.inf, name, model, history, sel))
    order = sorted(range(len(runs)), key=lambda i: -runs[i][0])
    _, name, model, history, sel = runs[order[0]]
    path, batch, beam, cells = _global_path(model, p, sel, hop_s)
    diag = {"starts": {r[1]: round(r[0], 4) for r in runs}, "start": name}
    if len(order) > 1:
        other = runs[order[1]]
        try:
            path2, _, _, _ = _global_path(other[2], p, other[4], hop_s)
        except AlignmentError:
            path2 = None
        if path2 is not None:
            diag["other_path"] = path2
    return model, history, sel, path, batch, beam, cells, diag


def disagreements(path, other, batch, hop_s, duration):
    """Runs of at least DISAGREE_WORDS words whose boundaries two paths of the same chain
    place more than DISAGREE_S apart.

    Parameters
    ----------
    path, other : ndarray, shape (T,)
        State paths of one utterance of ``batch``.
    batch : vqalign.hmm.topology.Batch
    hop_s, duration : float

    Returns
    -------
    list of (int, int, float, float, float)
        (first word, last word, start s, end s on ``path``, largest boundary move s).
    """
    _, w1 = path_segments(path, batch, 0, hop_s, duration)
    _, w2 = path_segments(other, batch, 0, hop_s, duration)
    if len(w1) != len(w2) or not w1:
        return []
    a = np.array([(s, e) for s, e, _, _ in w1])
    b = np.array([(s, e) for s, e, _, _ in w2])
    move = np.abs(a - b).max(axis=1)
    out = []
    for lo, hi in zip(*true_runs(move > DISAGREE_S)):
        if hi - lo >= DISAGREE_WORDS:
            out.append((int(lo), int(hi - 1), float(a[lo, 0]), float(a[hi - 1, 1]),
                        float(move[lo:hi].max())))
    return out


def _unsure_warnings(p, spans):
    """Warnings of :func:`disagreements`' spans (words named from ``p``'s transcript)."""
    out = []
    for lo, hi, s, e, mv in spans:
        out.append(f"{s:.1f}-{e:.1f} s ({p.tokens.words[lo]!r} ... {p.tokens.words[hi]!r}, "
                   f"{hi - lo + 1} words): two flat starts of the self-training place these "
                   f"words up to {mv:.1f} s apart; their alignment is unsure there (the "
                   "transcript may not match the audio, or the model was not sure which "
                   "words go with which stretch of speech): check them")
    return out


def _global_path(model, p, sel, hop_s):
    """(path, batch, beam used) of the whole recording."""
    T = p.X.shape[0]
    batch = model.batch([p.tokens.units])
    offs = np.array([0, T], np.int64)
    need = int(batch.min_frames()[0])
    if need > T:
        raise AlignmentError(too_short_message(need, T, hop_s))
    for beam in BEAMS:
        path, score, status, cells = model.viterbi_batch(p.X, offs, batch, sel, beam=beam,
                                                         retry_exact=False)
        if status[0] == 0:
            return path, batch, beam, int(cells[0])
    raise AlignmentError(
        f"no alignment path through the {T * hop_s:.1f} s recording within the beam "
        f"(tried {', '.join(str(b) for b in BEAMS)}); the transcript probably does not match "
        "the audio (missing or extra text): check it, or align the recording in parts")


def _chunk_cuts(path, batch, hop):
    """Frame cuts (ascending, from 0 to T) in pauses or between words, ~CHUNK_S apart,
    and the first word of each chunk."""
    T = path.shape[0]
    uos = batch.unit_index[path]
    units = batch.units[0]
    word_of_unit = np.array([w for w, _ in units], np.int64)
    wpath = np.where(uos >= 0, word_of_unit[np.maximum(uos, 0)], -1)
    target = int(round(CHUNK_S / hop))
    cuts, first_word = [0], [0]
    # candidate cut frames: the middle of every pause, else every change of word
    cand = [int(a + (b - a) // 2) for a, b in zip(*true_runs(wpath < 0)) if 0 < a and b < T]
    if not cand:
        cand = (np.flatnonzero(wpath[1:] != wpath[:-1]) + 1).tolist()
    for c in cand:
        if c - cuts[-1] >= target and T - c >= target // 2:
            # the chunk after the cut starts with the next word
            nxt = wpath[c:]
            nz = np.flatnonzero(nxt >= 0)
            if nz.size == 0:
                break
            cuts.append(c)
            first_word.append(int(nxt[nz[0]]))
    cuts.append(T)
    return np.asarray(cuts, np.int64), first_word


def _retrain(model, p, path, batch, sel, hop_s, n_iter, on_step=None, resume=None):
    cuts, first = _chunk_cuts(path, batch, hop_s)
    bounds = [*first, len(p.tokens.units)]
    # a cut is kept only where words lie on both sides of it: a stretch without a word
    # of its own joins its neighbour, so the chunks cover every frame in order and the
    # recording's selection serves them as it is
    keep = [0]
    for i in range(1, len(cuts) - 1):
        if bounds[keep[-1]] < bounds[i] < bounds[-1]:
            keep.append(i)
    keep.append(len(cuts) - 1)
    data = [(p.X[cuts[a]:cuts[b]], p.tokens.units[bounds[a]:bounds[b]])
            for a, b in zip(keep[:-1], keep[1:])]
    model.n_iter = min(n_iter, RETRAIN_ITER)
    model.init_params = ""
    model.fit(data, selection=sel, on_step=on_step, resume=resume)
    # the start's selection, kept by fit as ``selection_``, is not read again: held until
    # the seeded model's confidences it was 84 of their 642 MB peak at 70 minutes (memray)
    model.selection_ = None
    return model._last_selection, len(data)


def _work_of(p, work_folder):
    """The work folder of a long recording: its ``long_key``'s (a file read block by
    block), else ``work_folder(y16, units, X)``'s, else none."""
    from vqalign.align import windows as W  # noqa: PLC0415
    return (W.WorkFolder(W.resume_root(), p.long_key) if p.long_key is not None
            else work_folder(p.y16, p.tokens.units, p.X) if work_folder is not None
            else W.WorkFolder(None, ""))


def _self_train_windows(p, *, hop_s, n_iter, update_gaussians, train_windows, work_folder,
                        keep_work=False, work=None, mute=()):
    """(model, history, sel, path, batch, beam, cells, rounds, diagnostics) of a long
    recording self-trained by :func:`vqalign.align.windows.self_train_long` (linear time);
    ``train_windows`` and ``work_folder`` as in :func:`align_long` (``work``: its work
    folder, when already made)."""
    from vqalign.align import windows as W  # noqa: PLC0415
    work = work if work is not None else _work_of(p, work_folder)

    def decode(model, sel, X, is_coarse):
        return _global_path(model, replace(p, X=X), sel,
                            hop_s * W.COARSE if is_coarse else hop_s)

    def retrain(model, path, batch, sel, on_step, resume):
        model.update = "wtmv" if update_gaussians else "wt"
        model.gaussians_every = max(1, update_gaussians)
        return _retrain(model, p, path, batch, sel, hop_s, n_iter, on_step, resume)

    speech = (p.speech if p.speech is not None else speech_frames(p.y16)
              if p.y16 is not None else np.zeros(0, bool))
    p.y16 = None  # the samples are not needed further (690 MB for 3 hours)
    r = W.self_train_long(
        p, hop_s=hop_s, rounds=RETRAIN_ROUNDS, work=work, speech=speech,
        train=train_windows, select=lambda m, X, cand: m.select(X, candidates=cand),
        decode=decode, retrain=retrain, mute=mute)
    if keep_work:   # the long reference's passes continue in it (its own diagnostics)
        diag_extra = {"_work": work, "_speech": speech}
    else:
        work.clear()
        diag_extra = {}
    diag = {**diag_extra, "stages_s": r.stages, "resumed": r.resumed, "windows": r.n_windows,
            "anchor_kept_share": round(r.kept_share, 3), "anchor_corridor_s": r.corridor_s,
            "anchor_stray_s": round(r.stray_s, 1)}
    return r.model, r.history, r.sel, r.path, r.batch, r.beam, r.cells, r.rounds, diag


def align_long(p, *, unit, hop_s, n_iter, update_gaussians, model=None, train_one=None,
               train_windows=None, work_folder=None):
    """Align one long prepared utterance.

    An unfitted Aligner's recording is first checked for speech before its transcript's
    first word or after its last (:mod:`vqalign.align.extent`): such a stretch is left out
    of the self-training and reported with its time span.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
        The whole recording, prepared.
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    n_iter : int
        EM steps of the self-training (the re-training rounds take at most RETRAIN_ITER).
    update_gaussians : int
        The re-training rounds re-estimate the Gaussians every this many steps (0: never).
    model : vqalign.hmm.TiedMixtureHMM, optional
        A fitted model to decode with; None: self-train on the recording.
    train_one : callable, optional
        ``train_one(p, diagonal=...) -> (model, history, selection, X, frame_off)``: the
        single-utterance recipe (required without ``model``).
    train_windows : callable, optional
        ``train_windows(items, diagonal, on_step, coarse) -> model``: flat start and EM on
        prepared windows (:func:`vqalign.align.windows.self_train_long`'s ``train``); with
        it, an unfitted recording of ``WINDOWS_MIN_S`` or more takes the linear-time
        windows schedule.
    work_folder : callable, optional
        ``work_folder(y16, units, X) -> vqalign.align.windows.WorkFolder``: where the
        windows schedule keeps its steps when the recording has no ``long_key``.

    Returns
    -------
    vqalign.align.alignment.Alignment
    """
    spans, mute, speech, mids = [], (), None, []
    est = getattr(train_windows, "estimator", None)
    work = _work_of(p, work_folder)   # its features, the extent, the windows' steps
    if model is None and est is not None:
        from vqalign.align import extent  # noqa: PLC0415
        speech = (p.speech if p.speech is not None else speech_frames(p.y16)
                  if p.y16 is not None else np.zeros(0, bool))
        p.speech = speech
        t0 = time.perf_counter()
        from vqalign.align import gaps  # noqa: PLC0415
        # kept in the work folder: a resumed run does not search again (TIMIT dev files
        # joined, 70 min: 12 s of the prior's passes)
        spans = work.cached("extent", lambda: extent.find(
            p, unit=unit, hop_s=hop_s, estimator=est, speech=speech, load=type(est).load,
            middle=gaps.find))
        t_extent = round(time.perf_counter() - t0, 3)
        T = p.X.shape[0]
        mids = gaps.snapped([s for s in spans if 0 < s[0] and s[1] < T], speech, hop_s)
        spans = sorted([s for s in spans if not 0 < s[0] or not s[1] < T] + mids)
        if extent.uses_prior(unit, est):
            from vqalign.align.windows import stderr_progress  # noqa: PLC0415
            stderr_progress("extent", t_extent, f"{len(spans) - len(mids)} untranscribed "
                            f"stretches at the ends, {len(mids)} without speech inside")
        if spans:
            # a silent stretch inside stays as it is (masked by the quietest frames, 120 s
            # of silence drew three words into it: tests/test_gaps.py); all are cut from
            # the windows' edges
            loud = [s for s in spans
                    if s not in mids or gaps.loud_share(p.energy, *s) >= gaps.QUIET_SHARE]
            whole = p
            if loud:
                p = extent.masked(p, loud, hop_s, speech)
                whole.y16 = None   # the masked copy holds the samples (freed later)
            mute = spans
            if mids:   # the VAD's speech of the stretches left out is not speech
                p.warnings = _speech_rate_warnings(p, mids, hop_s)
    aln = _align_long(p, unit=unit, hop_s=hop_s, n_iter=n_iter,
                      update_gaussians=update_gaussians, model=model, train_one=train_one,
                      train_windows=train_windows, work_folder=work_folder, mute=mute)
    work.clear()   # done: nothing is kept for a resumed run (the whole chain's path, too)
    if spans:
        aln = extent.report(aln, whole, [s for s in spans if s not in mids], hop_s, speech)
        aln = gaps.report(aln, whole, mids, hop_s)
    if speech is not None and extent.uses_prior(unit, est):
        la = aln.diagnostics.setdefault("long_audio", {})
        la["stages_s"] = {"extent": t_extent, **la.get("stages_s", {})}
    elif speech is not None and (msg := extent.rate_warning(p, speech, unit)) is not None:
        aln.diagnostics.setdefault("warnings", []).append(msg)
    return aln


def _speech_rate_warnings(p, spans, hop_s):
    """``p.warnings`` with the warning of far more VAD speech than the transcript takes
    (:func:`vqalign.align.utterance.missing_speech_warning`) made again from ``p.speech``
    without the frame ``spans``."""
    from vqalign.align.utterance import missing_speech_warning  # noqa: PLC0415
    head = "the audio holds "
    out = [w for w in p.warnings if not w.startswith(head)]
    if len(out) < len(p.warnings):
        on = np.asarray(p.speech, bool).copy()
        for f0, f1 in spans:
            on[int(round(f0 * hop_s / VAD_HOP_S)):int(round(f1 * hop_s / VAD_HOP_S))] = False
        msg = missing_speech_warning(on, sum(map(len, p.tokens.units)))
        if msg is not None:
            out.append(msg)
    return out


def _align_long(p, *, unit, hop_s, n_iter, update_gaussians, model=None, train_one=None,
                train_windows=None, work_folder=None, mute=()):
    """:func:`align_long` of a recording checked for untranscribed edges (``mute``: the
    frame spans left out, cut from the second opinions' windows)."""
    hop = hop_s
    fitted = model is not None
    history = None
    rounds = 0
    extra = {}  # the windows schedule's stages
    no_reference = None
    if fitted:
        model.add_symbols(sorted({u for w in p.tokens.units for u in w}))
        sel = model.select(p.X)
        path, batch, beam, cells = _global_path(model, p, sel, hop)
    elif WINDOWS and train_windows is not None and p.duration >= WINDOWS_MIN_S:
        from vqalign.align import longref  # noqa: PLC0415
        ref = longref.Reference.of(p, train_windows, unit)
        if ref is not None:
            ref.mute = list(mute)
        else:   # said in the alignment's diagnostics, as for one file at a time
            no_reference = longref.Reference.why_not(p, train_windows, unit)
        # a run resumed after the flat model's alignment was made starts from it (the
        # model, its selection rescored and its decode are not needed again)
        work = _work_of(p, work_folder) if ref is not None else None
        got = None if work is None else work.load("flat-alignment")
        if got is not None:   # the alignment pickled (Reference.merged takes it so)
            flat, wins, speech = got["alignment"], got["windows"], got["speech"]
        else:
            (model, history, sel, path, batch, beam, cells, rounds,
             extra) = _self_train_windows(p, hop_s=hop, n_iter=n_iter,
                                          update_gaussians=update_gaussians,
                                          train_windows=train_windows, work_folder=work_folder,
                                          keep_work=ref is not None, work=work, mute=mute)
        if ref is not None:
            # English phones: the median of three opinions, as one file at a time
            # (vqalign.align.longref), on windows cut in this model's pauses
            if got is None:
                work, speech = extra.pop("_work"), extra.pop("_speech")
                wins = longref.path_windows(path, batch, len(p.tokens.units), hop)
                flat = pickle.dumps(_to_alignment(p, model, history, sel, path, batch, beam,
                                                  cells, rounds, extra, fitted, unit, hop),
                                    protocol=pickle.HIGHEST_PROTOCOL)
                work.save("flat-alignment", {"alignment": flat, "windows": wins,
                                             "speech": speech})
            model = sel = path = batch = None
            return ref.merged(flat, p, hop_s=hop, work=work, windows=wins,
                              resumed=[] if got is None else ["flat alignment"],
                              seeded=functools.partial(
                                  _seeded_alignment, p, hop_s=hop, n_iter=n_iter,
                                  update_gaussians=update_gaussians,
                                  train_windows=train_windows, unit=unit, speech=speech,
                                  mute=mute))
    else:
        # the single-utterance recipe on the whole recording: one chain, flat starts, EM
        # (the forward-backward keeps checkpoints, not every frame's band)
        model, history, sel, path, batch, beam, cells, extra = _self_train_whole(
            p, unit=unit, hop_s=hop, train_one=train_one)
        kept = (copy.deepcopy(model), history, sel, path, beam, cells)
        if RETRAIN_ROUNDS:
            # corpus-style rounds on chunks of the path: Gaussians re-estimated too
            model.update = "wtmv" if update_gaussians else "wt"
            model.gaussians_every = max(1, update_gaussians)
            sel = model.select(p.X, candidates="m" in model.update)
        for _ in range(RETRAIN_ROUNDS):
            sel, n_chunks = _retrain(model, p, path, batch, sel, hop, n_iter)
            history = model.history_
            path, batch, beam, cells = _global_path(model, p, sel, hop)
            rounds += 1
        slid = disagreements(path, kept[3], batch, hop, p.duration) if rounds else []
        if slid:
            # the rounds refine boundaries; a run of words moved wholesale means their
            # Gaussians drifted (devdata, 2 min, seed 1: 24 -> 192 ms mean word error):
            # the path from before them is kept
            model, history, sel, path, beam, cells = kept
            extra["retrain_discarded"] = [[round(a, 2), round(b, 2)] for _, _, a, b, _ in slid]
    aln = _to_alignment(p, model, history, sel, path, batch, beam, cells, rounds, extra,
                        fitted, unit, hop)
    if no_reference:
        aln.diagnostics["reference"] = f"none: {no_reference}"
    return aln


def _seeded_alignment(p, wins, seed, work, *, hop_s, n_iter, update_gaussians,
                      train_windows, unit, speech, mute=()):
    """The Alignment of a long recording self-trained by the windows schedule on the
    windows ``wins`` (no anchor pass) from the start ``seed`` (``recipe.train``'s), its
    steps kept in ``work`` under names beginning "seeded"."""
    from vqalign.align import windows as W  # noqa: PLC0415

    def decode(model, sel, X, is_coarse):
        return _global_path(model, replace(p, X=X), sel, hop_s)

    def retrain(model, path, batch, sel, on_step, resume):
        model.update = "wtmv" if update_gaussians else "wt"
        model.gaussians_every = max(1, update_gaussians)
        return _retrain(model, p, path, batch, sel, hop_s, n_iter, on_step, resume)

    r = W.self_train_long(
        p, hop_s=hop_s, rounds=RETRAIN_ROUNDS, work=work, speech=speech,
        train=train_windows, select=lambda m, X, cand: m.select(X, candidates=cand),
        decode=decode, retrain=retrain, windows=wins, seed=seed, prefix="seeded ",
        mute=mute)
    extra = {"stages_s": r.stages, "resumed": r.resumed, "windows": r.n_windows}
    return _to_alignment(p, r.model, r.history, r.sel, r.path, r.batch, r.beam, r.cells,
                         r.rounds, extra, False, unit, hop_s, opinion=True)


def _to_alignment(p, model, history, sel, path, batch, beam, cells, rounds, extra, fitted,
                  unit, hop, *, opinion=False):
    """The Alignment of a long recording's path (words, units, confidence, warnings);
    ``opinion``: one that only goes into the median (:func:`vqalign.align.second_opinion.merge`
    reads its segments, their confidences and its EM history), without the per-frame
    log-likelihoods, the confidences' record and the warnings."""
    cols = batch.emit_ids[path]
    fconf, own = model.frame_ratio(sel, cols)
    conf = alignment_confidence(model, batch, path, np.array([0, p.X.shape[0]], np.int64), sel,
                                fconf, [p.energy], p.X, hop,
                                "corpus" if fitted else "self")[0]
    us, ws = path_segments(path, batch, 0, hop, p.duration, fconf, conf=conf)
    if opinion:
        tier = "phones" if unit == "phones" else "chars"
        diag = {"long_audio": extra, "unit": unit}
        if history is not None:
            diag["em_history"] = history.to_dict()
        return Alignment(tiers={"words": [Segment(s, e, p.tokens.words[wi], c)
                                          for s, e, wi, c in ws],
                                tier: [Segment(s, e, lab, c) for s, e, lab, c in us]},
                         audio=p.name, sample_rate=int(p.sr), duration=float(p.duration),
                         diagnostics=diag)
    fll = np.log(np.maximum(own, 1e-300)) + sel.gmax
    other = extra.pop("other_path", None)
    unsure = [] if other is None else disagreements(path, other, batch, hop, p.duration)
    dur = float(p.duration)
    seg_units = [Segment(s, e, lab, c) for s, e, lab, c in us]
    seg_words = [Segment(s, e, p.tokens.words[wi], c) for s, e, wi, c in ws]
    warns = list(p.warnings) + _mismatch_warnings(p, seg_words, path, batch, hop)
    warns += _unsure_warnings(p, unsure)
    if unsure:
        extra["unsure_spans_s"] = [[round(s, 2), round(e, 2)] for _, _, s, e, _ in unsure]
    diag = {
        "hop_s": hop,
        "frame_loglik": np.round(fll, 3).tolist(),
        "warnings": warns,
        "oov": sorted(set(p.tokens.oov)),
        "unit": unit,
        "long_audio": {"method": "global beam Viterbi", "beam": beam,
                       "mean_active_states": round(cells / max(1, p.X.shape[0]), 1),
                       "retrain_rounds": rounds, **extra},
        "model": "tied-mixture HMM",
    }
    if history is not None:
        diag["em_history"] = history.to_dict()
    tier = "phones" if unit == "phones" else "chars"
    aln = Alignment(tiers={"words": seg_words, tier: seg_units}, audio=p.name,
                    sample_rate=int(p.sr), duration=dur, diagnostics=diag)
    aln.own_warnings = list(warns)   # before the quality warnings (longref's median)
    attach(aln, conf)
    add_warnings(aln)
    return aln


def _unit_length(path, batch, hop):
    """Median length (s) of the units (not silences) on ``path``."""
    uos = batch.unit_index[path]
    change = np.flatnonzero(np.diff(uos) != 0) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [uos.size]]))
    keep = uos[starts] >= 0
    return float(np.median(lengths[keep])) * hop if keep.any() else float("inf")


def _mismatch_warnings(p, words, path, batch, hop):
    """Time spans where the audio and the transcript do not seem to match."""
    out = []
    e = p.energy
    lo, med = np.quantile(e, 0.15), np.median(e)
    thr = lo + 0.5 * (med - lo)
    loud = e > thr
    typical = _unit_length(path, batch, hop)
    n_units = [len(u) for u in p.tokens.units]
    for wi, w in enumerate(words):
        dur = w.end - w.start
        if dur > STRETCH_S and dur > STRETCH * n_units[wi] * typical and dur <= LONG_WORD_S:
            out.append(f"the word {w.label!r} spans {w.start:.1f}-{w.end:.1f} s ({dur:.1f} s, "
                       f"{dur / (n_units[wi] * typical):.0f} times the typical length of its "
                       f"{n_units[wi]} units here): the path has probably slid by a few "
                       "words around it (or the audio holds speech the transcript lacks)")
        if w.end - w.start > LONG_WORD_S:
            out.append(f"the word {w.label!r} spans {w.start:.1f}-{w.end:.1f} s "
                       f"({w.end - w.start:.1f} s): the audio there probably holds speech "
                       "that is not in the transcript (or the transcript misses a passage)")
    # long loud stretches labelled silence
    for start, stop in zip(*true_runs(batch.unit_index[path] < 0)):
        if (stop - start) * hop > LONG_PAUSE_S:
            frac = float(loud[start:stop].mean())
            if frac > 0.3:
                out.append(f"{start * hop:.1f}-{stop * hop:.1f} s is aligned as a pause but "
                           f"{100 * frac:.0f} % of it is loud: speech there may be missing "
                           "from the transcript")
    if words:
        tail_f = int(round(words[-1].end / hop))
        if p.X.shape[0] - tail_f > int(2.0 / hop):
            frac = float(loud[tail_f:].mean())
            if frac > 0.3:
                out.append(f"{p.duration - words[-1].end:.1f} s of audio after the last word "
                           f"({words[-1].label!r}) look like speech ({100 * frac:.0f} % of "
                           "its frames are loud); the transcript may be missing its end")
    return out
