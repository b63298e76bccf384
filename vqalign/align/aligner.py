"""Forced alignment with a tied-mixture (semi-continuous) HMM.

Audio plus transcript in, word and phone (or character) timings out::

    from vqalign.align import Aligner, align
    a = align(y, "the cat sat on the mat", sr=16000)          # one utterance, self-trained
    model = Aligner(unit="phones").fit(corpus)                 # corpus: (y, sr, text) tuples
    result = model.align(y, text, sr=16000)
    result.tiers["words"]                                      # [Segment(start, end, label)]

The recipe: 39-D MFCC + deltas with per-utterance CMVN; shared diagonal Gaussians
from a VQ codebook; per-state mixture weights over them; a linear-chain HMM per
utterance (``states_per_unit`` states per phone or character, an optional
one-state silence between words and at both ends, self-loop probabilities from
expected durations); EM with scaled forward-backward from a flat start (silence
from each utterance's quietest frames, every speech state from the rest; a model
self-trained on one utterance starts each phone from the frames of its broad class,
vowel-like / fricative / other, and its silence also from the frames before and after
the speech); a final Viterbi pass. A fitted model is shared by every utterance it aligns.

One file alone, two ways (the second is the better one when other recordings of the
same speakers and channel exist):

* ``align(y, text, sr=sr)``: everything learned from this file (codebook, weights,
  self loops), from the broad-class flat start;
* ``align(y, text, sr=sr, codebook=FILE)`` with a codebook made by ``vqalign codebook``
  on the aligner's features of the user's corpus (``vqalign features --recipe aligner
  --hop 0.01``): the seed's recipe, the codebook's Gaussians kept and per-utterance EM on
  the mixture weights only (up to n_iter=30 steps, self loops from durations,
  ``SEEDED_UPDATE``), from the same broad-class flat start; or
  ``vqalign align --model FILE`` with a model from ``vqalign align-corpus``, which
  decodes with the corpus-trained weights.

Long leading and trailing silence is left out before the model sees the audio
(``trim_silence``, :func:`speech_span`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign._validation import (
    check_audio,
    check_positive_int,
    check_random_state,
    check_sample_rate,
)
from vqalign.exceptions import AlignmentError, ParameterError, VQAlignError
from vqalign.history import History

MODEL_VERSION = 1
UNITS = ("phones", "chars")
# beyond this many seconds an utterance is aligned as one long recording (_longform)
LONG_AUDIO_S = 90.0
# A model self-trained on one utterance (unfitted Aligner, phones, hop_length=None)
# works at a 10 ms hop and seeds its silence from the quietest 5 % of the frames (a
# corpus: 5 ms and 15 %). Measured on 8 synth utterances x 10 seeds (docs/accuracy.md):
# 73 -> 39 ms mean word-boundary error. With one utterance the silence column has no
# other data: a broader seed takes in stop closures and weak fricatives, which EM then
# labels as pauses and shifts the following words by one.
SINGLE_HOP_S = 0.010
SINGLE_SILENCE_QUANTILE = 0.05
#: EM updates of one utterance self-trained from a pretrained codebook (``codebook=``):
#: the seed's recipe, mixture weights only, self loops from durations. Measured on devdata
#: (codebook of 1024 from the four other voices, the 20 slt files aligned one at a time):
#: 107.7 ms mean word-boundary error with "w", 129.0 ms when self loops are re-estimated
#: too ("wt"); 42.3 ms with "w" and the broad-class start (BROAD_PRIOR)
SEEDED_UPDATE = "w"
SIL = "sil"
FEATURE_SR = 16000
#: fitted-model feature cache: at most this many utterances are kept
CACHE_SIZE = 256


#: white noise (RMS, full scale 1.0) added before the front end
#: of a corpus-trained model: none (devdata corpus mode: 13.5 ms mean word error without,
#: 13.7 ms at 3e-4, 15.2 ms at 1e-3; 12-utterance synth corpora, seeds 0-2: 11.1 ms
#: without, one seed at 52.9 ms with 3e-4)
DITHER = 0.0
#: of a model self-trained on the audio it aligns (one utterance or one long
#: recording): it sees few silent frames of each kind, and digital silence hurts it most
#: (devdata, 40 utterances alone: 182 ms mean word error without dither, 100 ms at
#: 3e-4, 87 ms at 1e-3)
SELF_DITHER = 1e-3


#: share of (near-)zero samples above which the audio counts as having digital silence
DIGITAL_SILENCE = 0.01


#: frames up to which a trained codebook is kept for the next model of the same frames
CODEBOOK_CACHE_FRAMES = 60000


def features(y16: np.ndarray, hop_s: float, delta_width: int = 1, dither: float = DITHER):
    """The aligner's front end on 16 kHz audio: ((T, 39) float32 features, (T,) raw c0).

    13 MFCCs (:func:`vqalign.features.mfcc`, librosa convention, 25 ms window, 40 mel
    bands) with deltas and delta-deltas (:func:`vqalign.features.delta`, regression over
    +-``delta_width`` frames: wider windows smear boundaries) and per-utterance CMVN
    (:func:`vqalign.features.cmvn`). The raw c0 is the loudness silence is seeded from.
    ``dither``: RMS of the white noise added first to audio with digital silence (more
    than 1 % of its samples exactly zero); 0: never.
    """
    from vqalign.features import cmvn, delta, mfcc  # noqa: PLC0415
    if dither and np.mean(np.abs(y16) < 1e-7) > DIGITAL_SILENCE:
        # Digital silence makes every silent frame the same point: zero variance after
        # CMVN and a silence Gaussian that swallows its neighbours (measured on devdata
        # utterances joined by zero pauses: 232 ms mean word error; with dither 19 ms).
        # Kaldi dithers always for the same reason; here only audio that has digital
        # silence is dithered (on the built-in synthesizer's noisy pauses dither cost
        # 37 -> 47 ms). Fixed seed: same audio, same result.
        noise = np.random.default_rng(0).standard_normal(y16.size).astype(np.float32)
        y16 = y16 + np.float32(dither) * noise
    c = mfcc(y16, FEATURE_SR, n_mfcc=13, n_mels=40, win_length=0.025,
             hop_length=int(round(hop_s * FEATURE_SR)), center=True)
    X = cmvn(delta(c, order=2, width=delta_width))
    return np.ascontiguousarray(X, dtype=np.float32), c[:, 0].astype(np.float32)


#: leading or trailing silence longer than this (s) is left out of the alignment (devdata's
#: edges: at most 0.26 s leading, 0.56 s trailing silence; none is cut)
EDGE_SILENCE_S = 0.75
#: silence (s) kept next to the speech when an edge is left out
EDGE_MARGIN_S = 0.25
#: frames (10 ms) louder than noise floor + max(EDGE_MIN_DB, EDGE_RANGE * range) are speech
EDGE_MIN_DB = 8.0
EDGE_RANGE = 0.2
#: a share of samples at the peak amplitude above which the audio counts as clipped
CLIPPED_SHARE = 1e-3
#: DC offset (|mean|) relative to the RMS above which it is reported and removed (devdata:
#: at most 0.038, none is touched; pocketsphinx-testdata's LibriVox files: 0.10-0.17,
#: removing it took single mode from 65.8 to 76.6 % of word boundaries within 50 ms of
#: pocketsphinx)
DC_OFFSET = 0.05


def frame_db(y16: np.ndarray, hop: int = 160, win: int = 400) -> np.ndarray:
    """Loudness (dB re full scale) of 25 ms frames every 10 ms: (n_frames,) float64.

    Frame ``i`` covers samples ``[i * hop, i * hop + win)`` (the last frames shorter);
    computed from one cumulative sum of squares (no per-frame loop)."""
    c = np.concatenate([[0.0], np.cumsum(np.square(y16, dtype=np.float64))])
    n = max(1, int(np.ceil(y16.size / hop)))
    a = np.arange(n) * hop
    b = np.minimum(a + win, y16.size)
    e = (c[b] - c[a]) / np.maximum(b - a, 1)
    return 10.0 * np.log10(e + 1e-12)


def speech_span(y16: np.ndarray, *, min_edge_s: float = EDGE_SILENCE_S,
                margin_s: float = EDGE_MARGIN_S):
    """Samples ``(a, b)`` of 16 kHz audio that hold its speech, or None to keep it all.

    Energy VAD: 10 ms frames louder than the noise floor (10th percentile of the frame
    loudness) by ``max(EDGE_MIN_DB, EDGE_RANGE * (95th percentile - floor))`` dB, in runs of
    at least 50 ms, are speech. A leading (trailing) stretch without speech longer than
    ``min_edge_s`` is cut to ``margin_s`` before the first (after the last) speech frame.
    Audio with less than 10 dB between floor and speech is kept whole (no clear silence).
    """
    db = frame_db(y16)
    if db.size < 10:
        return None
    floor, loud = np.percentile(db, [10, 95])
    if loud - floor < 10.0:
        return None
    on = db > floor + max(EDGE_MIN_DB, EDGE_RANGE * (loud - floor))
    run = 5  # 50 ms: a click or a breath's peak is not speech onset
    c = np.concatenate([[0], np.cumsum(on)])
    full = np.flatnonzero(c[run:] - c[:-run] == run)  # frames i..i+run-1 all loud
    if full.size == 0:
        return None
    first, last = int(full[0]), int(full[-1]) + run - 1
    hop, n = 160, y16.size
    a_s, b_s = first * hop, min(n, last * hop + 400)
    a = b = None
    if a_s / FEATURE_SR > min_edge_s:
        a = a_s - int(margin_s * FEATURE_SR)
    if (n - b_s) / FEATURE_SR > min_edge_s:
        b = b_s + int(margin_s * FEATURE_SR)
    if a is None and b is None:
        return None
    return (a or 0, n if b is None else b)


#: speech time (energy VAD) per phone of the transcript above which speech is reported as
#: missing from the transcript (devdata: 43-111 ms per phone, median 84 ms; three synth
#: sentences with the middle one left out of the transcript: 109-132 ms)
MAX_S_PER_PHONE = 0.150
#: pauses (s) that separate the stretches of speech listed in that warning
ISLAND_PAUSE_S = 0.25


def speech_frames(y16: np.ndarray) -> np.ndarray:
    """Boolean (n_frames,) of 10 ms frames the energy VAD of :func:`speech_span` calls
    speech (all False when the audio has under 10 dB between noise floor and speech)."""
    db = frame_db(y16)
    floor, loud = np.percentile(db, [10, 95])
    if loud - floor < 10.0:
        return np.zeros(db.size, bool)
    return db > floor + max(EDGE_MIN_DB, EDGE_RANGE * (loud - floor))


def speech_stretches(on: np.ndarray, pause_s: float = ISLAND_PAUSE_S, hop_s: float = 0.010):
    """(start_s, end_s) of the runs of speech frames ``on`` separated by pauses longer
    than ``pause_s``."""
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > int(round(pause_s / hop_s)))
    st = np.concatenate([[idx[0]], idx[cut + 1]])
    en = np.concatenate([idx[cut], [idx[-1]]]) + 1
    return [(round(a * hop_s, 2), round(b * hop_s, 2)) for a, b in zip(st, en)]


def missing_speech_warning(on: np.ndarray, n_phones: int, offset_s: float = 0.0):
    """A warning when the audio holds far more speech than ``n_phones`` take (more than
    ``MAX_S_PER_PHONE`` of VAD speech per phone), naming the stretches of speech; None
    otherwise."""
    speech = float(np.count_nonzero(on)) * 0.010
    if n_phones <= 0 or speech <= MAX_S_PER_PHONE * n_phones:
        return None
    parts = ", ".join(f"{a + offset_s:.2f}-{b + offset_s:.2f} s"
                      for a, b in speech_stretches(on)[:12])
    return (f"the audio holds {speech:.1f} s of speech (energy VAD) but the transcript's "
            f"{n_phones} phones would take about {0.085 * n_phones:.1f} s "
            f"({1000 * speech / n_phones:.0f} ms of speech per phone, more than "
            f"{1000 * MAX_S_PER_PHONE:.0f} ms): part of the speech is probably missing from "
            f"the transcript and the words are stretched over it; speech at {parts}: check "
            "which of these the transcript lacks")


#: a self-trained model's silence also starts from the frames before the first and after
#: the last stretch of speech the energy VAD finds (not only the quietest 5 %): with
#: BROAD_PRIOR, pocketsphinx-testdata single mode 70.7 -> 76.6 % within 50 ms (the first
#: word no longer starts in the leading noise); devdata 40 utterances 34.1 -> 33.8 ms
#: (at BROAD_PRIOR 0.3)
EDGE_QUIET = True


def _edge_silence(y16, n_frames, hop_s):
    """(n_frames,) bool: feature frames (centred every ``hop_s``) more than 20 ms before
    the first / after the last 50 ms run of VAD speech frames."""
    on = speech_frames(y16)
    run = 5
    c = np.concatenate([[0], np.cumsum(on)])
    full = np.flatnonzero(c[run:] - c[:-run] == run)
    out = np.zeros(n_frames, bool)
    if full.size == 0:
        return out
    first = full[0] * 0.010 - 0.020
    last = (full[-1] + run - 1) * 0.010 + 0.025 + 0.020
    t = np.arange(n_frames) * hop_s
    out[(t < first) | (t > last)] = True
    return out


def condition_audio(y: np.ndarray, sr: int, name=None):
    """Input checks that need no model: (audio, warnings). A DC offset is removed
    (and reported); clipping and a narrow band (sr < 16 kHz) are reported."""
    warn = []
    what = f"audio {name!r}" if name else "the audio"
    mean = float(np.mean(y, dtype=np.float64))
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if abs(mean) > DC_OFFSET * rms and abs(mean) > 1e-4:
        y = (y - np.float32(mean)).astype(np.float32)
        warn.append(f"{what} has a DC offset of {mean:+.4f} (full scale 1.0, "
                    f"{100 * abs(mean) / rms:.0f} % of its RMS); it was removed before "
                    "alignment (a high-pass filter at recording avoids it)")
    a = np.abs(y)
    peak = float(a.max())
    if peak > 0.3:
        at_peak = int(np.count_nonzero(a >= peak * 0.999))
        if at_peak > max(3, CLIPPED_SHARE * y.size):
            warn.append(f"{what} is clipped: {at_peak} samples ({100 * at_peak / y.size:.2f} %) "
                        f"sit at the peak amplitude {peak:.3f}; boundaries near loud sounds "
                        "may be less accurate (record at a lower gain)")
    if sr < FEATURE_SR:
        warn.append(f"{what} is sampled at {sr} Hz (band up to {sr / 2000:g} kHz, e.g. "
                    f"telephone audio); it is upsampled to {FEATURE_SR} Hz and has no energy "
                    f"above {sr / 2000:g} kHz, so fricatives are weaker cues: check the "
                    "boundaries")
    return y, warn


def resample(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono audio at the aligner's 16 kHz (soxr)."""
    if sr == FEATURE_SR:
        return y
    import soxr  # noqa: PLC0415
    return soxr.resample(y, sr, FEATURE_SR).astype(np.float32)


def too_short_message(n_states, n_frames, hop_s, what="transcript"):
    return (f"{what} has {n_states} HMM states but the audio has only {n_frames} frames "
            f"({n_frames * hop_s:.2f} s at {1000 * hop_s:g} ms hop; the {what} needs at least "
            f"{n_states * hop_s:.2f} s, one frame per state); shorten the {what}, use fewer "
            f"states per unit, or check that the audio and {what} belong together")


class _LRU(dict):
    """A dict that forgets its oldest entries beyond ``CACHE_SIZE``."""

    def __setitem__(self, key, value):
        if key in self:
            del self[key]
        super().__setitem__(key, value)
        while len(self) > CACHE_SIZE:
            del self[next(iter(self))]


# --------------------------------------------------------------------------- helpers
def _alignment_classes():
    from vqalign.align.alignment import Alignment, Segment  # noqa: PLC0415
    return Alignment, Segment


@dataclass
class _Tokens:
    words: list
    units: list
    unit: str
    oov: list = field(default_factory=list)


def _tokenize(text, unit, lexicon, oov):
    """Words and their units (phones or characters) via the shared tokenizer."""
    from vqalign.align.text import tokenize_transcript  # noqa: PLC0415
    if not isinstance(text, str):
        raise ParameterError(f"transcript must be a str, got {type(text).__name__}; read a "
                             "file with vqalign.align.text.read_transcript(path)")
    tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
    return _Tokens(list(tr.words), [list(u) for u in tr.units], unit, list(tr.oov))


def _audio_key(y: np.ndarray, sr: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(sr).encode())
    h.update(np.ascontiguousarray(y).view(np.uint8))
    return h.hexdigest()


def _load_audio(path):
    try:
        from vqalign.io.audio import load_audio  # noqa: PLC0415
    except ImportError:
        load_audio = None
    if load_audio is not None:
        return load_audio(path, sr=FEATURE_SR)
    import soundfile as sf  # noqa: PLC0415
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise ParameterError(f"cannot read audio file {path}: {exc}") from None
    return y.mean(axis=1).astype(np.float32), int(sr)


def _as_items(corpus):
    """Normalise corpus items to (audio, sr, text, name)."""
    out = []
    for i, item in enumerate(corpus):
        if not isinstance(item, (tuple, list)):
            raise ParameterError(f"corpus item {i} is a {type(item).__name__}; give "
                                 "(audio, sr, transcript) or (path, transcript) tuples")
        if len(item) == 3:
            y, sr, text = item
            name = None
            if isinstance(y, (str, Path)):
                name = str(y)
                y, sr = _load_audio(y)
        elif len(item) == 2:
            path, text = item
            if not isinstance(path, (str, Path)):
                raise ParameterError(f"corpus item {i}: a 2-tuple must be (path, transcript), "
                                     f"got ({type(path).__name__}, ...)")
            y, sr = _load_audio(path)
            name = str(path)
        else:
            raise ParameterError(f"corpus item {i} has {len(item)} fields; give (audio, sr, "
                                 "transcript) or (path, transcript)")
        out.append((y, sr, text, name))
    return out


def _Threads(n):
    """The engine's kernels on ``n`` threads inside the block."""
    from vqalign.hmm.threads import threads  # noqa: PLC0415
    return threads(n)


@dataclass
class _Prepared:
    """An utterance ready for the model: features, tokens, duration."""

    X: np.ndarray
    energy: np.ndarray
    tokens: _Tokens
    duration: float
    sr: int
    name: str | None
    warnings: list
    y16: np.ndarray | None = None
    key: str | None = None
    #: start (s) of the frames X in the recording: leading silence left out (speech_span)
    offset_s: float = 0.0
    #: length (s) of the whole recording (None: ``duration``, nothing left out)
    full_duration: float | None = None
    #: the audio file the utterance was read from, when known (a store-backed one)
    source: str | None = None


# --------------------------------------------------------------------------- Aligner
class Aligner:
    """Tied-mixture HMM forced aligner.

    Parameters
    ----------
    unit : {"phones", "chars"}
        ``"phones"``: English words pronounced with CMUdict (or ``lexicon``), words
        missing from it guessed by letter-to-sound rules and reported. ``"chars"``:
        one unit per letter, any script, no lexicon.
    n_codes : int
        Shared Gaussians (size of the VQ codebook), e.g. 256-1024.
    states_per_unit : int
        HMM states per phone or character (left to right).
    n_iter : int
        Maximum EM iterations (stops earlier when the log-likelihood per frame
        changes by less than ``tol`` relatively).
    hop_length : float or None
        Frame hop in seconds. None: 5 ms for phones, 10 ms for chars. With phones,
        5 ms (and +-1-frame deltas) measured better boundaries on the dev set than
        10 ms (15.2 vs 15.7 ms mean word-boundary error, 77 vs 73 % within 20 ms)
        at about twice the cost; with chars (several letters per sound, e.g. "ll")
        the 3-states-per-letter minimum duration at 5 ms is too weak and whole words
        were squeezed, so chars keep 10 ms. An unfitted Aligner (a model self-trained
        on each utterance) uses 10 ms with phones too: measured on synthesized
        utterances, one utterance gives too few frames per state at 5 ms (see
        ``SINGLE_HOP_S``).
    lexicon : Lexicon, optional
        Pronunciations merged over CMUdict (unit="phones").
    codebook : str, Path or array (n_codes, 39), optional
        A VQ codebook to start the shared Gaussians from instead of training one. An
        unfitted Aligner with a codebook aligns each utterance by the seed's recipe:
        the codebook's Gaussians, EM on the mixture weights only (``n_iter`` steps),
        self loops from durations.
    silence : bool
        Optional silence between words and at both ends.
    random_state : int or Generator
    n_jobs : int
        Threads for the engine's kernels.
    keep_paths : bool
        Keep every EM step's boundaries in ``diagnostics["em_paths"]`` (mode a).
    top_n : int
        Gaussians evaluated per frame (the rest are taken as zero).
    update_gaussians : int
        In corpus mode, re-estimate the shared Gaussians' means and variances every
        this many EM steps (0: never). Measured on the dev set: 3 gives 13.2 ms mean
        word-boundary error and 80 % within 20 ms, against 15.2 ms and 77 % without,
        for about 50 % more training time. A single utterance (and the opening
        window of a long one) keeps its codebook Gaussians: too few frames per
        Gaussian, and no measured gain.
    oov : {"g2p", "error"}
        What to do with words missing from the lexicon.
    tol : float
        Relative change of the per-frame log-likelihood that stops EM.
    weight_floor : float
        Floor of the mixture weights, relative to 1 / n_codes.
    dither : float, optional
        RMS of the white noise added to the audio before the front end (digital silence
        otherwise collapses to one point). None: 0 for a corpus-trained model (kept in
        the saved model), 1e-3 when self-training on the audio being aligned.
    trim_silence : bool
        Leave long leading and trailing silence out of the alignment (audio up to 90 s):
        an edge without speech (energy VAD, :func:`speech_span`) longer than 0.75 s is cut
        to 0.25 s before it reaches the model, and the times are shifted back. Without it
        a self-trained model stretches the first and last words over the silence
        (synth with 0.8 s / 1.5 s of noise added at the edges: first word at 0.00 s, the
        last words in the trailing silence). ``diagnostics["speech_span_s"]`` gives the
        part aligned.
    reference : {"auto", "sphinx", None}
        A self-trained English alignment (unit="phones", one utterance) is combined with
        two more: a second model self-trained from the CMU Sphinx en-us model's phone
        segmentation, and that model's own alignment (the wheel of pocketsphinx, ``pip
        install "vqalign[sphinx]"``); every boundary is the median of the three
        (:mod:`vqalign.align._reference`; devdata single files 20.5 -> 14.5 ms mean
        word-boundary error). "auto": when pocketsphinx is installed; "sphinx": an error
        without it; None: the flat-start self-training alone. Not with ``codebook``
        (the seed's recipe) nor a fitted model.
    """

    def __init__(self, unit="phones", *, n_codes=256, states_per_unit=3, n_iter=30,
                 hop_length=None, lexicon=None, codebook=None, silence=True, random_state=0,
                 n_jobs=2, keep_paths=False, top_n=8, update_gaussians=3, oov="g2p",
                 tol=1e-4, weight_floor=1e-4, dither=None, trim_silence=True,
                 reference="auto"):
        self.unit = unit
        self.n_codes = n_codes
        self.states_per_unit = states_per_unit
        self.n_iter = n_iter
        self.hop_length = hop_length
        self.lexicon = lexicon
        self.codebook = codebook
        self.silence = silence
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.keep_paths = keep_paths
        self.top_n = top_n
        self.update_gaussians = update_gaussians
        self.oov = oov
        self.tol = tol
        self.weight_floor = weight_floor
        self.dither = dither
        self.trim_silence = trim_silence
        self.reference = reference

    # ------------------------------------------------------------------ validation
    def _check_params(self, *, training=False):
        if self.unit not in UNITS:
            raise ParameterError(f"unit={self.unit!r} is not supported; use 'phones' (English, "
                                 "CMUdict) or 'chars' (any script, no lexicon)")
        check_positive_int(self.n_codes, "n_codes", minimum=2)
        check_positive_int(self.states_per_unit, "states_per_unit")
        if self.states_per_unit > 8:
            raise ParameterError(f"states_per_unit={self.states_per_unit} is more than 8; "
                                 "use 1-5 states per unit")
        check_positive_int(self.n_iter, "n_iter", minimum=0)
        check_positive_int(self.top_n, "top_n")
        check_positive_int(self.n_jobs, "n_jobs")
        check_positive_int(self.update_gaussians, "update_gaussians", minimum=0)
        hop = self.hop_length
        if hop is None:
            fitted = getattr(self, "model_", None) is not None
            hop = 0.005 if self.unit == "phones" and (training or fitted) else SINGLE_HOP_S
        if not isinstance(hop, (int, float)) or isinstance(hop, bool) or not 0.002 <= hop <= 0.05:
            raise ParameterError(f"hop_length={hop!r} s is outside [0.002, 0.05]; use 0.010 "
                                 "(10 ms) or 0.005 (5 ms)")
        if round(hop * FEATURE_SR) != hop * FEATURE_SR:
            raise ParameterError(f"hop_length={hop} s is not a whole number of samples at "
                                 f"{FEATURE_SR} Hz; use e.g. 0.010 or 0.005")
        self.hop_ = float(hop)
        if self.dither is not None:
            if isinstance(self.dither, bool) or not (isinstance(self.dither, (int, float))
                                                     and 0 <= self.dither < 0.1):
                raise ParameterError(f"dither={self.dither!r}; use a noise RMS in [0, 0.1), "
                                     f"e.g. {DITHER} (0: none)")
            self.dither_ = float(self.dither)
        elif training or getattr(self, "model_", None) is not None:
            self.dither_ = float(getattr(self, "_model_dither", DITHER))
        else:
            self.dither_ = SELF_DITHER
        if self.oov not in ("g2p", "error"):
            raise ParameterError(f"oov={self.oov!r}; use 'g2p' (guess from spelling, reported) "
                                 "or 'error'")
        if self.reference not in ("auto", "sphinx", None):
            raise ParameterError(f"reference={self.reference!r}; use 'auto' (the Sphinx en-us "
                                 "model's second opinion when pocketsphinx is installed), "
                                 "'sphinx' (required) or None (self-training alone)")
        if self.lexicon is not None and self.unit == "chars":
            raise ParameterError("a lexicon is only used with unit='phones'; drop lexicon= or "
                                 "use unit='phones'")

    def _lexicon(self):
        """The user's lexicon (merged over CMUdict by the tokenizer) or None; cached."""
        if self.unit != "phones" or self.lexicon is None:
            return None
        cached = getattr(self, "_lex_cache", None)
        if cached is not None and cached[0] is self.lexicon:
            return cached[1]
        from vqalign.align.lexicon import Lexicon  # noqa: PLC0415
        if isinstance(self.lexicon, (str, Path)):
            lex = Lexicon.from_file(self.lexicon)
        elif isinstance(self.lexicon, Lexicon):
            lex = self.lexicon
        else:
            raise ParameterError(f"lexicon must be a Lexicon or a file path, got "
                                 f"{type(self.lexicon).__name__}")
        self._lex_cache = (self.lexicon, lex)
        return lex

    # ------------------------------------------------------------------ preparation
    def _prepare(self, y, sr, text, name=None, lexicon=None, cache=None, *,
                 tokens=None) -> _Prepared:
        """Checks, conditioning and the front end of one utterance; ``tokens``: its
        transcript already tokenized (``text`` is then not read)."""
        sr = check_sample_rate(sr)
        y = check_audio(y, sr, allow_silent=True, name=f"audio {name}" if name else "audio")
        warn = []
        if not np.any(y):
            raise ParameterError(
                f"{'audio ' + repr(name) if name else 'the audio'} is silent (all "
                f"{y.size} samples are zero; {y.size / sr:.2f} s); there is no speech to align")
        peak = float(np.max(np.abs(y)))
        if peak < 1e-4:
            raise ParameterError(
                f"{'audio ' + repr(name) if name else 'the audio'} is practically silent "
                f"(peak amplitude {peak:.1e}); there is no speech to align — check the file "
                "or its gain")
        if tokens is None:
            tokens = _tokenize(text, self.unit, lexicon, self.oov)
        if tokens.oov:
            msg = (f"{len(tokens.oov)} word(s) not in the lexicon were pronounced by "
                   f"letter-to-sound rules: {', '.join(sorted(set(tokens.oov)))}")
            warn.append(msg)
        trim = bool(self.trim_silence) and y.size / sr <= LONG_AUDIO_S
        key = ((_audio_key(y, sr), self.hop_, self.dither_, trim)
               if cache is not None else None)
        y, cond = condition_audio(y, sr, name)
        warn.extend(cond)
        y16 = resample(y, sr)
        min_len = int(0.025 * FEATURE_SR)
        if y16.size < min_len:
            raise ParameterError(f"audio has {y16.size / FEATURE_SR * 1000:.1f} ms, "
                                 "shorter than one 25 ms analysis window")
        full = y.size / sr
        span = speech_span(y16) if trim else None
        a, b = span if span is not None else (0, y16.size)
        y16 = y16[a:b]
        if key is not None and key in cache:
            X, energy = cache[key]
        else:
            X, energy = features(y16, self.hop_, 1, dither=self.dither_)
            if key is not None:
                cache[key] = (X, energy)
        if self.unit == "phones":
            miss = missing_speech_warning(speech_frames(y16), sum(map(len, tokens.units)),
                                          a / FEATURE_SR)
            if miss is not None:
                warn.append(miss)
        if span is None:
            return _Prepared(X, energy, tokens, full, sr, name, warn, y16, key)
        return _Prepared(X, energy, tokens, (b - a) / FEATURE_SR, sr, name, warn, y16, key,
                         offset_s=a / FEATURE_SR, full_duration=full)

    def _prepare_many(self, items, lexicon, cache, *, raise_errors):
        prepared, errors = [], []
        for y, sr, text, name in items:
            try:
                with warnings.catch_warnings():  # OOVs are reported once for the corpus
                    warnings.simplefilter("ignore", UserWarning)
                    prepared.append(self._prepare(y, sr, text, name, lexicon, cache))
                errors.append(None)
            except VQAlignError as exc:
                if raise_errors:
                    raise
                prepared.append(None)
                errors.append(exc)
        return prepared, errors

    @staticmethod
    def _frames(prepared):
        """(X (N, 39), energy (N,), frame_off (U+1,)) of prepared utterances."""
        offs = np.zeros(len(prepared) + 1, np.int64)
        offs[1:] = np.cumsum([p.X.shape[0] for p in prepared])
        X = np.concatenate([p.X for p in prepared]) if prepared else np.zeros((0, 39), np.float32)
        E = np.concatenate([p.energy for p in prepared]) if prepared else np.zeros(0)
        return np.ascontiguousarray(X, dtype=np.float32), E, offs

    def n_states(self, units) -> int:
        """HMM states of a transcript's units (a list of words of units), silence aside."""
        return self.states_per_unit * sum(len(w) for w in units)

    def corpus_codes(self, n_frames: int) -> int:
        """Gaussians of a model trained on a corpus of ``n_frames`` training frames:
        ``n_codes``, or one per CORPUS_FRAMES_PER_CODE frames when that is fewer (at
        least MIN_CORPUS_CODES)."""
        return int(min(self.n_codes, max(MIN_CORPUS_CODES,
                                         n_frames // CORPUS_FRAMES_PER_CODE)))

    def _length_errors(self, prepared):
        """ParameterError per utterance whose transcript needs more frames than it has."""
        out = []
        for p in prepared:
            n_states = self.n_states(p.tokens.units)
            T = p.X.shape[0]
            out.append(ParameterError(too_short_message(n_states, T, self.hop_))
                       if n_states > T else None)
        return out

    def _hmm(self, gmm, *, corpus):
        """The engine's model with this Aligner's settings."""
        from vqalign.hmm import TiedMixtureHMM  # noqa: PLC0415
        update = "wt" + ("mv" if corpus and self.update_gaussians else "")
        if not corpus and self.codebook is not None:
            update = SEEDED_UPDATE  # the seed's recipe with a pretrained codebook
        return TiedMixtureHMM(
            gmm=gmm, states_per_symbol=self.states_per_unit,
            optional_silence=SIL if self.silence else None, top_n=self.top_n,
            n_iter=self.n_iter, tol=self.tol, min_iter=4, update=update,
            gaussians_every=max(1, self.update_gaussians), weight_floor=self.weight_floor,
            min_self_loop=0.05, max_self_loop=0.98, init_params="", p_silence=0.3,
            p_edge_silence=0.8, beam=1e-12, viterbi_beam=VITERBI_BEAM, min_post=1e-4,
            n_chunks=16, hop_s=self.hop_)

    # ------------------------------------------------------------------ fit
    def fit(self, corpus: Iterable, y=None):
        """Train the codebook and the tied-mixture HMM on a corpus.

        ``corpus`` yields ``(audio, sr, transcript)`` or ``(path, transcript)``.
        Utterances that cannot be used (silent, empty transcript, transcript longer
        than the audio allows) are skipped and listed in ``fit_failures_``; if none
        is usable a ParameterError says why.

        Sets ``model_`` (a :class:`vqalign.hmm.TiedMixtureHMM`), ``history_``,
        ``symbols_``, ``n_utterances_``, ``fit_failures_`` (list of (index, name,
        message)), ``oov_`` and ``alignments_`` (the training utterances' final
        alignments, in order; None for a skipped one).
        """
        self._check_params(training=True)
        t_start = time.perf_counter()
        items = _as_items(corpus)
        if not items:
            raise ParameterError("the corpus is empty; give at least one (audio, sr, "
                                 "transcript) item")
        lexicon = self._lexicon()
        self._cache = _LRU()
        prepared, errors = self._prepare_many(items, lexicon, self._cache, raise_errors=False)
        rng = check_random_state(self.random_state)
        ok = [i for i, p in enumerate(prepared) if p is not None]
        if not ok:
            raise ParameterError(f"no usable utterance in the corpus: {errors[0]}")
        for i, err in zip(ok, self._length_errors([prepared[i] for i in ok])):
            if err is not None:
                errors[i] = err
        ok = [i for i in ok if errors[i] is None]
        if not ok:
            raise ParameterError(f"no usable utterance in the corpus: "
                                 f"{next(e for e in errors if e is not None)}")
        train = [prepared[i] for i in ok]
        with _Threads(self.n_jobs):
            model, history, sel, X, offs = self.train_model(train, rng, corpus=True)
            self.model_ = model
            self._model_dither = self.dither_
            self.history_ = history
            self.symbols_ = list(model.symbols_)
            results = self._decode(train, X, offs, sel, history=None)
        # utterances no path fitted during EM (named as train_model names them)
        where = {p.name or str(u): ok[u] for u, p in enumerate(train)}
        for name, msg in model.failures_:
            errors[where[name]] = AlignmentError(msg)
        self.train_seconds_ = float(sum(p.duration for p in train))
        self.alignments_ = [None] * len(items)
        for i, r, p in zip(ok, results, train):
            self.alignments_[i] = self._corpus_opinion(p, _restore_span(r, p),
                                                       list(p.warnings))
        self.fit_failures_ = [(i, items[i][3], str(errors[i])) for i in range(len(items))
                              if errors[i] is not None]
        self.oov_ = sorted({w for p in prepared if p is not None for w in p.tokens.oov})
        if self.oov_:
            warnings.warn(f"{len(self.oov_)} word(s) not in the lexicon were pronounced by "
                          f"the G2P: {', '.join(self.oov_[:20])}"
                          f"{' ...' if len(self.oov_) > 20 else ''}", stacklevel=2)
        self.n_utterances_ = len(ok)
        self.fit_seconds_ = time.perf_counter() - t_start
        return self

    def _codebook(self, X, rng, k):
        if self.codebook is not None:
            cb = self.codebook
            if isinstance(cb, (str, Path)):
                cb = _read_codebook(cb, self._feature_settings())
            cb = np.asarray(cb, dtype=np.float32)
            if cb.ndim != 2 or cb.shape[1] != X.shape[1]:
                raise ParameterError(f"codebook has shape {cb.shape} but the features have "
                                     f"{X.shape[1]} dimensions (13 MFCC + deltas); train it "
                                     "on the aligner's features or leave codebook=None")
            return cb
        from vqalign.lbg import lbg  # noqa: PLC0415

        # the recipe's codebook: LBG doubling from the mean, refined per level, then
        # one Lloyd pass over every frame (the settings the aligner was tuned with)
        k = min(k, max(2, X.shape[0] // 4))
        seed = int(rng.integers(2**31 - 1))
        # one utterance's models (the flat starts, the Sphinx-seeded one) share their
        # codebook: the last one is kept, keyed by the frames' digest, k and the seed
        key = None
        if X.shape[0] <= CODEBOOK_CACHE_FRAMES:
            key = (hashlib.blake2b(np.ascontiguousarray(X).tobytes(), digest_size=16).digest(),
                   X.shape, k, seed)
            hit = getattr(self, "_codebook_cache", None)
            if hit is not None and hit[0] == key:
                return hit[1].copy()
        cb = lbg(X, k, seed=seed, n_iter=6, final_passes=1, growth=2.0, last_iter=None)
        if key is not None:
            self._codebook_cache = (key, cb.copy())
        return cb

    def new_model(self, X, rng, *, k=None, corpus=True):
        """An untrained engine model: Gaussians from an LBG codebook of ``X`` (or the
        given ``codebook``) through :meth:`vqalign.hmm.DiagGMM.from_codebook`."""
        from vqalign.hmm import DiagGMM  # noqa: PLC0415
        cb = self._codebook(X, rng, self.n_codes if k is None else k)
        gmm = DiagGMM.from_codebook(cb, X, var_floor=1e-2, shrinkage=10.0, max_frames=32768,
                                    top_n=min(self.top_n, cb.shape[0]))
        return self._hmm(gmm, corpus=corpus)

    def train_model(self, train, rng, *, corpus, k=None, quantile=0.15, n_iter=None,
                    open_end=False, diagonal=0.0, on_step=None, segments=None):
        """Flat start(s) and EM on prepared utterances: (model, history, selection, X,
        frame_off). The schedule (the policy this Aligner was tuned with):

        - silence weights from each utterance's quietest ``quantile`` of frames, symbol
          weights from the others;
        - a corpus has ``corpus_codes`` Gaussians (fewer than ``n_codes`` when small);
        - a "durations" start (self loops from the frames each state would get), a
          "broad-class" one (the same, with each phone's weights from the frames of its
          broad class) and a "short" start (self loops 0.6): corpora under MULTI_START_S
          seconds run durations and broad-class (phones) or durations and short
          (chars) and keep the start with the higher final log-likelihood per frame
          less LOUD_SILENCE_COST times its :func:`loud_in_silence`; longer ones run the
          short start only; a single utterance the durations start only, or with
          SINGLE_POLICY one start per SINGLE_STARTS entry (phone-duration self loops, the
          broad-class weights) kept by final likelihood, MAP re-estimation around it;
        - ``segments`` (one utterance): instead, one start from a phone segmentation
          [(first frame, end frame, symbol)] (:func:`vqalign.align._reference.
          segmentation_start`), MAP re-estimation around it;
        - Gaussians re-estimated every ``update_gaussians`` steps in corpus mode.
        """
        X, energy, offs = self._frames(train)
        words = [p.tokens.units for p in train]
        if corpus and k is None:
            k = self.corpus_codes(X.shape[0])
        base = self.new_model(X, rng, k=k, corpus=corpus)
        if n_iter is not None:
            base.n_iter = n_iter
        base.open_end_ = open_end
        base.diagonal = diagonal
        base.gmm_ = base.gmm
        sel = base.select(X, candidates="m" in base.update)
        # the edge silence is for one utterance, the broad-class start for one utterance
        # or a small corpus (a long recording self-trained whole keeps the plain start:
        # devdata voices, 1.7 min, 28.0 ms mean word error plain, 33.1 ms with them)
        single = not corpus and sum(p.duration for p in train) <= LONG_AUDIO_S
        quiet = quiet_masks(energy, offs, quantile)
        if EDGE_QUIET and single:
            for u, q in enumerate(quiet):
                if train[u].y16 is not None:
                    q |= _edge_silence(train[u].y16, q.size, self.hop_)
        seconds = float(sum(p.duration for p in train))
        starts = []
        if not corpus or seconds < MULTI_START_S:
            starts.append(None)
        if corpus:
            starts.append(0.6)
        data = [(p.X, w) for p, w in zip(train, words)]
        names = [p.name or str(u) for u, p in enumerate(train)]
        syms = sorted({s for w in words for ww in w for s in ww})
        broad = BROAD_PRIOR is not None and self.unit == "phones"
        if single:
            runs = [(s, broad) for s in starts]
        elif corpus and broad and seconds < MULTI_START_S:
            # a small corpus of phones: the plain and the broad-class durations start.
            # No short start: with corpus_codes Gaussians it won synthetic 12-utterance
            # corpora 1, 4 and 6 (of seeds 0-7) by likelihood, with utterances 331 and
            # 111 ms off on 1 and 4; without it, seeds 0-9: 9.4 ms mean, worst 29 ms
            runs = [(None, False), (None, True)]
        else:
            runs = [(s, False) for s in starts]
        # one utterance: a flat start per duration-prior strength, the likeliest kept
        one = single and _single_policy(self.unit)
        durs = list(SINGLE_STARTS) if one else [(None, BROAD_PRIOR)]
        runs = [(s, b, d if s is None else (None, BROAD_PRIOR)) for s, b in runs for d in durs]
        if segments is not None:  # one start from a reference segmentation only
            runs = [(None, True, (None, BROAD_PRIOR))]
        best = None
        for start, broad_start, (dur, prior) in runs:
            m = copy.deepcopy(base) if len(runs) > 1 else base
            m.init_self_loop = start
            m.initialize(data, quiet=quiet, symbols=syms, selection=sel, quiet_fraction=0.15)
            if broad_start:
                _broad_class_start(m, X, offs, quiet, sel, prior)
            if dur:
                _duration_start(m, words, X.shape[0], 0.15, dur)
            if segments is not None:
                from vqalign.align._reference import segmentation_start  # noqa: PLC0415
                segmentation_start(m, segments, sel)
            if one and (WEIGHT_PRIOR or TRANS_PRIOR or SILENCE_PRIOR):
                _map_prior(m, WEIGHT_PRIOR, TRANS_PRIOR, SILENCE_PRIOR)
            m.fit(data, names=names, selection=sel, on_step=on_step)
            h = m.history_
            h.name = (f"tied-mixture EM{'' if corpus else ' (one utterance)'}, "
                      f"{'durations' if start is None else 'short'}"
                      f"{' broad-class' if broad_start else ''} flat start"
                      f"{', Sphinx segmentation' if segments is not None else ''}")
            ll = h["log_likelihood"][-1] if len(h["log_likelihood"]) else -np.inf
            if corpus and len(runs) > 1 and np.isfinite(ll):
                ll -= LOUD_SILENCE_COST * loud_in_silence(m, X, offs, energy, words)
            if best is None or ll > best[0]:
                best = (ll, m)
        model = best[1]
        return model, model.history_, model._last_selection, X, offs

    # ------------------------------------------------------------------ decoding
    def _decode(self, prepared, X, offs, sel, *, history, em_paths=None, warn_extra=None,
                model=None, shift=0.0):
        """Viterbi, segments, confidences and warnings of prepared utterances; ``shift``
        (s) moves every inner boundary (before the warnings quote any time)."""
        model = self.model_ if model is None else model
        hop = self.hop_
        batch = model.batch([p.tokens.units for p in prepared])
        path, score, status, _ = model.viterbi_batch(X, offs, batch, sel)
        cols = batch.emit_ids[batch.state_off[np.repeat(np.arange(len(prepared)),
                                                        np.diff(offs))] + path]
        fconf, own = model.frame_ratio(sel, cols)
        frame_ll = np.log(np.maximum(own, 1e-300)) + sel.gmax
        from vqalign.align.confidence import alignment_confidence, attach  # noqa: PLC0415
        confs = alignment_confidence(model, batch, path, offs, sel, fconf,
                                     [p.energy for p in prepared], X, hop,
                                     "corpus" if model is getattr(self, "model_", None)
                                     else "self")
        Alignment, Segment = _alignment_classes()
        out = []
        sil_tier = "phones" if self.unit == "phones" else "chars"
        for u, p in enumerate(prepared):
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
                "unit": self.unit,
                "n_states": int(batch.state_off[u + 1] - batch.state_off[u]),
                "model": "tied-mixture HMM",
            }
            if history is not None:
                diag["em_history"] = history.to_dict()
            elif getattr(self, "history_", None) is not None:
                diag["em_history"] = self.history_.to_dict()
            if em_paths is not None:
                diag["em_paths"] = em_paths
            aln = Alignment(tiers={"words": seg_words, sil_tier: seg_units}, audio=p.name,
                            sample_rate=int(p.sr), duration=float(p.duration), diagnostics=diag)
            attach(aln, confs[u])
            _add_warnings(aln, wlist)
            out.append(aln)
        return out

    # ------------------------------------------------------------------ align
    def align(self, audio, transcript, *, sr=None, audio_name=None):
        """Align one utterance; returns an Alignment.

        ``audio`` is a float waveform with its sample rate ``sr`` (required), or a path
        (then ``sr`` is ignored). An unfitted Aligner self-trains on this one utterance
        (EM from a flat start, then Viterbi); a fitted one uses its shared model. Audio
        longer than 90 s is aligned as one long recording (``vqalign.align._longform``).
        """
        self._check_params()
        if isinstance(audio, (str, Path)):
            audio_name = audio_name or str(audio)
            audio, sr = _load_audio(audio)
        elif sr is None:
            raise ParameterError("sr is required with an audio array: pass its sample rate, "
                                 "e.g. align(y, text, sr=16000), or pass a file path")
        lexicon = self._lexicon()
        p = self._prepare(audio, sr, transcript, audio_name, lexicon,
                          getattr(self, "_cache", None))
        if p.duration > LONG_AUDIO_S:
            from vqalign.align import _longform  # noqa: PLC0415
            with _Threads(self.n_jobs):
                return _longform.align_long(self, p)
        if getattr(self, "model_", None) is None:
            with _Threads(self.n_jobs):
                return self._self_train(p)
        with _Threads(self.n_jobs):
            res = self._align_prepared([p])[0]
        if isinstance(res, Exception):
            raise res
        return res

    def _align_prepared(self, prepared):
        model = self.model_
        new = model.add_symbols(sorted({u for p in prepared for w in p.tokens.units
                                        for u in w}))
        errs = self._length_errors(prepared)
        out = [None] * len(prepared)
        keep = []
        for i, e in enumerate(errs):
            if e is not None:
                out[i] = e
            else:
                keep.append(i)
        if keep:
            sub = [prepared[i] for i in keep]
            X, _, offs = self._frames(sub)
            sel = model.select(X)
            extra = ([f"units never seen in training were given generic models: "
                      f"{', '.join(new)}"] if new else None)
            res = self._decode(sub, X, offs, sel, history=None, warn_extra=extra)
            from vqalign.align.coverage import check_fitted  # noqa: PLC0415
            for i, r, p in zip(keep, res, sub):
                r, gaps = check_fitted(self, p, r, extra)  # untranscribed speech
                r = _restore_span(r, p, (extra or []) + gaps)
                out[i] = r if gaps else self._corpus_opinion(p, r, list(p.warnings)
                                                             + (extra or []))
        return out

    def _self_train(self, p: _Prepared, *, n_codes=None):
        """Mode (a): codebook and weights learned from this utterance alone."""
        err = self._length_errors([p])[0]
        if err is not None:
            raise err
        runs = {} if self.keep_paths else None  # EM paths of each flat start's model
        on_step = None
        if runs is not None:
            offs = np.array([0, p.X.shape[0]], np.int64)

            def on_step(step, m, sel):
                """The Viterbi path's boundary times after each EM step."""
                batch = m.batch([p.tokens.units])
                path, _, status, _ = m.viterbi_batch(p.X, offs, batch, sel)
                if status[0] == 0:
                    runs.setdefault(id(m), []).append(
                        _boundary_times(path, batch, 0, self.hop_, p.duration))
        model, history, sel, X, offs = self._train_one(p, n_codes=n_codes, on_step=on_step)
        em_paths = runs.get(id(model), []) if runs is not None else None
        res = self._decode([p], X, offs, sel, history=history, em_paths=em_paths, model=model,
                           shift=self.single_shift())[0]
        if isinstance(res, Exception):
            raise res
        if EDGE_RETRY_S is not None and _single_policy(self.unit):
            retry = self._edge_retry(p, res, n_codes)
            if retry is not None:
                p, res = retry
        from vqalign.align.coverage import check_self_trained  # noqa: PLC0415
        res, gaps = check_self_trained(self, p, res, n_codes=n_codes)  # untranscribed speech
        if (not gaps and _single_policy(self.unit) and self.reference is not None
                and self.codebook is None):   # a codebook asks for the seed's recipe
            res = self._with_reference(p, res, n_codes)
        return _restore_span(res, p, gaps)

    def _with_reference(self, p, flat, n_codes=None):
        """The flat-start alignment ``flat`` of ``p`` combined with a model self-trained from
        the Sphinx en-us model's segmentation and that model's own alignment (the median of
        the three, :mod:`vqalign.align._reference`); ``flat`` itself (with the reason in
        ``diagnostics["reference"]``) when the Sphinx model cannot be used."""
        from vqalign.align import _reference as R  # noqa: PLC0415
        seeded, ref = self._opinions(p, n_codes)
        if seeded is None:
            flat.diagnostics["reference"] = f"none: {ref}"
            return flat
        return R.merge(flat, seeded, ref, p.energy, self.hop_, list(p.warnings))

    def _opinions(self, p, n_codes=None):
        """(seeded, sphinx) alignments of the prepared utterance ``p`` (in its frames'
        time): a model self-trained on ``p`` from the Sphinx en-us model's phone
        segmentation, and that model's alignment; (None, reason) when they cannot be
        made (reference="sphinx" without pocketsphinx is an error)."""
        from vqalign.align import _reference as R  # noqa: PLC0415
        if not R.available():
            if self.reference == "sphinx":
                raise ParameterError('reference="sphinx" needs pocketsphinx: pip install '
                                     '"vqalign[sphinx]" (or pass reference="auto" / None)')
            return None, "pocketsphinx is not installed"
        ref, segs = R.sphinx_reference(p, self.hop_)
        if ref is None:
            return None, segs
        model, history, sel, X, offs = self._train_one(p, n_codes=n_codes, segments=segs)
        seeded = self._decode([p], X, offs, sel, history=history, model=model)[0]
        if isinstance(seeded, Exception):
            return None, f"the seeded model failed ({seeded})"
        return seeded, ref

    def small_corpus(self) -> bool:
        """Whether this fitted aligner was trained on a small corpus (under MULTI_START_S
        seconds): its English alignments then get the Sphinx model's second opinion."""
        s = getattr(self, "train_seconds_", None)
        return s is not None and s < MULTI_START_S

    def _corpus_opinion(self, p, res, warns):
        """A fitted model's alignment ``res`` of ``p`` (on the whole recording) combined,
        for a small corpus of English, with two more of the same audio: a model
        self-trained on it from the Sphinx en-us model's segmentation and that model's
        own (the per-boundary median of the three, :mod:`vqalign.align._reference`). The
        corpus model of a few minutes of speech is weak (devdata, 40 utterances: 14.7 and
        29.8 ms mean word-boundary error on two subsets; the median 11.6 and 13.6 ms).
        ``warns``: the utterance's own warnings. ``res`` unchanged otherwise."""
        if (isinstance(res, Exception) or self.reference is None or self.unit != "phones"
                or not self.small_corpus()):
            return res
        from vqalign.align import _reference as R  # noqa: PLC0415
        y, sr, off = p.y16, FEATURE_SR, float(p.offset_s)
        if y is None:                       # a store-backed utterance: read its audio
            if p.source is None:
                res.diagnostics["reference"] = "none: the audio file is not known"
                return res
            try:
                y, sr = _load_audio(p.source)   # conditioned and resampled by _prepare
            except VQAlignError as exc:    # moved or unreadable since the features
                res.diagnostics["reference"] = f"none: {exc}"
                return res
            off = 0.0
        helper = getattr(self, "_helper_", None)
        if helper is None:
            helper = Aligner(unit=self.unit, lexicon=self.lexicon, oov=self.oov,
                             random_state=self.random_state, n_jobs=1,
                             reference=self.reference)
            helper._check_params()
            self._helper_ = helper
        try:
            q = helper._prepare(y, sr, None, p.name, tokens=p.tokens)
        except VQAlignError as exc:
            res.diagnostics["reference"] = f"none: {exc}"
            return res
        if helper._length_errors([q])[0] is not None:
            res.diagnostics["reference"] = "none: the audio is too short to self-train on"
            return res
        try:
            seeded, ref = helper._opinions(q)
        except VQAlignError as exc:
            seeded, ref = None, str(exc)
        if seeded is None:
            res.diagnostics["reference"] = f"none: {ref}"
            return res
        dur = p.full_duration if p.full_duration is not None else p.duration
        for a in (seeded, ref):
            _shift_tiers(a, off + float(q.offset_s), dur)
        return R.merge(res, seeded, ref, p.energy, self.hop_, warns, mode="corpus",
                       energy_offset_s=off)

    def single_shift(self) -> float:
        """Seconds a self-trained alignment's inner boundaries are moved (SINGLE_SHIFT_S
        under the single-utterance policy, else 0)."""
        return float(SINGLE_SHIFT_S or 0.0) if _single_policy(self.unit) else 0.0

    def _edge_retry(self, p, res, n_codes=None):
        """Self-train once more on a shorter span when the first or the last word of a
        self-trained alignment ``res`` lies mostly over the silence before the first / after
        the last stretch of VAD speech (a model of one utterance sometimes makes the
        leading silence its first word): the audio is cut ``EDGE_RETRY_S`` before / after
        that speech; the retry is kept when the sum of its word confidences is higher.
        Returns (prepared, alignment) of the retry, or None (no retry or not kept)."""
        if p.y16 is None or not res.tiers["words"]:
            return None
        # loud frames: c0 above the near-floor level of vqalign.align.confidence (0.2 of
        # the way from its 5th to its 95th percentile), in runs of 50 ms
        lo, hi = np.percentile(p.energy, [5, 95])
        on = p.energy >= lo + EDGE_LOUD * (hi - lo)
        hop = self.hop_
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
        p2 = with_audio(p, p.y16[a:b], self.hop_, self.dither_,
                        offset_s=p.offset_s + a / FEATURE_SR,
                        full_duration=p.full_duration if p.full_duration is not None
                        else p.duration)
        if self._length_errors([p2])[0] is not None:
            return None
        model, history, sel, X2, offs = self._train_one(p2, n_codes=n_codes)
        res2 = self._decode([p2], X2, offs, sel, history=history, model=model,
                            shift=self.single_shift())[0]
        if isinstance(res2, Exception):
            return None
        # kept when it raises the expected number of words within 50 ms (the sum of the
        # calibrated word confidences)
        from vqalign.align.coverage import expected_good_words  # noqa: PLC0415
        if expected_good_words(res2) <= expected_good_words(res):
            return None
        return p2, res2

    def _train_one(self, p, *, n_codes=None, diagonal=0.0, on_step=None, segments=None):
        """Codebook, flat start and EM on one utterance: (model, history, selection, X,
        frame_off); ``segments``: the start from a phone segmentation (train_model)."""
        rng = check_random_state(self.random_state)
        T = p.X.shape[0]
        k = n_codes or min(self.n_codes, max(8, T // 12))
        return self.train_model([p], rng, corpus=False, k=k, quantile=SINGLE_SILENCE_QUANTILE,
                                diagonal=diagonal, on_step=on_step, segments=segments)

    def align_many(self, items, *, n_jobs=None):
        """Align many utterances; per-utterance failures are returned, not raised.

        ``items`` yields ``(audio, sr, transcript)`` or ``(path, transcript)``. A fitted
        Aligner decodes them all in one batch (in parallel); an unfitted one self-trains
        on each. Returns a list of Alignment or the exception of that utterance.
        """
        self._check_params()
        n_jobs = self.n_jobs if n_jobs is None else check_positive_int(n_jobs, "n_jobs")
        raw = list(items)
        norm = []
        for it in raw:
            try:
                norm.append(_as_items([it])[0])
            except VQAlignError as exc:
                norm.append(exc)
        lexicon = self._lexicon()
        fitted = getattr(self, "model_", None) is not None
        prepared = []
        for it in norm:
            if isinstance(it, Exception):
                prepared.append(it)
                continue
            try:
                with warnings.catch_warnings():  # OOVs are reported once for the batch
                    warnings.simplefilter("ignore", UserWarning)
                    prepared.append(self._prepare(*it[:3], it[3], lexicon,
                                                  getattr(self, "_cache", None)))
            except VQAlignError as exc:
                prepared.append(exc)
        oov = sorted({w for p in prepared if not isinstance(p, Exception)
                      for w in p.tokens.oov})
        if oov:
            warnings.warn(f"{len(oov)} word(s) not in the lexicon were pronounced by "
                          f"the G2P: {', '.join(oov[:20])}"
                          f"{' ...' if len(oov) > 20 else ''}", stacklevel=2)
        out = [p if isinstance(p, Exception) else None for p in prepared]
        with _Threads(n_jobs):
            batch = [i for i, p in enumerate(prepared)
                     if not isinstance(p, Exception) and fitted and p.duration <= LONG_AUDIO_S]
            if batch:
                res = self._align_prepared([prepared[i] for i in batch])
                for i, r in zip(batch, res):
                    out[i] = r
            for i, p in enumerate(prepared):
                if out[i] is not None:
                    continue
                try:
                    if p.duration > LONG_AUDIO_S:
                        from vqalign.align import _longform  # noqa: PLC0415
                        out[i] = _longform.align_long(self, p)
                    else:
                        out[i] = self._self_train(p)
                except VQAlignError as exc:
                    out[i] = exc
        return out

    # ------------------------------------------------------------------ observations
    def observations(self, audio, transcript, *, sr=16000):
        """Per-frame emission log-likelihoods of every HMM state and the Viterbi path.

        Returns dict(log_emit (T, S) float32, path (T,) int32, labels list[str] (per
        state, e.g. "AH.1", "sil"), hop_s). Uses the fitted model, or self-trains on
        this utterance first.
        """
        self._check_params()
        lexicon = self._lexicon()
        p = self._prepare(audio, sr, transcript, None, lexicon, getattr(self, "_cache", None))
        fitted = getattr(self, "model_", None) is not None
        with _Threads(self.n_jobs):
            err = self._length_errors([p])[0]
            if err is not None:
                raise err
            if not fitted:
                model = self._train_one(p)[0]
            else:
                model = self.model_
                model.add_symbols(sorted({u for w in p.tokens.units for u in w}))
            X, _, offs = self._frames([p])
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
                "hop_s": self.hop_}

    # ------------------------------------------------------------------ persistence
    def _feature_settings(self):
        return {"kind": "mfcc+delta+delta2", "n_mfcc": 13, "n_mels": 40, "win_length": 0.025,
                "hop_length": self.hop_, "cmvn": "per-utterance", "sr": FEATURE_SR,
                "delta_width": 1, "dither": self.dither_}

    def save(self, path, *, overwrite=False):
        """Write the fitted model as ``.npz`` (arrays plus a JSON header that keeps the
        parameters, the feature settings and the user's lexicon)."""
        model = getattr(self, "model_", None)
        if model is None:
            raise ParameterError("the Aligner is not fitted; call fit(corpus) before save()")
        from vqalign.io.atomic import atomic_write  # noqa: PLC0415
        path = Path(path)
        if path.suffix != ".npz":
            raise ParameterError(f"save() writes a .npz file, got {path.name!r}; use a name "
                                 "ending in .npz")
        state = model.get_state()
        lex = self._lexicon()
        header = {
            "format": "vqalign.Aligner", "version": MODEL_VERSION,
            "params": {k: getattr(self, k) for k in (
                "unit", "n_codes", "states_per_unit", "n_iter", "hop_length", "silence",
                "top_n", "update_gaussians", "oov", "tol", "weight_floor",
                "trim_silence")} | {
                "hop_length": self.hop_},
            "features": self._feature_settings(),
            "model": state["header"],
            "lexicon": ({w: [list(pr) for pr in prons] for w, prons in lex.items()}
                        if lex is not None else None),
            "history": self.history_.to_dict() if getattr(self, "history_", None) else None,
            "train_seconds": getattr(self, "train_seconds_", None),
        }
        with atomic_write(path, "wb", overwrite=overwrite) as fh:
            np.savez(fh, header=np.array(json.dumps(header)), **state["arrays"])
        return path

    @classmethod
    def load(cls, path):
        """An Aligner fitted earlier and written with :meth:`save`."""
        path = Path(path)
        try:
            data = np.load(path, allow_pickle=False)
            header = json.loads(str(data["header"]))
        except FileNotFoundError:
            raise ParameterError(f"model file {path} does not exist") from None
        except Exception as exc:  # noqa: BLE001
            raise ParameterError(f"{path} is not a vqalign Aligner model ({exc}); write one "
                                 "with Aligner.save()") from None
        if header.get("format") != "vqalign.Aligner":
            raise ParameterError(f"{path} is not a vqalign Aligner model")
        if header.get("version", 0) > MODEL_VERSION:
            raise ParameterError(f"{path} was written by a newer vqalign (model version "
                                 f"{header['version']}); upgrade vqalign")
        if header.get("version", 0) < MODEL_VERSION or "model" not in header:
            raise ParameterError(f"{path} was written by vqalign 0.1 (model version "
                                 f"{header.get('version', 0)}); re-train it with this version "
                                 "(vqalign align-corpus) and save it again")
        params = header["params"]
        self = cls(**params)
        if header.get("lexicon"):
            from vqalign.align.lexicon import Lexicon  # noqa: PLC0415
            self.lexicon = Lexicon({w: [list(p) for p in pr]
                                    for w, pr in header["lexicon"].items()},
                                   name=f"lexicon saved in {path.name}")
        self._check_params(training=True)
        arrays = {k: data[k] for k in data.files if k != "header"}
        model = self._hmm(None, corpus=True).set_state({"arrays": arrays,
                                                        "header": header["model"]})
        self.model_ = model
        self._model_dither = float(header.get("features", {}).get("dither", DITHER))
        self._check_params()
        self.symbols_ = list(model.symbols_)
        self.history_ = History.from_dict(header["history"]) if header.get("history") else None
        self.train_seconds_ = header.get("train_seconds")
        return self

    @staticmethod
    def from_sphinx(model="en-us"):
        """An aligner on a CMU Sphinx acoustic model: ``"en-us"`` (the model inside the
        pocketsphinx wheel, ``pip install "vqalign[sphinx]"``) or a model folder. Returns a
        :class:`vqalign.align.sphinx.SphinxAligner` (same ``align(y, text, sr=...)``)."""
        from vqalign.align.sphinx import SphinxAligner  # noqa: PLC0415
        return SphinxAligner(model)

    def __repr__(self):
        fitted = "fitted" if getattr(self, "model_", None) is not None else "not fitted"
        return (f"Aligner(unit={self.unit!r}, n_codes={self.n_codes}, "
                f"states_per_unit={self.states_per_unit}, hop_length={self.hop_length}; "
                f"{fitted})")


# --------------------------------------------------------------------------- flat starts
# Below this much training audio a second flat start is cheap (well under a second of
# EM) and needed: from a single start EM on a small corpus often converges to an
# optimum where the silence model swallows whole words (12 synth utterances: 350 ms
# mean word error from the short-duration start, 12 ms from the duration start).
MULTI_START_S = 300.0
#: a corpus-trained model has at most one Gaussian per this many training frames (up to
#: ``n_codes``; corpora over 128 s of speech keep 256): pocketsphinx-testdata, 10
#: recordings, 34 s (6900 frames at 5 ms), corpus mode, word boundaries within 50 ms of
#: pocketsphinx: 256 Gaussians 78.8 %, 68 89.7 %, 64 88.6 %
CORPUS_FRAMES_PER_CODE = 100
MIN_CORPUS_CODES = 64
#: a small corpus's flat starts (see Aligner.train_model) are compared by their final
#: log-likelihood per frame minus this many nats times :func:`loud_in_silence`: a start
#: whose model calls loud frames silence has lost words into the pauses, whatever its
#: likelihood. pocketsphinx-testdata, 10 recordings, corpus mode: the plain durations
#: start has the higher likelihood (-42.34 vs -42.11 broad-class; at 68 Gaussians -46.04
#: vs -45.79), 1.4 % of loud frames in silence (broad-class 0.3 %) and 31.5 % of word
#: boundaries within 50 ms of pocketsphinx (broad-class 78.8 %); on synthetic corpora of
#: 12 utterances (seeds 0-7) the short start's failures (89 ms mean word error on seed 5,
#: 0.23 % loud frames in silence) lose to starts at 0-0.12 %
LOUD_SILENCE_COST = 50.0
#: loud frames: raw c0 above the utterance's 10th percentile plus this share of its
#: 10th-95th percentile range
LOUD_SHARE = 0.3
#: Viterbi beam (log units): states this far below the frame's best are dropped
VITERBI_BEAM = -60.0


def path_segments(path_u, batch, u: int, hop_s: float, duration: float, frame_conf=None,
                  conf=None, shift=0.0):
    """Units and words of one utterance from its local state path (vectorised).

    Returns (units [(start_s, end_s, label, conf)], words [(start_s, end_s, word_index,
    conf)]); conf is ``conf["units"]`` / ``conf["words"]`` (calibrated probabilities from
    :func:`vqalign.align.confidence.alignment_confidence`, one per unit / word in order)
    when given, else the mean of ``frame_conf`` over the segment's frames (NaN without
    either). A boundary between frames t-1 and t lies at (t - 0.5) * hop (frames are
    centred); the first frame starts at 0 and the last ends at ``duration``.
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


#: broad-class flat start of a model self-trained on one utterance (unit="phones"): each
#: phone's weights start from the frames of its broad class (vowel-like, fricative, other;
#: :func:`broad_frame_classes`) mixed with this share of every speech frame's (None: all
#: phones start alike). Devdata, 40 utterances (every 5th, all voices) self-trained one
#: at a time: 89.5 ms mean word-boundary error without, 34.1 ms at 0.6 (36.4 at 0.3,
#: 34.1 at 0.1); pocketsphinx-testdata, single mode: 48.9 -> 70.7 % of word boundaries
#: within 50 ms of pocketsphinx (65.8 % at 0.3)
BROAD_PRIOR = 0.6
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH",
           "UW", "L", "R", "W", "Y"}
_FRICATIVES = {"F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH", "CH", "JH"}


def quiet_masks(energy, offs, quantile):
    """Per utterance (frames ``offs[u]:offs[u + 1]``), its frames at or below its own
    ``quantile`` of raw c0: where a flat start seeds silence."""
    out = []
    for u in range(len(offs) - 1):
        e = energy[offs[u]:offs[u + 1]]
        out.append(e <= np.quantile(e, quantile))
    return out


def loud_in_silence(model, X, offs, energy, words) -> float:
    """Share of the loud frames (raw c0 above ``p10 + LOUD_SHARE * (p95 - p10)`` of their
    utterance) that ``model``'s Viterbi paths put in an optional silence, over the
    utterances ``words`` (frames ``offs[u]:offs[u + 1]`` of ``X`` and ``energy``) whose
    path was found."""
    batch = model.batch(words)
    path, _, status, _ = model.viterbi_batch(X, offs, batch, model.select(X))
    loud = n = 0
    for u in range(len(words)):
        if status[u] != 0:
            continue
        a, b = offs[u], offs[u + 1]
        e = energy[a:b]
        lo, hi = np.percentile(e, [10, 95])
        on = e > lo + LOUD_SHARE * (hi - lo)
        sil = batch.skippable[batch.state_off[u] + path[a:b]]
        loud += int(np.count_nonzero(on & sil))
        n += int(np.count_nonzero(on))
    return loud / max(n, 1)


def broad_frame_classes(X, quiet):
    """Per frame a broad class from spectral cues of (T, 39) aligner features: 0 silence
    (``quiet``), 1 vowel-like (loud and low-frequency: c0 above the speech frames' 40th
    percentile and c1 above their median), 2 fricative (c1, the spectral tilt, in the
    speech frames' lowest quarter), 3 other (nasals, stops, weak sounds)."""
    cls = np.full(X.shape[0], 3, np.int8)
    sp = ~quiet
    if sp.sum() < 8:
        cls[quiet] = 0
        return cls
    c0, c1 = X[:, 0], X[:, 1]
    e40 = np.quantile(c0[sp], 0.4)
    t50, t25 = np.quantile(c1[sp], [0.5, 0.25])
    cls[(c0 >= e40) & (c1 >= t50)] = 1
    cls[c1 <= t25] = 2
    cls[quiet] = 0
    return cls


def _broad_class_start(m, X, offs, quiet, sel, prior=None):
    """Overwrite a flat start's phone weights with broad-class ones mixed with a share
    ``prior`` (default BROAD_PRIOR) of the speech frames' weights."""
    prior = BROAD_PRIOR if prior is None else prior
    q = np.concatenate(quiet)
    cls = broad_frame_classes(X, q)
    best = sel.idx[:, 0]
    K = m.gmm_.n_components
    hist = [np.bincount(best[cls == c], minlength=K) + 0.5 for c in range(4)]
    sp = hist[1] + hist[2] + hist[3]
    sp = sp / sp.sum()
    rows = {c: (1 - prior) * hist[c] / hist[c].sum() + prior * sp
            for c in (1, 2, 3)}
    sil = m.optional_silence
    for (sym, _), col in m.emit_index_.items():
        if sym == sil:
            continue
        base = sym.rstrip("012")
        c = 1 if base in _VOWELS else 2 if base in _FRICATIVES else 3
        m.weights_[col] = rows[c]
    w = np.maximum(m.weights_, m.weight_floor / K)
    m.weights_ = (w / w.sum(1, keepdims=True)).astype(np.float32)


#: the single-utterance self-training policy below (several flat starts with phone
#: duration priors, MAP re-estimation, the edge retry, the boundary shift) on top of the
#: broad-class start; False: one broad-class durations start and plain EM. Devdata, all
#: 200 files self-trained one at a time: 32.9 ms mean word-boundary error without, 20.5 ms
#: with; pocketsphinx-testdata single mode 76.6 -> 85 % of word boundaries within 50 ms
#: of pocketsphinx
SINGLE_POLICY = True


def _single_policy(unit):
    """Whether one utterance self-trained with ``unit`` gets SINGLE_POLICY: phones, with
    the broad-class start on (BROAD_PRIOR None switches both off)."""
    return bool(SINGLE_POLICY) and BROAD_PRIOR is not None and unit == "phones"


#: flat starts of a model self-trained on one utterance, (duration-prior strength,
#: broad-class prior) each: EM runs from every one and the highest final likelihood wins.
#: The strength blends each phone's typical duration (_REL_DUR) with an equal share of the
#: speech frames (0: equal, the durations start). Devdata, the 40-file subset (every 5th
#: file, all voices): one start (0, 0.6) 31.7 ms mean word-boundary error; (0.5, 0.6)
#: 23.7; (0.75, 0.6) 21.9; (1, 0.6) 26.8 (one file lost 1.5 s of words); with
#: TRANS_PRIOR and SILENCE_PRIOR: (0.75, 0.6) 20.3, (0.5, 0.6) + (1, 0.6) 19.3, the four
#: of strength 0.5 / 1 x prior 0.6 / 0.3 18.9 (all 200 files: 20.71 ms with the boundary
#: shift; six starts, 0.75 added, 20.71). The equal-share start (0, 0.6) is kept among them:
#: on the built-in synthesizer (8 utterances x 5 seeds) every duration-prior start put
#: one utterance 480 ms off (pooled mean 31.6 ms, 23.1 without the policy); with it 22.5
#: ms, and devdata's 200 files 20.53 ms
SINGLE_STARTS = ((0.0, 0.6), (0.5, 0.6), (1.0, 0.6), (0.5, 0.3), (1.0, 0.3))
#: when the first (last) word of a self-trained alignment lies mostly before (after) the
#: first (last) 50 ms of sound, self-train again on the audio cut this many seconds before
#: (after) that sound (None: no retry). Devdata (200 files): 23.9 -> 21.95 ms mean
#: word-boundary error; the kal voice starts 60 % of its files with 0.2 s of hum at -43 dB
#: (the noise floor is -63 dB), which a model of one utterance made its first word
EDGE_RETRY_S = 0.05
#: every boundary of a self-trained alignment (but the recording's ends) moved by this many
#: seconds: the model's boundaries come late. Devdata signed median word-boundary error
#: +3 (kal) to +15 ms (slt); pocketsphinx-testdata likewise. Devdata 200 files: 21.95 ->
#: 20.71 ms mean, 64.2 -> 66.8 % within 20 ms; pocketsphinx-testdata single mode 79.9 ->
#: 85.3 % of word boundaries within 50 ms of pocketsphinx (83.7 % at -10 ms). 0: none
SINGLE_SHIFT_S = -0.005


#: the loudness (share of the c0 range between its 5th and 95th percentiles) above which
#: frames count as sound for that check (as "near the noise floor" in
#: vqalign.align.confidence)
EDGE_LOUD = 0.2
#: typical phone durations relative to the mean phone (devdata's Festival voices, 6300
#: phones; close to TIMIT's): diphthongs and tense vowels long, DH / D / schwa short
_REL_DUR = {
    "AA": 1.27, "AE": 1.55, "AH": 0.66, "AO": 1.61, "AW": 2.07, "AY": 1.81, "B": 1.01,
    "CH": 1.68, "D": 0.60, "DH": 0.40, "EH": 1.26, "ER": 1.12, "EY": 1.78, "F": 1.29,
    "G": 0.88, "HH": 0.86, "IH": 0.79, "IY": 1.27, "JH": 1.17, "K": 1.20, "L": 0.86,
    "M": 0.87, "N": 0.75, "NG": 0.94, "OW": 1.68, "OY": 2.2, "P": 1.20, "R": 0.70,
    "S": 1.33, "SH": 1.53, "T": 0.93, "TH": 1.46, "UH": 0.84, "UW": 1.42, "V": 0.64,
    "W": 0.69, "Y": 0.75, "Z": 1.17, "ZH": 1.0}
#: unstressed vowels (CMUdict stress 0) are this much shorter
_UNSTRESSED = 0.8


def _rel_duration(sym):
    base = sym.rstrip("012")
    r = _REL_DUR.get(base, 1.0)
    if sym.endswith("0") and base in _VOWELS:
        r *= _UNSTRESSED
    return r


def _duration_start(m, words, n_frames, quiet_share, strength=1.0):
    """Self loops of a flat start from typical phone durations (SINGLE_STARTS): each
    phone's states last r_p * d frames, d such that the utterance's phones fill its
    non-silent frames; ``strength`` in [0, 1] blends r_p with 1 (equal shares)."""
    syms = [s for w in words[0] for s in w]
    if not syms:
        return
    r = {s: (1 - strength) + strength * _rel_duration(s) for s in set(syms)}
    spu = m.states_per_symbol if isinstance(m.states_per_symbol, int) else 1
    tot = sum(r[s] for s in syms) * spu
    d = (1.0 - quiet_share) * n_frames / max(tot, 1e-9)
    sil = m.optional_silence
    for (sym, _), col in m.emit_index_.items():
        if sym == sil or sym not in r:
            continue
        m.self_loop_[col] = 1.0 - 1.0 / max(r[sym] * d, 1.05)


#: MAP re-estimation of a model self-trained on one utterance: every M-step adds the flat
#: start's weights (WEIGHT_PRIOR frames' worth per column) to the E-step's Gaussian counts
#: and its self loops (TRANS_PRIOR frames' worth) to the transition counts (0: plain EM).
#: Devdata 40-file subset, start (0.75, 0.6): 21.9 ms mean word-boundary error plain, 20.9
#: with TRANS_PRIOR 10 (21.0 at 30), 21.5 with WEIGHT_PRIOR 3 on top (25.8 at 10, start
#: (0.5, 0.6)): the phone weights are left free
WEIGHT_PRIOR = 0.0
TRANS_PRIOR = 10.0
#: the same for the silence column's weights: silence keeps the look of the quiet frames it
#: was seeded from instead of soaking up stretches of speech (subset: 20.9 -> 20.6 ms at
#: 30, 20.3 at 100, 20.35 at 200)
SILENCE_PRIOR = 100.0


def _map_prior(m, tau_w, tau_t, tau_sil=0.0):
    """Make ``m``'s M-steps MAP estimates around its current (flat-start) weights and self
    loops: Dirichlet-style pseudo-counts ``tau_w`` (weights; ``tau_sil`` for the silence
    column) and ``tau_t`` (self loops) per emission column are added to each E-step's
    statistics."""
    tau = np.full((m.weights_.shape[0], 1), float(tau_w))
    tau[m._silence_columns()] = float(tau_sil)
    w0 = m.weights_.astype(np.float64) * tau
    p0 = np.clip(m.self_loop_.astype(np.float64), 0.0, 0.999)
    t0 = np.zeros((p0.size, 3))
    t0[:, 0] = float(tau_t) * p0
    t0[:, 1] = float(tau_t) * (1.0 - p0)
    plain = m.mstep

    def mstep(stats, *, gaussians=False):
        s = copy.copy(stats)
        if tau_w or tau_sil:
            s.counts = stats.counts + w0
        if tau_t:
            s.trans = stats.trans + t0
        return plain(s, gaussians=gaussians)

    m.mstep = mstep


# --------------------------------------------------------------------------- small helpers
def _read_codebook(path, expected_settings=None):
    """A codebook array from .npy, or a vqalign codebook .npz whose recorded feature
    settings must match the aligner's front end."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path)
        data = np.load(path, allow_pickle=False)
        if "header" in data.files and expected_settings is not None:
            head = json.loads(str(data["header"]))
            got = head.get("feature_settings") or head.get("features") or {}
            _check_codebook_settings(path, got, expected_settings)
        for key in ("codebook", "codebook_", "means", "arr_0"):
            if key in data:
                return data[key]
        raise ParameterError(f"{path} holds no 'codebook' array (keys: {list(data.keys())})")
    except FileNotFoundError:
        raise ParameterError(f"codebook file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read codebook {path} ({exc}); give a .npy array or a "
                             ".npz with a 'codebook' array (VectorQuantizer.save)") from None


def _check_codebook_settings(path, got, expected):
    """Refuse a codebook whose recorded front end differs from the aligner's."""
    if not got:
        return
    pairs = {"sr": "sr", "n_mfcc": "n_mfcc", "n_mels": "n_mels", "win_length": "win_length",
             "hop_length": "hop_length", "delta_width": "delta_width"}
    diff = []
    for k_got, k_exp in pairs.items():
        if k_got in got and got[k_got] is not None and k_exp in expected:
            a, b = got[k_got], expected[k_exp]
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                if abs(float(a) - float(b)) > 1e-9:
                    diff.append(f"{k_got}: codebook {a!r} vs aligner {b!r}")
            elif a != b:
                diff.append(f"{k_got}: codebook {a!r} vs aligner {b!r}")
    if "deltas" in got and got["deltas"] not in (None, 2):
        diff.append(f"deltas: codebook {got['deltas']!r} vs aligner 2")
    if "cmvn" in got and got["cmvn"] not in (None, "utterance", "per-utterance"):
        diff.append(f"cmvn: codebook {got['cmvn']!r} vs aligner 'utterance'")
    if "convention" in got and got["convention"] not in (None, "librosa"):
        diff.append(f"convention: codebook {got['convention']!r} vs aligner 'librosa'")
    if diff:
        raise ParameterError(
            f"codebook {path} was trained on features made with other settings than the "
            f"aligner's ({'; '.join(diff)}); train it on the aligner's features (vqalign "
            "features --recipe aligner, then vqalign codebook) or leave --codebook out")


def _boundary_times(path_u, batch, u, hop_s, duration):
    """Unit boundary times (s) of one Viterbi path: every unit start and the last end."""
    units, _ = path_segments(path_u, batch, u, hop_s, duration)
    times = [s for s, _, _, _ in units]
    if units:
        times.append(units[-1][1])
    return [round(t, 4) for t in times]


def _restore_span(aln, p: _Prepared, extra=None):
    """An alignment of the speech span of ``p`` moved back onto the whole recording:
    times shifted by ``p.offset_s``, duration the recording's, warnings re-made at the
    shifted times (and the EM paths shifted). Exceptions and untrimmed ones pass."""
    if isinstance(aln, Exception) or p.full_duration is None:
        return aln
    off = float(p.offset_s)
    _shift_tiers(aln, off, p.full_duration)
    aln.duration = float(p.full_duration)
    d = aln.diagnostics
    d["speech_span_s"] = [round(off, 4), round(off + p.duration, 4)]
    if d.get("em_paths"):
        d["em_paths"] = [[round(t + off, 4) for t in step] for step in d["em_paths"]]
    if isinstance(d.get("reference"), dict):  # the three alignments' word spans
        d["reference"]["words"] = {k: [[round(min(t + off, p.full_duration), 4) for t in ab]
                                       for ab in v] for k, v in d["reference"]["words"].items()}
    d["warnings"] = list(p.warnings) + list(extra or [])
    _add_warnings(aln, None)
    return aln


def with_audio(p: _Prepared, y16, hop_s: float, dither: float, **changes) -> _Prepared:
    """``p`` on other 16 kHz audio ``y16`` (a part of its own): features and loudness made
    again, its duration, no cache key, its own copy of the warnings; ``changes``: other
    fields (offset_s, full_duration)."""
    X, energy = features(y16, hop_s, 1, dither=dither)
    return dataclasses.replace(p, X=X, energy=energy, duration=y16.size / FEATURE_SR,
                               y16=y16, key=None, warnings=list(p.warnings), **changes)


def _shift_tiers(aln, dt: float, duration: float):
    """Move every segment of ``aln`` by ``dt`` seconds (kept within [0, duration])."""
    for segs in aln.tiers.values():
        for seg in segs:
            seg.start = min(max(seg.start + dt, 0.0), duration)
            seg.end = min(max(seg.end + dt, 0.0), duration)


def _add_warnings(aln, extra):
    try:
        from vqalign.align.alignment import add_quality_warnings  # noqa: PLC0415
    except ImportError:
        return
    try:
        add_quality_warnings(aln)
    except Exception as exc:  # noqa: BLE001 - warnings must never break an alignment
        aln.diagnostics.setdefault("warnings", []).append(f"quality check failed: {exc}")


def align(audio, transcript, *, sr=None, unit="phones", **aligner_kwargs):
    """Align one utterance with a model self-trained on it (see :class:`Aligner`)."""
    return Aligner(unit=unit, **aligner_kwargs).align(audio, transcript, sr=sr)

