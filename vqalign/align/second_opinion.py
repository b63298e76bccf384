"""A second opinion for one self-trained utterance: the CMU Sphinx English model.

A model self-trained on one utterance of a few seconds has a few hundred frames to learn
some forty phones from; its errors are those of its flat start (a word slid over a pause,
a stop swallowed by its vowel). The Sphinx en-us model inside the pocketsphinx wheel
(:mod:`vqalign.align.sphinx`) was trained on hours of real speech and errs elsewhere: on
voices and rates unlike its training data. For English phones, when pocketsphinx is
installed, a self-trained alignment is therefore made of three:

1. vqalign's own English prior (:mod:`vqalign.align.prior`, trained on synthetic speech);
   the flat-start model (the single-utterance policy of :class:`Aligner`) in its place
   in heavy noise (:data:`PRIOR_MIN_RANGE_DB`) or when the prior cannot align the file;
2. a second model self-trained on the same audio from the Sphinx model's phone
   segmentation (:func:`segmentation_start`, then the same MAP EM);
3. the Sphinx model's own alignment;

and every boundary is the median of the three (:func:`combine`). A boundary is thereby
wrong only where two of the three are wrong alike. Their spread is what the confidence of
the result is computed from (with the two self-trained models' own confidences); the
flat-start model also gives the words' and phones' labels and the check for untranscribed
speech.

Measured on devdata, 200 files self-trained one at a time, with the flat start as the first
opinion (word-boundary mean / within 20 ms): flat start 20.5 ms / 66.7 %, the
Sphinx-seeded model 17.1 / 73.3 %, the Sphinx model 17.2 / 73.6 %, their median 14.5 /
79.5 % (`vqalign bench align --single 200`). Any two averaged: 15.6-16.1 ms. On the 40
TIMIT dev files (`vqalign bench timit`), words 18.8 -> 17.5 ms and phones 15.0 -> 13.9 ms
with the prior in the flat start's place (pocketsphinx 23.6 / 17.7 ms in the same run).
"""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
import math
import threading

import numpy as np

from vqalign.align.alignment import Segment
from vqalign.align.confidence import (
    NEAR_FLOOR,
    SILENT_CAP,
    SILENT_FRACTION,
    _logit,
    noise_adjusted,
    predict,
)
from vqalign.align.decode import add_warnings, shift_tiers
from vqalign.align.recipe import rel_duration
from vqalign.align.refine import split_at_pauses
from vqalign.align.utterance import load_audio, loudness_range_db
from vqalign.exceptions import ParameterError, VQAlignError
from vqalign.features.frontend import FEATURE_SR, frame_db

#: frames of the speech frames' best-Gaussian histogram mixed into each state's weights of
#: a segmentation start (its own frames are few: 3-10 per state of one utterance)
SEED_MIX = 0.3
#: the smallest phone (s) the median leaves when it squeezes a word's phones
MIN_PHONE_S = 0.01
#: vqalign's English prior (trained on clean synthetic speech) takes the flat start's place
#: in the median only where the recording's loudness range (dB,
#: :func:`vqalign.align.utterance.loudness_range_db`) is at least this: between what
#: built-in synthesized speech gives in white noise at 5 dB SNR (10.4 dB; there the prior
#: made the median worse, 39.5 -> 42.2 ms, word-confidence AUC 0.86 -> 0.74) and at 10 dB
#: (15.1 dB; better, 24.9 -> 24.5 ms). On the TIMIT dev files in white noise, 0 dB: errors
#: alike (116 ms), AUC 0.73 without the prior against 0.64 with it; 10 dB: 31.2 -> 30.9 ms.
PRIOR_MIN_RANGE_DB = 12.5

#: the Sphinx model's opinion takes its pause bias (:data:`vqalign.align.sphinx.PAUSE_BIAS`)
#: only in recordings whose estimated SNR (:func:`vqalign.features.snr.estimate_snr_db`)
#: is under this (dB): clean recordings give 32-54 (TIMIT dev files; devdata's synthetic
#: voices 24-60, one file under 25), white noise at 10 dB 9-10 and babble at 10 dB 14-26.
#: On clean speech the bias moved a few boundaries and made the word confidences rank
#: errors worse (TIMIT AUC 0.713 -> 0.682, built-in synthesizer 0.866 -> 0.836). The
#: seeded model starts from the segmentation without the bias: with the biased one the
#: two opinions agreed more where both were wrong (TIMIT in white noise at 10 dB, word
#: confidence AUC 0.673 without the bias, 0.639 with it for both, 0.665 for the opinion
#: alone; babble 0.608, 0.594, 0.600; words mean 22.7, 22.6, 22.5 and 29.8, 29.9, 29.8 ms;
#: built-in synthesizer white / babble 10 dB 13.4 / 63.8, 11.6 / 54.8, 12.1 / 54.8 ms)
PAUSE_BIAS_BELOW_DB = 25.0

#: the single-file median's Sphinx opinion (:func:`opinions` with ``short_pauses``, in a
#: clean recording): the insertion probability of its silence filler between words
#: instead of :data:`vqalign.align.sphinx.SILPROB` (pocketsphinx's), the share
#: of word junctions with a pause in devdata's synthetic set (160 of 1627; the built-in
#: synthesizer pauses at 25 %), and every filler the first pass finds between two words
#: kept only where the audio there is quiet (:func:`vqalign.align.refine.quiet_spans`). Measured with the
#: gate (words mean of the default median, devdata synth 200 files / built-in synthesizer
#: seed 23, 40 files / TIMIT dev 40 files; pocketsphinx's 0.005 without the gate 14.64 /
#: 9.06 / 17.21 ms): 0.005 13.95 / 9.06 / 17.21, 0.05 14.05 / 8.07 / 16.94, 0.1 14.09 /
#: 8.07 / 16.94, 0.3 14.10 / 8.05 / 16.74 ms. Without the gate a higher probability put
#: pauses into loud speech (devdata synth 0.05: 15.04, 0.3: 15.09 ms)
SHORT_PAUSE_SILPROB = 0.1

_SPHINX: dict = {}


def available() -> bool:
    """Whether the Sphinx en-us model can be loaded (pocketsphinx installed)."""
    if "ok" not in _SPHINX:
        try:
            import pocketsphinx  # noqa: F401, PLC0415
            _SPHINX["ok"] = True
        except ImportError:
            _SPHINX["ok"] = False
    return _SPHINX["ok"]


#: what a result without the Sphinx opinions says, in its diagnostics and once as a warning
MISSING_SPHINX = ("pocketsphinx is not installed, so the CMU Sphinx en-us model's two "
                  "opinions are replaced by vqalign's own English prior's: the documented "
                  "default's accuracy is not reached; pip install pocketsphinx (a dependency "
                  "of vqalign)")


def warn_missing_sphinx() -> None:
    """One warning per process that the documented single-file method cannot run."""
    if not _SPHINX.get("warned"):
        import warnings  # noqa: PLC0415

        _SPHINX["warned"] = True
        warnings.warn(MISSING_SPHINX, UserWarning, stacklevel=3)


def sphinx_aligner():
    """The cached :class:`vqalign.align.sphinx.SphinxAligner` on en-us."""
    if "aligner" not in _SPHINX:
        from vqalign.align.sphinx import SphinxAligner  # noqa: PLC0415
        _SPHINX["aligner"] = SphinxAligner("en-us")
    return _SPHINX["aligner"]


#: how many of the Sphinx model's latest alignments :func:`sphinx_reference` keeps: a
#: corpus model's start and its median both ask for every utterance's
MEMO_SIZE = 512
_MEMO: collections.OrderedDict = collections.OrderedDict()
_MEMO_LOCK = threading.Lock()


def _memo_align(y, text, sr, pause_bias=False, short_pauses=False):
    """The Sphinx model's alignment of ``y`` (``sr``) and ``text`` (``pause_bias``,
    ``short_pauses``: see :meth:`vqalign.align.sphinx.SphinxAligner.align`), from the memo
    when the same samples and words were aligned lately (a copy: callers may change it)."""
    y = np.ascontiguousarray(y)
    key = (hashlib.blake2b(y.view(np.uint8), digest_size=16).hexdigest(), str(y.dtype),
           y.shape, text, int(sr), bool(pause_bias), bool(short_pauses))
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None:
            _MEMO.move_to_end(key)
            return copy.deepcopy(hit)
    aln = sphinx_aligner().align(y, text, sr=sr, pause_bias=bool(pause_bias),
                                 pause_silprob=SHORT_PAUSE_SILPROB if short_pauses else None)
    with _MEMO_LOCK:
        _MEMO[key] = copy.deepcopy(aln)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return aln


def sphinx_reference(p, hop_s, *, pause_bias=False, short_pauses=False):
    """(alignment, segments) of the prepared utterance ``p`` by the Sphinx model
    (:func:`model_reference` with :func:`sphinx_aligner`; the alignment of the same
    samples and words is made once, see :data:`MEMO_SIZE`); ``pause_bias``: its fillers
    favoured where the audio is at its noise's level (:data:`vqalign.align.sphinx.
    PAUSE_BIAS`); ``short_pauses``: silences between words inserted more readily, where
    the audio is quiet (:data:`SHORT_PAUSE_SILPROB`)."""
    return model_reference(p, hop_s, functools.partial(_memo_align, pause_bias=pause_bias,
                                                       short_pauses=short_pauses),
                           "the Sphinx model")


def noisy(p) -> bool:
    """Whether the prepared utterance ``p``'s estimated SNR is under
    :data:`PAUSE_BIAS_BELOW_DB`."""
    snr = getattr(p, "snr_db", None)
    return snr is not None and snr < PAUSE_BIAS_BELOW_DB


def model_reference(p, hop_s, align, name):
    """(alignment, segments) of the prepared utterance ``p`` by a pretrained model, on the
    audio ``p`` holds (its frames' time origin); ``segments`` per phone of ``p``'s
    transcript: (first frame, end frame, symbol). Phones are the model's where its
    pronunciation of a word is ``p``'s (stress left aside), else the word's span split
    by typical phone durations.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
    hop_s : float
        Frame hop of ``p``'s features (s).
    align : callable
        ``align(y, text, sr=...) -> Alignment`` of the pretrained model (the Sphinx
        model's, or vqalign's own English prior's, :mod:`vqalign.align.prior`).
    name : str
        The model, in reasons.

    Returns
    -------
    (Alignment, list of (int, int, str))
        Or (None, reason) when it cannot be made.
    """
    if p.y16 is None:
        return None, "no audio"
    try:
        aln = align(p.y16, " ".join(p.tokens.words), sr=FEATURE_SR)
    except (VQAlignError, ValueError) as e:
        return None, f"{name} could not align it ({str(e)[:120]})"
    sw = aln.tiers["words"]
    if len(sw) != len(p.tokens.units):
        return None, f"{name} split the transcript into other words"
    sph = aln.tiers["phones"]
    T = p.X.shape[0]
    segs = []
    k = 0
    for seg, units in zip(sw, p.tokens.units):
        theirs, k = _phones_in(sph, k, seg.start, seg.end)
        if same_phones(theirs, units):
            edges = [theirs[0].start] + [s.end for s in theirs]
        else:
            r = np.array([rel_duration(u) for u in units])
            edges = (seg.start + (seg.end - seg.start)
                     * np.concatenate([[0.0], np.cumsum(r) / r.sum()])).tolist()
        # a boundary at t s lies between frames whose centres (k * hop_s) are before and
        # after it: the first frame after it is round(t / hop_s + 0.5)
        f = np.clip(np.round(np.asarray(edges) / hop_s + 0.5).astype(int), 0, T)
        segs.extend((int(f[j]), int(f[j + 1]), u) for j, u in enumerate(units))
    return aln, segs


def same_phones(segments, units) -> bool:
    """Whether the phone ``segments`` of a pretrained model's word spell ``units``, stress
    digits left aside."""
    return [s.label.rstrip("012") for s in segments] == [u.rstrip("012") for u in units]


def _phones_in(phones, k, a, b):
    """(the segments of ``phones`` from index ``k`` on that overlap [a, b), the index after
    the last one starting before ``b``): a word's phones, the words taken in order."""
    out = []
    while k < len(phones) and phones[k].start < b - 1e-6:
        if phones[k].end > a + 1e-6:
            out.append(phones[k])
        k += 1
    return out, k


def segmentation_start(m, segs, sel):
    """Weights and self loops of a start from a phone segmentation ``segs`` [(first
    frame, end frame, symbol)]: each state's weights from the best Gaussians of its third
    of its phones' frames (SEED_MIX of the speech frames' mixed in), its self loop from the
    mean length of that third; silence from the frames outside every phone.

    Parameters
    ----------
    m : vqalign.hmm.TiedMixtureHMM
        Initialized; its ``weights_`` and ``self_loop_`` are set.
    segs : list of (int, int, str)
    sel : vqalign.hmm.train.Selection
        ``sel.idx[:, 0]``: each frame's best Gaussian.
    """
    best = np.asarray(sel.idx[:, 0])
    K = m.gmm_.n_components
    spu = m.states_per_symbol if isinstance(m.states_per_symbol, int) else 1
    hist, frames, count = {}, {}, {}
    inside = np.zeros(best.size, bool)
    for a, b, u in segs:
        if b <= a:
            continue
        inside[a:b] = True
        cuts = np.linspace(a, b, spu + 1).round().astype(int)
        for j in range(spu):
            key = (u, j)
            h = hist.setdefault(key, np.zeros(K))
            h += np.bincount(best[cuts[j]:cuts[j + 1]], minlength=K)
            frames[key] = frames.get(key, 0) + max(int(cuts[j + 1] - cuts[j]), 1)
            count[key] = count.get(key, 0) + 1
    sp = np.bincount(best[inside], minlength=K) + 0.5
    sp /= sp.sum()
    sil = m.optional_silence
    for (sym, j), col in m.emit_index_.items():
        if sym == sil:
            h = np.bincount(best[~inside], minlength=K) + 0.5
            m.weights_[col] = h / h.sum()
            continue
        h = hist.get((sym, j))
        if h is None or h.sum() == 0:
            continue
        m.weights_[col] = (1 - SEED_MIX) * h / h.sum() + SEED_MIX * sp
        m.self_loop_[col] = 1.0 - 1.0 / max(frames[(sym, j)] / count[(sym, j)], 1.05)
    w = np.maximum(m.weights_, m.weight_floor / K)
    m.weights_ = (w / w.sum(1, keepdims=True)).astype(np.float32)


def _bounds(segments):
    return np.array([[s.start, s.end] for s in segments], np.float64).reshape(-1, 2)


def _squeeze(inner, a, b, n):
    """``n - 1`` inner boundaries of ``n`` phones kept in order inside [a, b], each phone at
    least MIN_PHONE_S long (or an equal share of a shorter word)."""
    eps = min(MIN_PHONE_S, (b - a) / max(n, 1))
    lo = a + eps * np.arange(1, n)
    hi = b - eps * np.arange(n - 1, 0, -1)
    x = np.clip(np.sort(inner), lo, hi)
    for i in range(1, x.size):   # a handful per word
        x[i] = max(x[i], x[i - 1] + eps)
    return np.minimum(x, hi)


def combine(flat, seeded, ref, prior=None, last_from_prior=True):
    """The per-boundary median of three alignments of one utterance with the same words:
    the flat-start (or, given, the ``prior`` model's) one, the Sphinx-seeded self-trained
    one and the Sphinx model's ``ref``. Returns (words (n, 2), phones (m, 2), spreads):
    phone boundaries are the median of the three where the pretrained models' phones of
    the word are ``flat``'s (stress aside), else the mean of those that are, kept inside
    the word; ``spreads`` holds per word and per phone (n, 2) the range (s) of its
    start's and its end's estimates.

    Parameters
    ----------
    flat, seeded, ref : Alignment
    prior : Alignment, optional
        vqalign's English prior's alignment (:mod:`vqalign.align.prior`), taken in the
        flat start's place; ``flat`` then gives only the words' and phones' labels.
    last_from_prior : bool
        With ``prior``, the recording's last boundary is the prior's (False: the median's,
        as in noise, where the prior, trained on clean speech, errs most).

    Returns
    -------
    words : ndarray, shape (n_words, 2)
    phones : ndarray, shape (n_phones, 2)
    spreads : dict of str to ndarray
    """
    first = flat if prior is None else prior
    W = np.stack([_bounds(a.tiers["words"]) for a in (first, seeded, ref)])
    wf, wr, wp = _bounds(flat.tiers["words"]), W[2], W[0]
    words = np.median(W, axis=0)
    if prior is not None and last_from_prior and words.shape[0]:
        # the recording's last boundary is the prior's: the Sphinx model (as pocketsphinx)
        # lets the last phone take in a short trailing silence, and the seeded model
        # inherits that from the Sphinx segmentation, so there the two are one opinion.
        # (A corpus model, trained on every file's ends, keeps its median: measured worse.)
        words[-1, 1] = max(W[0, -1, 1], words[-1, 0] + MIN_PHONE_S)
    word_spread = W.max(axis=0) - W.min(axis=0)
    unit = flat.unit_tier
    pf, ps = _bounds(flat.tiers[unit]), _bounds(seeded.tiers[unit])
    labels = [s.label for s in flat.tiers[unit]]
    sph = ref.tiers.get("phones", [])
    pri = prior.tiers.get("phones", []) if prior is not None else []
    phones = np.empty_like(pf)
    phone_spread = np.empty((len(labels), 2))
    k = kp = i = 0
    for w in range(words.shape[0]):
        j = i
        while j < len(labels) and pf[j, 0] < wf[w, 1] - 1e-9:
            j += 1
        j = max(j, i + 1)
        n = j - i
        theirs, k = _phones_in(sph, k, wr[w, 0], wr[w, 1])
        if prior is None:
            est = [pf[i:j, 1][:-1]]
        else:
            ours, kp = _phones_in(pri, kp, wp[w, 0], wp[w, 1])
            est = [np.array([s.end for s in ours[:-1]])] if same_phones(ours, labels[i:j]) else []
        est.append(ps[i:j, 1][:-1])
        if same_phones(theirs, labels[i:j]):
            est.append(np.array([s.end for s in theirs[:-1]]))
        E = np.stack(est)
        inner = np.median(E, axis=0) if len(est) == 3 else E.mean(axis=0)
        a, b = words[w]
        x = _squeeze(inner, a, b, n)
        edges = np.concatenate([[a], x, [b]])
        phones[i:j, 0], phones[i:j, 1] = edges[:-1], edges[1:]
        rng = (E.max(0) - E.min(0)) if n > 1 else np.zeros(0)
        lo_sp = np.concatenate([[word_spread[w, 0]], rng])
        hi_sp = np.concatenate([rng, [word_spread[w, 1]]])
        phone_spread[i:j, 0], phone_spread[i:j, 1] = lo_sp, hi_sp
        i = j
    spreads = {"words": word_spread, "units": phone_spread}
    return words, phones, spreads


def combined_features(flat, seeded, spreads, unit):
    """Per word and per phone: the logit of the first model's confidence (the flat-start
    or the corpus model), of the seeded model's, log(1 + ms) of the larger spread of its
    start's and its end's estimates, and that spread times each logit
    (:data:`COMBINED_FEATURES`). Chosen on devdata's synthetic set and built-in synthetic
    sets, cross-validated by voice (AUC for an error over 50 ms); the refitted models'
    cross-validated AUCs are in ``CALIBRATION["report"]`` of the coefficient module.

    With the prior in the median (:func:`combine`), the spread is that of the prior's,
    the seeded and the Sphinx estimates. Scored on the 40 TIMIT dev files (word error over
    50 ms, fitted on synthetic speech only): these five cues 0.71, the spread alone 0.71
    (0.73 raw); on the synthetic sets cross-validated by voice 0.84 against 0.82, and for
    phones 0.76 against 0.67 (TIMIT 0.62 against 0.55), so the five are kept.

    Parameters
    ----------
    flat, seeded : Alignment
    spreads : dict
        From :func:`combine`.
    unit : str
        The unit tier's name.

    Returns
    -------
    dict of str to ndarray, shape (n, 5)
        ``"words"`` and ``"units"``.
    """
    out = {}
    for tier, name in (("words", "words"), ("units", unit)):
        cf = np.array([s.confidence for s in flat.tiers[name]], np.float64)
        cs = np.array([s.confidence for s in seeded.tiers[name]], np.float64)
        cf = np.where(np.isfinite(cf), cf, 0.5)
        cs = np.where(np.isfinite(cs), cs, 0.5)
        lf, ls = _logit(cf), _logit(cs)
        sp = np.log1p(1000.0 * spreads[tier].max(axis=1))
        out[tier] = np.column_stack([lf, ls, sp, sp * lf, sp * ls])
    return out


COMBINED_FEATURES = ("logit_conf_flat", "logit_conf_seeded", "log1p_spread_ms",
                     "spread_x_logit_flat", "spread_x_logit_seeded")


def merge(flat, seeded, ref, energy, hop_s, warnings=(), *, mode="self", energy_offset_s=0.0,
          ref_name="sphinx", prior=None, snr_db=None, last_from_prior=True):
    """The alignment of :func:`combine`: the flat one's words and phones at the median
    boundaries, with confidences from :func:`vqalign.align.confidence.predict` (a word over near-silence capped as
    in :mod:`vqalign.align.confidence`) and ``diagnostics["reference"]`` naming the three
    and holding their word boundaries. ``energy``: the frames' c0 (the near-floor check),
    its first frame at ``energy_offset_s``; ``warnings``: the utterance's own (the quality
    warnings are made again). ``mode`` "self": ``flat`` is the flat-start self-trained
    alignment (confidence model "combined"); "corpus": a corpus-trained model's
    ("corpus_combined").

    Parameters
    ----------
    flat, seeded, ref : Alignment
    energy : ndarray, shape (n_frames,)
    hop_s : float
    warnings : sequence of str
    mode : {"self", "corpus"}
    energy_offset_s : float
    ref_name : {"sphinx", "prior"}
        The pretrained model: the CMU Sphinx en-us model, or vqalign's own English prior
        (:mod:`vqalign.align.prior`).
    prior : Alignment, optional
        The prior's alignment, taken in the flat start's place in the median
        (:func:`combine`; ``mode`` "self" with the Sphinx model).
    snr_db : float, optional
        The recording's estimated SNR (:func:`vqalign.features.snr.estimate_snr_db`):
        with ``mode`` "self", the confidences are lowered in noise
        (:func:`vqalign.align.confidence.noise_adjusted`) and it is kept in
        ``diagnostics["snr_db"]``.
    last_from_prior : bool
        See :func:`combine`.

    Returns
    -------
    Alignment
        A copy of ``flat`` with the combined tiers.
    """
    unit = flat.unit_tier
    words, phones, spreads = combine(flat, seeded, ref, prior, last_from_prior)
    F = combined_features(flat, seeded, spreads, unit)
    conf = {}
    key = "combined" if mode == "self" else "corpus_combined"
    for tier in ("words", "units"):
        for tol in (50, 20):
            conf[(tier, tol)] = predict(F[tier], tier, tol, mode=key)
            if mode == "self":
                conf[(tier, tol)] = noise_adjusted(conf[(tier, tol)], snr_db)
    # words over near-silence (the share of their frames near the noise floor)
    e = np.asarray(energy, np.float64)
    lo, hi = np.quantile(e, (0.05, 0.95)) if e.size else (0.0, 1.0)
    near = np.clip((e - lo) / max(hi - lo, 1e-6), 0.0, 1.0) < NEAR_FLOOR
    c = np.concatenate([[0], np.cumsum(near)])

    def near_share(a, b):
        a, b = a - energy_offset_s, b - energy_offset_s
        fa = int(np.clip(round(a / hop_s), 0, e.size))
        fb = int(np.clip(round(b / hop_s), fa + 1, max(e.size, fa + 1)))
        fb = min(fb, e.size)
        return float((c[fb] - c[fa]) / max(fb - fa, 1))

    silent = np.array([near_share(a, b) > SILENT_FRACTION for a, b in words], bool)
    labels = [s.label for s in flat.tiers[unit]]
    w_of_p = np.searchsorted(words[:, 1], (phones[:, 0] + phones[:, 1]) / 2)
    wsil = (silent[np.minimum(w_of_p, len(silent) - 1)] if len(silent)
            else np.zeros(len(phones), bool))
    for tol in (50, 20):
        conf[("words", tol)][silent] = np.minimum(conf[("words", tol)][silent], SILENT_CAP)
        conf[("units", tol)][wsil] = np.minimum(conf[("units", tol)][wsil], SILENT_CAP)
    out = copy.copy(flat)
    out.tiers = {
        "words": [Segment(float(a), float(b), s.label, float(p)) for (a, b), s, p in
                  zip(words, flat.tiers["words"], conf[("words", 50)])],
        unit: [Segment(float(a), float(b), lab, float(p)) for (a, b), lab, p in
               zip(phones, labels, conf[("units", 50)])],
    }
    d = dict(flat.diagnostics)
    if snr_db is not None:
        d["snr_db"] = round(float(snr_db), 1)
    block = dict(d.get("confidence") or {})

    def rounded(a):
        return [None if not math.isfinite(v) else round(float(v), 4) for v in a]

    block.update({"mode": "combined" if mode == "self" else "corpus-combined",
                  "words_20ms": rounded(conf[("words", 20)]),
                  f"{unit}_20ms": rounded(conf[("units", 20)]),
                  "combined_features": list(COMBINED_FEATURES),
                  "combined_word_features": [rounded(r) for r in F["words"]],
                  f"combined_{unit}_features": [rounded(r) for r in F["units"]]})
    d["confidence"] = block
    base = "flat" if mode == "self" else "corpus"
    model = "Sphinx en-us model" if ref_name == "sphinx" else "vqalign English prior"
    seed = "Sphinx" if ref_name == "sphinx" else "prior"
    first = "flat-start" if prior is None else "prior's"
    # the second opinion: a seeded self-trained model, or (a corpus model's median,
    # vqalign.align.corpus_start) the prior, which names itself in its diagnostics
    second = (seeded.diagnostics or {}).get("opinion", "seeded")
    pairs = [(base, flat), (second, seeded), (ref_name, ref)]
    if prior is not None:
        pairs.insert(1, ("prior", prior))
    d["reference"] = {
        "method": (f"per-boundary median of the {first} and the {seed}-seeded "
                   f"self-trained models and the {model}" if mode == "self" else
                   f"per-boundary median of the corpus model, vqalign's English prior and the "
                   f"{model}" if second == "prior" else
                   "per-boundary median of the corpus model, a model self-trained on the "
                   f"file from the {model}'s segmentation, and the {seed} model"),
        "words": {name: [[round(s.start, 4), round(s.end, 4)] for s in a.tiers["words"]]
                  for name, a in pairs},
        "seeded_em_history": seeded.diagnostics.get("em_history"),
    }
    warns = list(warnings)
    for w in np.flatnonzero(silent):
        s = out.tiers["words"][w]
        warns.append(f"words: {s.label!r} at {s.start:.2f}-{s.end:.2f} s lies over "
                     f"near-silence (most of its frames are near the recording's noise floor); "
                     f"it is probably misplaced (confidence set to <= {SILENT_CAP:g}): check "
                     "the transcript against the audio there")
    d["warnings"] = warns
    out.diagnostics = d
    add_warnings(out)
    return out


# --------------------------------------------------------------------------- the pass
def opinions(p, *, hop_s, train_one, decode, required=False, own=None, short_pauses=False):
    """The two other opinions of the prepared utterance ``p`` (in its frames' time): a
    model self-trained on ``p`` from a pretrained model's phone segmentation, and the
    pretrained model's own alignment. The pretrained model is the Sphinx en-us model, or
    ``own``.

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
    hop_s : float
        Frame hop (s).
    train_one : callable
        ``train_one(p, seed=(name, fn)) -> (model, history, selection, X, frame_off)``:
        the single-utterance recipe from a start given (:func:`vqalign.align.recipe.train`).
    decode : callable
        ``decode([p], X, frame_off, selection, model=..., history=...) -> [Alignment]``.
    required : bool
        Without pocketsphinx: a ParameterError (reference="sphinx") instead of None.
    own : callable, optional
        ``own(p, hop_s) -> (Alignment, segments)`` (:func:`model_reference` of vqalign's
        English prior, :func:`vqalign.align.prior.source`): used instead of the
        Sphinx model.
    short_pauses : bool
        The Sphinx model places silences between words more readily, where the audio is
        quiet (:data:`SHORT_PAUSE_SILPROB`; the single-file median),
        unless the recording is :func:`noisy`.

    Returns
    -------
    (seeded, reference) : Alignment, Alignment
        Or (None, reason) when they cannot be made.
    """
    if own is not None:
        ref, segs = own(p, hop_s)
        seed_name = "prior segmentation"
    else:
        if not available():
            if required:
                raise ParameterError('reference="sphinx" needs pocketsphinx: pip install '
                                     'pocketsphinx (or pass reference="auto" / "none")')
            warn_missing_sphinx()
            return None, MISSING_SPHINX
        # short pauses in clean recordings only: in noise the pause bias places them
        # (TIMIT dev in white noise at 10 dB, words 22.50 -> 23.11 ms with both)
        ref, segs = sphinx_reference(p, hop_s, short_pauses=short_pauses and not noisy(p))
        seed_name = "Sphinx segmentation"
        if ref is not None and noisy(p):
            # the opinion with the pause bias; the seeded model keeps the plain
            # segmentation (see PAUSE_BIAS_BELOW_DB)
            biased, _ = sphinx_reference(p, hop_s, pause_bias=True)
            ref = biased if biased is not None else ref
    if ref is None:
        return None, segs
    model, history, sel, X, offs = train_one(
        p, seed=(seed_name, lambda m, s: segmentation_start(m, segs, s)))
    seeded = decode([p], X, offs, sel, history=history, model=model)[0]
    if isinstance(seeded, Exception):
        return None, f"the seeded model failed ({seeded})"
    return seeded, ref


def prior_may_vote(y16, range_db=None) -> bool:
    """Whether vqalign's English prior takes part in a median on audio ``y16``: its
    loudness range (``range_db`` when known: the audio as given, before any denoising;
    else :func:`vqalign.align.utterance.loudness_range_db` of ``y16``) is at least
    :data:`PRIOR_MIN_RANGE_DB`."""
    r = range_db if range_db is not None else loudness_range_db(frame_db(y16))
    return r is not None and r >= PRIOR_MIN_RANGE_DB


def with_reference(p, flat, *, hop_s, opinions, ref_name="sphinx", prior=None):
    """The flat-start alignment ``flat`` of ``p`` combined with the two other opinions
    (``opinions(p) -> (seeded, reference)``, see :func:`opinions`): the median of the
    three (:func:`merge`); ``flat`` itself, with the reason in
    ``diagnostics["reference"]``, when the pretrained model (``ref_name``) cannot be
    used. ``prior(p, hop_s) -> (Alignment, segments)`` (vqalign's English prior,
    :func:`vqalign.align.prior.source`), when given, takes the flat start's place in the
    median; the flat start keeps it when the prior cannot align ``p`` or the audio is
    noisier than :data:`PRIOR_MIN_RANGE_DB` allows. With the Sphinx model, in a clean
    recording (not :func:`noisy`), two words the median joins over a quiet stretch are
    parted (:func:`vqalign.align.refine.split_at_pauses`)."""
    seeded, ref = opinions(p)
    if seeded is None:
        flat.diagnostics["reference"] = f"none: {ref}"
        return flat
    own = None
    if prior is not None and p.y16 is not None and prior_may_vote(p.y16, p.range_db):
        own = prior(p, hop_s)[0]
    out = merge(flat, seeded, ref, p.energy, hop_s, list(p.warnings), ref_name=ref_name,
                prior=own, snr_db=getattr(p, "snr_db", None), last_from_prior=not noisy(p))
    if ref_name == "sphinx" and not noisy(p):
        # the words the median joins over a quiet stretch parted (a short pause none of
        # the three placed); the aligner's refine_prepared then moves the pause's edges
        split_at_pauses(out, p.y16, FEATURE_SR)
    return out


def corpus_opinion(p, res, warns, *, hop_s, prepare, length_error, opinions, ref_name="sphinx"):
    """A fitted model's alignment ``res`` of ``p`` (on the whole recording) combined with
    two more of the same audio, made by a self-trained helper: a model self-trained on it
    from the Sphinx en-us model's segmentation and that model's own (the per-boundary
    median of the three). The corpus model of a few minutes of speech is weak (devdata, 40
    utterances: 14.7 and 29.8 ms mean word-boundary error on two subsets; the median 11.6
    and 13.6 ms).

    Parameters
    ----------
    p : vqalign.align.utterance.Utterance
        The utterance (its audio, or the audio file it came from for a store-backed one).
    res : Alignment
        The fitted model's alignment of ``p``.
    warns : list of str
        The utterance's own warnings.
    hop_s : float
        The fitted model's frame hop (s).
    prepare : callable
        ``prepare(y, sr, None, name, tokens=tokens) -> Utterance``: the helper's
        preparation (:meth:`vqalign.align.Aligner.prepare`).
    length_error : callable
        ``length_error(q) -> Exception or None`` of the helper.
    opinions : callable
        ``opinions(q) -> (seeded, reference)`` of the helper (:func:`opinions`).
    ref_name : {"sphinx", "prior"}
        The pretrained model the helper's opinions come from.

    Returns
    -------
    Alignment
        The combined one, or ``res`` with the reason in ``diagnostics["reference"]``.
    """
    y, sr, off = p.y16, FEATURE_SR, float(p.offset_s)
    if y is None:                       # a store-backed utterance: read its audio
        if p.source is None:
            res.diagnostics["reference"] = "none: the audio file is not known"
            return res
        try:
            y, sr = load_audio(p.source)   # conditioned and resampled by prepare
        except VQAlignError as exc:    # moved or unreadable since the features
            res.diagnostics["reference"] = f"none: {exc}"
            return res
        off = 0.0
    try:
        q = prepare(y, sr, None, p.name, tokens=p.tokens)
    except VQAlignError as exc:
        res.diagnostics["reference"] = f"none: {exc}"
        return res
    if length_error(q) is not None:
        res.diagnostics["reference"] = "none: the audio is too short to self-train on"
        return res
    try:
        seeded, ref = opinions(q)
    except VQAlignError as exc:
        seeded, ref = None, str(exc)
    if seeded is None:
        res.diagnostics["reference"] = f"none: {ref}"
        return res
    dur = p.full_duration if p.full_duration is not None else p.duration
    for a in (seeded, ref):
        shift_tiers(a, off + float(q.offset_s), dur)
    return merge(res, seeded, ref, p.energy, hop_s, warns, mode="corpus",
                 energy_offset_s=off, ref_name=ref_name)
