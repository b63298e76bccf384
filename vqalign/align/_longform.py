"""Long recordings: anchor-and-split alignment in overlapping windows (private).

A 30-minute recording at a 5 ms hop has 360,000 frames and its transcript tens of
thousands of HMM states: one Viterbi over the whole chain would need billions of
cells. Instead the audio is walked through in windows of ``WINDOW_S`` seconds:

1. Each window is decoded against the next stretch of the transcript (the words
   expected in it, with a generous margin) with an *open end*: the path may stop
   after any word.
2. Words that end in the first two thirds of the window are accepted; the next
   window starts at the first frame after the last accepted word. So no error
   accumulates (every window re-anchors on the audio) and memory stays bounded
   by one window.
3. The last window must consume every remaining word (closed end). If the
   transcript cannot fit, or a window cannot place a single word, alignment stops
   with an AlignmentError that says where and why - the last word is never left
   to absorb the tail of the audio silently: speech-like audio left after the
   final word is reported as a warning.

An unfitted Aligner first trains its model on the opening window (open-end EM),
walks the whole recording once, re-trains on the accepted chunks as a corpus, and
walks it again with the better model.
"""

from __future__ import annotations

import numpy as np

from vqalign.align import _model as M
from vqalign.exceptions import AlignmentError
from vqalign.history import History

WINDOW_S = 40.0
ACCEPT_FRACTION = 2.0 / 3.0
WORD_MARGIN = 1.6


def _window_words(n_words, w0, words_per_frame, n_frames, margin=WORD_MARGIN):
    return min(n_words, w0 + int(np.ceil(words_per_frame * n_frames * margin)) + 8)


def _walk(aligner, model, p, comp, hop):
    """One pass over the recording; returns (chunks [(f0, f1, w0, w1)], per-window results)."""
    T = p.X.shape[0]
    units = p.tokens.units
    n_words = len(units)
    win = max(int(round(WINDOW_S / hop)), 200)
    # words per frame from the whole recording (speech ~85 % of the frames)
    wpf = n_words / max(T * 0.85, 1.0)
    f0, w0 = 0, 0
    segments_units, segments_words = [], []
    frame_conf_all = np.zeros(T)
    frame_ll_all = np.zeros(T)
    chunks = []
    while w0 < n_words:
        last = f0 + win >= T
        f1 = T if last else f0 + win
        w1 = n_words if last else _window_words(n_words, w0, wpf, f1 - f0)
        sub = units[w0:w1]
        g = model.build_graph([sub], silence=aligner.silence)
        n_need = int(np.count_nonzero(~g.skippable))
        open_end = not last
        if last and n_need > f1 - f0:
            raise AlignmentError(
                f"the transcript does not fit the audio: after {f0 * hop:.1f} s, "
                f"{n_words - w0} words ({n_need} HMM states) remain but only "
                f"{(f1 - f0) * hop:.1f} s of audio ({f1 - f0} frames) is left; the transcript "
                "probably has text that is not in the recording (check its end)")
        frames = M.Frames(p.X[f0:f1], np.zeros(0), np.array([0, f1 - f0], np.int64),
                          [(f1 - f0) * hop])
        wcomp = (comp[0][f0:f1], comp[1][f0:f1], comp[2][f0:f1])
        bl = model.emissions(wcomp)
        lt = model.transitions(g, open_end=open_end)
        path, score, status, _ = M.viterbi(model, frames, g, bl=bl, lt=lt)
        if status[0] != 0 and last:
            raise AlignmentError(
                f"the transcript does not fit the end of the audio: the last {n_words - w0} "
                f"words ({' '.join(p.tokens.words[w0:w0 + 5])!r}...) find no path through the "
                f"final {(f1 - f0) * hop:.1f} s; the transcript probably has text that is not "
                "in the recording (check its end)")
        if status[0] != 0:
            raise AlignmentError(
                f"alignment lost at {f0 * hop:.1f} s (word {w0 + 1} of {n_words}, "
                f"{' '.join(p.tokens.words[w0:w0 + 5])!r}...): no path through the window "
                f"{f0 * hop:.1f}-{f1 * hop:.1f} s; check that the transcript matches the audio")
        cols = g.col[path]
        own = bl[np.arange(f1 - f0), cols].astype(np.float64)
        best = bl.max(axis=1).astype(np.float64)
        fconf = own / np.maximum(best, 1e-300)
        u_seg, w_seg = M.path_segments(path, g, 0, hop, (f1 - f0) * hop, fconf)
        if not w_seg:
            raise AlignmentError(
                f"alignment lost at {f0 * hop:.1f} s: the window {f0 * hop:.1f}-"
                f"{f1 * hop:.1f} s holds no word of the transcript (next words: "
                f"{' '.join(p.tokens.words[w0:w0 + 5])!r}); check that the transcript "
                "matches the audio, or cut long non-speech stretches")
        # frame index where each word ends (exclusive), from the path
        uos = g.unit[path]
        word_of_unit = np.array([wi for wi, _ in g.units[0]], np.int64)
        wpath = np.where(uos >= 0, word_of_unit[np.maximum(uos, 0)], -1)
        if last:
            n_acc = len(w_seg)
            cut = f1 - f0
        else:
            limit = int((f1 - f0) * ACCEPT_FRACTION)
            ends = []
            for _, _, wi, _ in w_seg:
                idx = np.flatnonzero(wpath == wi)
                ends.append(idx[-1] + 1)
            n_acc = sum(1 for e in ends[:-1] if e <= limit)
            if n_acc == 0:
                n_acc = 1 if len(ends) > 1 else 0
            if n_acc == 0:
                raise AlignmentError(
                    f"alignment lost at {f0 * hop:.1f} s: only one word could be placed in "
                    f"{(f1 - f0) * hop:.1f} s of audio; check that the transcript matches")
            cut = ends[n_acc - 1]  # the next window starts right after this word
        t_off = f0 * hop
        acc_units = [u for u in u_seg if _word_of(u, g, w_seg, n_acc)]
        for s, e, lab, c in acc_units:
            segments_units.append((s + t_off, e + t_off, lab, c))
        for s, e, wi, c in w_seg[:n_acc]:
            segments_words.append((s + t_off, e + t_off, w0 + wi, c))
        frame_conf_all[f0:f0 + cut] = fconf[:cut]
        frame_ll_all[f0:f0 + cut] = np.log(np.maximum(own[:cut], 1e-300)) + wcomp[2][:cut]
        chunks.append((f0, f0 + cut, w0, w0 + n_acc))
        f0 += cut
        w0 += n_acc
        if w0 < n_words and f0 >= T:
            raise AlignmentError(
                f"the audio ended with {n_words - w0} words of the transcript left "
                f"({' '.join(p.tokens.words[w0:w0 + 5])!r}...); the transcript has text that "
                "is not in the recording")
    # fix the last segment end to the audio's duration
    return chunks, segments_units, segments_words, frame_conf_all, frame_ll_all


def _word_of(useg, g, w_seg, n_acc):
    """Whether a unit segment lies inside one of the first n_acc words (by time)."""
    if n_acc == 0:
        return False
    end_acc = w_seg[n_acc - 1][1]
    return useg[1] <= end_acc + 1e-9


def _train_opening(aligner, p, hop, rng):
    """Model self-trained on the opening window (open-end EM)."""
    T = p.X.shape[0]
    win = min(T, max(int(round(2 * WINDOW_S / hop)), 200))
    n_words = len(p.tokens.units)
    wpf = n_words / max(T * 0.85, 1.0)
    w1 = _window_words(n_words, 0, wpf, win, margin=1.25)
    symbols = sorted({u for w in p.tokens.units for u in w})
    sub = M.Frames(p.X[:win], p.energy[:win], np.array([0, win], np.int64), [win * hop])
    saved = aligner.n_codes
    try:
        aligner.n_codes = min(aligner.n_codes, max(8, win // 12))
        model = aligner._new_model(symbols, [_Slice(p.X[:win])], rng)
    finally:
        aligner.n_codes = saved
    g = model.build_graph([p.tokens.units[:w1]], silence=aligner.silence)
    comp = model.frame_components(sub.X)
    model.init_weights_from_energy(comp, sub.energy, sub.frame_off)
    # durations from the words expected in the window (the graph holds 25 % more)
    g_exp = model.build_graph([p.tokens.units[:max(1, int(w1 / 1.25))]],
                              silence=aligner.silence)
    model.init_durations(sub.frame_off, g_exp)
    M.run_em(model, sub, g, comp, aligner.n_iter, tol=aligner.tol, open_end=True)
    return model


class _Slice:
    def __init__(self, X):
        self.X = X


def _retrain(aligner, model, p, comp, chunks, hop):
    """A few corpus-style EM steps on the accepted chunks of the first pass."""
    offs = [0]
    Xs, cidx, ceg, cg, trans = [], [], [], [], []
    for f0, f1, w0, w1 in chunks:
        if w1 <= w0 or f1 <= f0:
            continue
        Xs.append(p.X[f0:f1])
        cidx.append(comp[0][f0:f1])
        ceg.append(comp[1][f0:f1])
        cg.append(comp[2][f0:f1])
        trans.append(p.tokens.units[w0:w1])
        offs.append(offs[-1] + f1 - f0)
    frames = M.Frames(np.concatenate(Xs), np.zeros(0), np.asarray(offs, np.int64),
                      [(b - a) * hop for a, b in zip(offs[:-1], offs[1:])])
    g = model.build_graph(trans, silence=aligner.silence)
    sub = (np.concatenate(cidx), np.concatenate(ceg), np.concatenate(cg))
    history = History("tied-mixture EM (long recording, chunks)")
    M.run_em(model, frames, g, sub, min(aligner.n_iter, 10), history=history, tol=aligner.tol)
    return history


def align_long(aligner, p):
    """Align one long prepared utterance; returns an Alignment."""
    from vqalign._validation import check_random_state  # noqa: PLC0415
    from vqalign.align.aligner import _add_warnings, _alignment_classes  # noqa: PLC0415

    hop = aligner.hop_
    fitted = getattr(aligner, "model_", None) is not None
    history = None
    if fitted:
        model = aligner.model_
        model.add_symbols(sorted({u for w in p.tokens.units for u in w} - set(model.symbols)))
        comp = model.frame_components(p.X)
        chunks, us, ws, fconf, fll = _walk(aligner, model, p, comp, hop)
    else:
        rng = check_random_state(aligner.random_state)
        model = _train_opening(aligner, p, hop, rng)
        comp = model.frame_components(p.X)
        chunks, us, ws, fconf, fll = _walk(aligner, model, p, comp, hop)
        history = _retrain(aligner, model, p, comp, chunks, hop)
        chunks, us, ws, fconf, fll = _walk(aligner, model, p, comp, hop)
    Alignment, Segment = _alignment_classes()
    dur = float(p.duration)
    seg_units = [Segment(min(s, dur), min(e, dur), lab, c) for s, e, lab, c in us]
    seg_words = [Segment(min(s, dur), min(e, dur), p.tokens.words[wi], c) for s, e, wi, c in ws]
    warns = list(p.warnings)
    # speech-like audio after the last word: the transcript may be missing its end
    if seg_words:
        tail_f = int(round(seg_words[-1].end / hop))
        if p.X.shape[0] - tail_f > int(2.0 / hop):
            e = p.energy
            thr = np.quantile(e, 0.15) + 0.5 * (np.median(e) - np.quantile(e, 0.15))
            loud = float(np.mean(e[tail_f:] > thr))
            if loud > 0.3:
                warns.append(f"{dur - seg_words[-1].end:.1f} s of audio after the last word "
                             f"({seg_words[-1].label!r}) look like speech ({100 * loud:.0f} % "
                             "of its frames are loud); the transcript may be missing its end")
    diag = {
        "hop_s": hop,
        "frame_loglik": np.round(fll, 3).tolist(),
        "warnings": warns,
        "oov": sorted(set(p.tokens.oov)),
        "unit": aligner.unit,
        "long_audio": {"windows": len(chunks), "window_s": WINDOW_S,
                       "anchors_s": [round(c[0] * hop, 3) for c in chunks]},
        "model": "tied-mixture HMM",
    }
    if history is not None:
        diag["em_history"] = history.to_dict()
    tier = "phones" if aligner.unit == "phones" else "chars"
    aln = Alignment(tiers={"words": seg_words, tier: seg_units}, audio=p.name,
                    sample_rate=int(p.sr), duration=dur, diagnostics=diag)
    _add_warnings(aln, warns)
    return aln
