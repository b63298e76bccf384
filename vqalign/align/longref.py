"""A long English recording's second opinions: the median of three, window by window.

One file at a time, an English phone alignment is the per-boundary median of three
opinions (:mod:`vqalign.align.second_opinion`): vqalign's English prior (the flat-start
self-trained model where the prior cannot serve), a model self-trained from the Sphinx
en-us model's segmentation, and the Sphinx model's own alignment. A long recording self-trained by the windows schedule
(:func:`vqalign.align.windows.self_train_long`) gets the same three:

1. **flat** -- the windows schedule's own model;
2. **model windows** -- the Sphinx model aligns each window (about ``WINDOW_S`` seconds
   cut in the flat model's pauses of at least ``MIN_PAUSE_S``) on its own samples (read from the file block by
   block, or sliced from the samples given), its results kept in the work folder per
   group of windows (``GROUP_S``) for a resumed run; so does vqalign's own English
   prior, which takes the flat model's place in the median as it does one file at a
   time (:func:`vqalign.align.prior.in_median`; where it cannot align a window, or the
   window is too noisy for it, the flat model keeps its place);
3. **seeded** -- the windows schedule again on the same windows (no anchor pass), its
   windows stage started from the Sphinx segmentation
   (:func:`vqalign.align.second_opinion.segmentation_start`) instead of a flat start;

and every boundary is the median of the three (:func:`vqalign.align.second_opinion.merge`).
A window the Sphinx model cannot align (or splits into other words) takes the flat
model's words and phones in its place, so there the median is the flat model's.

Measured with ``vqalign bench long --minutes 35`` (2 threads, the peer in the same run:
40 of the recording's utterances aligned one at a time by the single-file default):

- TIMIT dev files joined (``--corpus``): words 19.0 ms against 17.5 ms one at a time
  (ratio 1.08; the windows model alone 25.2 ms, its words median with the seeded and
  Sphinx ones but no prior 20.1 ms), 39.7x real time, 527 MB peak;
- devdata synth: 13.2 ms (the windows model alone 14.8 ms), drift -2.2 ms, p90 27.4 ms,
  37.8x real time, 520 MB.

The model windows stage (the Sphinx model, about 70x real time a thread, on the engine's
threads, and the prior's :func:`plain_align` on one more) took about half of the wall time
on one core; on both (``vqalign bench long --corpus timit --minutes 35``, the same load
3.6 for both): 47.0 -> 34.0 s, the file 90.7 -> 79.7 s. py-spy: the Sphinx model holds
the GIL about a tenth of its time (80 of 801 samples), the prior's confidences were a
quarter of its time (now left out).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from vqalign.align import extent
from vqalign.align import second_opinion as SO
from vqalign.align.alignment import Alignment, Segment
from vqalign.features.constants import FEATURE_SR

#: the second opinions' windows are cut in the middle of the flat model's pauses of at
#: least this many seconds (a shorter pause on its path may lie inside a word: on TIMIT
#: joined, 35 min, the prior aligned the anchor's windows, cut in any pause, to 85.8 ms
#: mean word error, and windows cut at pauses of at least 0.15 s to 68.3 ms)
MIN_PAUSE_S = 0.15
#: the model windows' results are saved per group of windows of about this many seconds
#: of audio (a killed run loses at most one group: about 0.5 s of work at 100x real time)
MODEL_GROUP_S = 60.0
#: env VQALIGN_LONG_REFERENCE=0 switches the long recording's second opinions off (the
#: windows schedule's model alone, as before)
ENV_SWITCH = "VQALIGN_LONG_REFERENCE"


def path_windows(path, batch, n_words: int, hop_s: float) -> list:
    """Windows of about ``WINDOW_S`` seconds cut in the middle of the pauses of at least
    ``MIN_PAUSE_S`` of a recording's state path (:func:`vqalign.align.windows.cut_windows`).

    Parameters
    ----------
    path : ndarray of int, shape (T,)
        Its Viterbi path over its one chain.
    batch : ChainBatch
        The chain's batch (``unit_index``, ``units``).
    n_words : int
    hop_s : float

    Returns
    -------
    list of (first frame, end frame, first word, end word)
    """
    from vqalign.align import windows as W  # noqa: PLC0415
    u = batch.unit_index[path]
    word_of_unit = np.array([w for w, _ in batch.units[0]], np.int64)
    wo = np.where(u >= 0, word_of_unit[np.maximum(u, 0)], -1)
    return W.cut_windows(wo, n_words, int(round(W.WINDOW_S / hop_s)),
                         min_pause=max(1, int(round(MIN_PAUSE_S / hop_s))))


def window_audio(wins, hop_s: float, *, y16=None, source=None):
    """The samples of every window, in order.

    Parameters
    ----------
    wins : list of (first frame, end frame, first word, end word)
        Contiguous windows from frame 0 (:func:`vqalign.align.windows.cut_windows`).
    hop_s : float
        Frame step (s).
    y16 : ndarray, shape (n_samples,), optional
        The recording's 16 kHz samples.
    source : str, optional
        Its file (read block by block, :class:`vqalign.io.blocks.BlockReader`) when
        ``y16`` is None.

    Yields
    ------
    ndarray, shape (n,) float32
        Samples ``round(a * hop_s * 16000)`` up to the next window's first (the last: to
        the end).
    """
    edges = [int(round(a * hop_s * FEATURE_SR)) for a, _, _, _ in wins]
    if y16 is not None:
        ends = edges[1:] + [y16.size]
        for a, b in zip(edges, ends):
            yield y16[a:b]
        return
    from vqalign.io.blocks import BlockReader  # noqa: PLC0415
    buf, pos, have, i = [], 0, 0, 0
    for block in BlockReader(source, FEATURE_SR):
        buf.append(block)
        have += block.size
        while i + 1 < len(edges) and pos + have >= edges[i + 1]:
            y = np.concatenate(buf) if len(buf) > 1 else buf[0]
            yield y[edges[i] - pos:edges[i + 1] - pos]
            y = y[edges[i + 1] - pos:]
            pos, buf, have, i = edges[i + 1], [y], y.size, i + 1
    y = np.concatenate(buf) if buf else np.zeros(0, np.float32)
    while i < len(edges):
        b = edges[i + 1] - pos if i + 1 < len(edges) else None
        yield y[max(edges[i] - pos, 0):b]
        i += 1


def model_window(y, tokens, a: int, b: int, hop_s: float, align, *, quiet: bool = True):
    """A pretrained model's words, phones and phone segmentation of one window.

    Parameters
    ----------
    y : ndarray, shape (n,)
        The window's samples, from frame ``a`` on.
    tokens : Tokens
        The window's words.
    a, b : int
        Its frames in the recording.
    hop_s : float
    align : callable
        ``align(y, text, sr=...) -> Alignment`` (the Sphinx model's, or vqalign's own
        English prior's).
    quiet : bool
        Its warnings silenced here (False: the caller does it; the filters are
        process-wide, not to be changed from two threads).

    Returns
    -------
    (words [(s, e, label)], phones [(s, e, label)], segments [(f0, f1, symbol)]) or None
        Times (s) and frames in the recording; None when the model cannot align it.
    """
    fake = types.SimpleNamespace(y16=y, tokens=tokens, X=np.empty((b - a, 0), np.float32))
    with warnings.catch_warnings() if quiet else contextlib.nullcontext():
        if quiet:
            warnings.simplefilter("ignore")
        aln, segs = SO.model_reference(fake, hop_s, align, "the model")
    if aln is None:
        return None
    t0 = a * hop_s
    words = [(s.start + t0, s.end + t0, s.label) for s in aln.tiers["words"]]
    phones = [(s.start + t0, s.end + t0, s.label) for s in aln.tiers.get("phones", [])]
    return words, phones, [(f0 + a, f1 + a, u) for f0, f1, u in segs]


def reference_alignment(flat: Alignment, units, wins, results, hop_s: float):
    """The recording's Sphinx alignment and phone segmentation from its windows'
    ``results`` (:func:`model_window`); a window without one takes ``flat``'s words and
    phones (and its phones' frames as segmentation).

    Parameters
    ----------
    flat : Alignment
        The flat model's (its words in order, one phone segment per unit).
    units : list of list of str
        The transcript's units per word.
    wins : list of (first frame, end frame, first word, end word)
    results : list
        One per window: a :func:`model_window` result or None.
    hop_s : float

    Returns
    -------
    (Alignment, segments [(f0, f1, symbol)], failed windows [int])
    """
    first_unit = np.concatenate([[0], np.cumsum([len(u) for u in units])]).astype(int)
    fw, fp = flat.tiers["words"], flat.unit_tier
    fp = flat.tiers[fp]
    words, phones, segs, failed = [], [], [], []
    for k, ((_, _, wa, wb), res) in enumerate(zip(wins, results)):
        if res is None:
            failed.append(k)
            words += [Segment(s.start, s.end, s.label) for s in fw[wa:wb]]
            ph = fp[first_unit[wa]:first_unit[wb]]
            phones += [Segment(s.start, s.end, s.label) for s in ph]
            for s in ph:
                f0, f1 = (int(round(t / hop_s + 0.5)) for t in (s.start, s.end))
                segs.append((f0, f1, s.label))
            continue
        w, p, sg = res
        words += [Segment(s, e, lab) for s, e, lab in w]
        phones += [Segment(s, e, lab) for s, e, lab in p]
        segs += sg
    ref = Alignment(tiers={"words": words, "phones": phones}, audio=flat.audio,
                    sample_rate=flat.sample_rate, duration=flat.duration, diagnostics={})
    return ref, segs, failed


def plain_align(fitted):
    """``align(y, text, sr=...) -> Alignment`` of a fitted Aligner-like ``fitted`` (its
    ``prepare``, ``model_``, ``unit``, ``hop_``, ``history_``): one decode and the
    boundary refinement, without the check for untranscribed speech that its ``align``
    makes (a window is cut in pauses of a path of the whole transcript; on 16 TIMIT
    windows the check re-aligned each about three times, 6x the time, and changed one),
    and without confidences (:func:`model_window` keeps the segments' times and labels
    only; they were a quarter of its time).
    """
    from vqalign.align.decode import decode, restore_span  # noqa: PLC0415
    from vqalign.align.refine import refine_prepared  # noqa: PLC0415
    from vqalign.align.utterance import frames  # noqa: PLC0415

    def align(y, text, sr):
        q = fitted.prepare(y, sr, text)
        m = fitted.model_
        m.add_symbols(sorted({u for w in q.tokens.units for u in w}))
        X, _, offs = frames([q])
        r = decode([q], X, offs, m.select(X), m, unit=fitted.unit, hop_s=fitted.hop_,
                   mode="corpus", history=fitted.history_, confidence=False)[0]
        if isinstance(r, Exception):
            raise r
        return refine_prepared(restore_span(r, q), q)
    return align


class Reference:
    """The second opinions of one long recording (:meth:`of` says whether it gets them).

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,), or None
        Its 16 kHz samples when given as an array.
    source : str or None
        Its file, when read block by block.

    prior : callable, optional
        ``align(y, text, sr=...) -> Alignment`` of vqalign's English prior
        (:mod:`vqalign.align.prior`), which takes the flat model's place in the median
        as one file at a time (:func:`vqalign.align.prior.in_median`).
    """

    def __init__(self, y16=None, source=None, prior=None):
        self.y16, self.source, self.prior = y16, source, prior
        self.mute = []   # frame spans left out of the alignment (vqalign.align.extent)

    @classmethod
    def of(cls, p, train_windows, unit):
        """A Reference for the prepared recording ``p``, or None when the Aligner behind
        ``train_windows`` (its ``estimator``) takes no Sphinx opinion: English phones,
        ``reference`` "auto" or "sphinx", no codebook, pocketsphinx installed, the audio
        at hand, env ``ENV_SWITCH`` not "0"."""
        from vqalign.align import prior  # noqa: PLC0415
        if cls.why_not(p, train_windows, unit) is not None:
            return None
        est = train_windows.estimator
        own = (plain_align(prior.prior_aligner(type(est).load))
               if prior.in_median(est.reference, type(est).load) is not None else None)
        return cls(p.y16, getattr(p, "source", None), own)

    @staticmethod
    def why_not(p, train_windows, unit):
        """Why the prepared recording ``p`` takes no second opinions (:meth:`of`), in
        words for ``diagnostics["reference"]``; None when it takes them."""
        from vqalign.align import recipe  # noqa: PLC0415
        est = getattr(train_windows, "estimator", None)
        if est is None:
            return "no Aligner behind the windows schedule"
        if not recipe.single_policy(unit):
            return f"unit={unit!r}: the pretrained models align phones"
        if getattr(est, "codebook", None) is not None:
            return "a codebook was given (the seed's recipe, alone)"
        reference = getattr(est, "reference", "auto")
        if reference not in ("auto", "sphinx"):
            return (f"reference={reference!r}: a long recording's median is taken with the "
                    "Sphinx model (vqalign's prior joins it beside that model); the windows "
                    "model aligns it alone")
        if os.environ.get(ENV_SWITCH, "1") == "0":
            return f"switched off by {ENV_SWITCH}=0"
        if not SO.available():
            return ("pocketsphinx is not installed: the windows model aligns it alone; "
                    "pip install pocketsphinx (a dependency of vqalign)")
        if p.y16 is None and getattr(p, "source", None) is None:
            return "the recording's samples are not at hand"
        return None

    def model_windows(self, p, wins, hop_s, work, progress):
        """(Sphinx model's, prior's) :func:`model_window` of every window (the prior's
        None without one, or where the window's loudness range is under
        :data:`vqalign.align.second_opinion.PRIOR_MIN_RANGE_DB`, as one file at a time),
        per group of windows of ``MODEL_GROUP_S`` (:func:`vqalign.align.windows.group_bounds`) kept in
        ``work`` as models-g<group>; and how many groups were kept from a run before.

        The Sphinx model's windows are shared among the engine's threads (``--jobs``,
        :func:`vqalign.hmm.threads.current`: its kernels release the GIL, which it holds
        about a tenth of its time), the prior's run one at a time on one more thread (it
        adds symbols to its model as it meets them); each window's result is its own, so
        the results and their order do not depend on the threads. The first window's
        Sphinx alignment runs alone (it fills the aligner's tables read on demand: the
        model, the dictionary's index, the triphones), and the next group's windows are
        handed out before a group's results are awaited (at most two groups' samples in
        memory)."""
        from concurrent.futures import Future  # noqa: PLC0415

        from vqalign._threads import one_blas_thread  # noqa: PLC0415
        from vqalign.align import windows as W  # noqa: PLC0415
        from vqalign.hmm.threads import current  # noqa: PLC0415
        bounds = W.group_bounds([b - a for a, b, _, _ in wins], hop_s, MODEL_GROUP_S)
        groups = [work.load(f"models-g{g}") for g in range(len(bounds) - 1)]
        kept = sum(g is not None for g in groups)
        if kept == len(groups):
            return [r for g in groups for r in g], kept
        align = SO.sphinx_aligner().align
        audio = window_audio(wins, hop_s, y16=self.y16, source=self.source)
        tok = p.tokens

        def sphinx_one(y, t, a, b):
            return model_window(y, t, a, b, hop_s, align, quiet=False)

        def prior_one(y, t, a, b):
            if not SO.prior_may_vote(y):
                return None
            return model_window(y, t, a, b, hop_s, self.prior, quiet=False)

        pool = ThreadPoolExecutor(max(1, current()))
        pool1 = ThreadPoolExecutor(1) if self.prior is not None else None
        first = [True]

        def submit(g):
            sph, pri = [], []
            for k in range(bounds[g], bounds[g + 1]):
                y = next(audio)
                if groups[g] is not None:
                    continue
                a, b, wa, wb = wins[k]
                if self.mute:
                    y, a, b = extent.unmuted(y, a, b, hop_s, self.mute)
                t = replace(tok, units=tok.units[wa:wb], words=tok.words[wa:wb])
                pri.append(None if pool1 is None else pool1.submit(prior_one, y, t, a, b))
                if first[0]:
                    first[0] = False
                    f = Future()
                    f.set_result(sphinx_one(y, t, a, b))
                    sph.append(f)
                else:
                    sph.append(pool.submit(sphinx_one, y, t, a, b))
            return g, sph, pri

        def finish(g, sph, pri):
            if groups[g] is None:
                groups[g] = [(s.result(), None if f is None else f.result())
                             for s, f in zip(sph, pri)]
                work.save(f"models-g{g}", groups[g])
            progress("model windows", None, f"group {g + 1} of {len(groups)} done")

        # BLAS held to one thread for the whole stage (each Sphinx alignment holds it so
        # too: nested in this, they restore one thread whatever order they end in); the
        # warnings of every thread silenced here, once (the filters are process-wide)
        try:
            with one_blas_thread(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                waiting = None
                for g in range(len(bounds) - 1):
                    handed = submit(g)
                    if waiting is not None:
                        finish(*waiting)
                    waiting = handed
                if waiting is not None:
                    finish(*waiting)
        finally:
            for ex in (pool, pool1):
                if ex is not None:
                    ex.shutdown(wait=True, cancel_futures=True)
            audio.close()
        return [r for g in groups for r in g], kept

    def merged(self, flat, p, *, hop_s, work, windows, seeded, progress=None, resumed=()):
        """The median of the three (:func:`vqalign.align.second_opinion.merge`).

        The flat model's, the Sphinx model's and the prior's alignments wait pickled while
        the seeded model trains (as Python objects they hold about 5 KB per word: 130 MB
        at 180 minutes, at the run's peak).

        Parameters
        ----------
        flat : Alignment or bytes
            The windows schedule's, or its pickle (then the caller holds no copy of it).
        p : prepared recording
        hop_s : float
        work : vqalign.align.windows.WorkFolder
            The schedule's (cleared at the end).
        windows : list of (first frame, end frame, first word, end word)
        seeded : callable
            ``seeded(windows, seed, work) -> Alignment``: the windows schedule on
            ``windows`` from the start ``seed``.
        progress : callable, optional
        resumed : sequence of str
            What was kept from a run before, in ``diagnostics["long_audio"]["resumed"]``
            before the stages this resumes.

        Returns
        -------
        Alignment
        """
        from vqalign.align import windows as W  # noqa: PLC0415
        progress = progress or W.stderr_progress
        from vqalign._memory import release_free_memory  # noqa: PLC0415
        if isinstance(flat, bytes):
            flat = pickle.loads(flat)  # noqa: S301 - our own, made in this process
        release_free_memory()   # the flat model's (its caller has let it go)
        t0 = time.perf_counter()
        results, kept = self.model_windows(p, windows, hop_s, work, progress)
        ref, segs, failed = reference_alignment(flat, p.tokens.units, windows,
                                                [r[0] for r in results], hop_s)
        own = no_prior = None
        if self.prior is not None:
            own, _, no_prior = reference_alignment(flat, p.tokens.units, windows,
                                                   [r[1] for r in results], hop_s)
        t_sphinx = round(time.perf_counter() - t0, 3)
        progress("model windows", t_sphinx, f"{len(windows)} windows, {len(failed)} "
                 "the Sphinx model could not align (the flat model's words there)"
                 + ("" if own is None else f", {len(no_prior)} without the prior's"))
        self.y16 = None
        results = None
        held = pickle.dumps((flat, ref, own), protocol=pickle.HIGHEST_PROTOCOL)
        flat = ref = own = None
        release_free_memory()   # the model windows' threads'
        seed = ("Sphinx segmentation", lambda m, sel: SO.segmentation_start(m, segs, sel))
        t0 = time.perf_counter()
        s_aln = seeded(windows, seed, work)
        t_seeded = round(time.perf_counter() - t0, 3)
        release_free_memory()   # the seeded model's
        flat, ref, own = pickle.loads(held)  # noqa: S301
        held = segs = None
        t0 = time.perf_counter()
        warns = getattr(flat, "own_warnings", None)
        out = SO.merge(flat, s_aln, ref, p.energy, hop_s,
                       list(p.warnings) if warns is None else warns, ref_name="sphinx",
                       prior=own)
        t_median = round(time.perf_counter() - t0, 3)
        work.clear()
        la = dict(out.diagnostics.get("long_audio") or {})
        sl = s_aln.diagnostics.get("long_audio") or {}
        la["stages_s"] = {**la.get("stages_s", {}), "model windows": t_sphinx,
                          **sl.get("stages_s", {}), "seeded (all stages)": t_seeded,
                          "median": t_median}
        la["resumed"] = (list(resumed) + list(la.get("resumed", []))
                         + list(sl.get("resumed", [])))
        if kept:
            la["resumed"].append(f"model windows, {kept} groups")
        la["reference_failed_windows"] = failed
        if no_prior is not None:
            la["prior_missing_windows"] = no_prior
        out.diagnostics["long_audio"] = la
        return out


__all__ = ["ENV_SWITCH", "MIN_PAUSE_S", "Reference", "path_windows", "model_window", "plain_align", "reference_alignment", "window_audio"]
