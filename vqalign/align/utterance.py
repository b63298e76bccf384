"""One utterance ready for a model: checks -> front end -> tokens.

:func:`prepare` is the road every utterance takes into the aligner::

    u = prepare(y, sr, "the cat sat", unit="phones", hop_s=0.010, dither=1e-3,
                trim_silence=True)
    u.X            # (T, 39) float32 features of the speech span
    u.energy       # (T,) raw c0, the loudness silence is seeded from
    u.tokens       # words and their units (phones or characters)

It checks the audio (not silent), conditions it (:func:`vqalign.features.frontend.
condition_audio`), resamples it to 16 kHz, leaves long leading and trailing silence out
(:func:`vqalign.features.frontend.speech_span`), computes the features and tokenizes the
transcript (:func:`vqalign.align.text.tokenize_transcript`). Warnings about the input
(OOV words, DC offset, clipping, speech missing from the transcript) travel with the
utterance into its alignment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqalign._validation import check_audio, check_sample_rate
from vqalign.align.windows import MEMORY_MB_PER_MIN_ARRAY, memory_check
from vqalign.exceptions import ParameterError, VQAlignError
from vqalign.features import denoise
from vqalign.features.frontend import (
    FEATURE_SR,
    condition_audio,
    features,
    frame_db,
    resample,
    speech_flags,
    speech_frames,
    speech_span,
    speech_stretches,
)
from vqalign.features.snr import estimate_snr_db

#: beyond this many seconds an utterance is aligned as one long recording
#: (:mod:`vqalign.align.longform`); up to it long edge silence is left out
LONG_AUDIO_S = 90.0
#: speech time (energy VAD) per phone of the transcript above which speech is reported as
#: missing from the transcript (devdata: 43-111 ms per phone, median 84 ms; three synth
#: sentences with the middle one left out of the transcript: 109-132 ms)
MAX_S_PER_PHONE = 0.150


def missing_speech_warning(on: np.ndarray, n_phones: int, offset_s: float = 0.0):
    """A warning when the audio holds far more speech than ``n_phones`` take (more than
    ``MAX_S_PER_PHONE`` of VAD speech per phone), naming the stretches of speech.

    Parameters
    ----------
    on : ndarray, shape (n_frames,), bool
        VAD speech frames (10 ms, :func:`vqalign.features.frontend.speech_frames`).
    n_phones : int
    offset_s : float
        Time of the first frame in the recording.

    Returns
    -------
    str or None
    """
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


def too_short_message(n_states, n_frames, hop_s, what="transcript"):
    """The message for a ``what`` of ``n_states`` HMM states on ``n_frames`` frames of
    ``hop_s`` s (str): what is wrong and how to fix it."""
    return (f"{what} has {n_states} HMM states but the audio has only {n_frames} frames "
            f"({n_frames * hop_s:.2f} s at {1000 * hop_s:g} ms hop; the {what} needs at least "
            f"{n_states * hop_s:.2f} s, one frame per state); shorten the {what}, use fewer "
            f"states per unit, or check that the audio and {what} belong together")



def length_error(u, states_per_unit: int, hop_s: float):
    """A ParameterError when the transcript of ``u`` needs more frames than it has
    (``states_per_unit`` states per unit, one frame each), else None.

    Parameters
    ----------
    u : Utterance
    states_per_unit : int
    hop_s : float

    Returns
    -------
    ParameterError or None
    """
    n_states = states_per_unit * sum(len(w) for w in u.tokens.units)
    T = u.X.shape[0]
    return ParameterError(too_short_message(n_states, T, hop_s)) if n_states > T else None


#: fitted-model feature cache: at most this many utterances are kept
CACHE_SIZE = 256


class FeatureCache(dict):
    """A dict of features by audio digest that forgets its oldest entries beyond
    ``CACHE_SIZE``."""

    def __setitem__(self, key, value):
        if key in self:
            del self[key]
        super().__setitem__(key, value)
        while len(self) > CACHE_SIZE:
            del self[next(iter(self))]


@dataclass
class Tokens:
    """A transcript as the model sees it.

    Attributes
    ----------
    words : list of str
        Normalized words.
    units : list of list of str
        Per word, its phones or characters.
    unit : {"phones", "chars"}
    oov : list of str
        Words pronounced by letter-to-sound rules.
    """

    words: list
    units: list
    unit: str
    oov: list = field(default_factory=list)


def tokenize(text, unit, lexicon, oov) -> Tokens:
    """Words and their units (phones or characters) via the shared tokenizer
    (:func:`vqalign.align.text.tokenize_transcript`).

    Parameters
    ----------
    text : str
        The transcript.
    unit : {"phones", "chars"}
    lexicon : Lexicon or None
        Merged over CMUdict (phones).
    oov : {"g2p", "error"}

    Returns
    -------
    Tokens
    """
    from vqalign.align.text import tokenize_transcript  # noqa: PLC0415
    if not isinstance(text, str):
        raise ParameterError(f"transcript must be a str, got {type(text).__name__}; read a "
                             "file with vqalign.align.text.read_transcript(path)")
    tr = tokenize_transcript(text, unit=unit, lexicon=lexicon, oov=oov)
    return Tokens(list(tr.words), [list(u) for u in tr.units], unit, list(tr.oov))


def user_lexicon(lexicon):
    """A :class:`~vqalign.align.lexicon.Lexicon` from a Lexicon or a lexicon file."""
    from vqalign.align.lexicon import Lexicon  # noqa: PLC0415
    if isinstance(lexicon, (str, Path)):
        return Lexicon.from_file(lexicon)
    if isinstance(lexicon, Lexicon):
        return lexicon
    raise ParameterError(f"lexicon must be a Lexicon or a file path, got "
                         f"{type(lexicon).__name__}")


def audio_key(y: np.ndarray, sr: int) -> str:
    """A digest (str) of the audio ``y`` (n_samples,) and its sample rate ``sr`` (the
    feature cache's key)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(sr).encode())
    h.update(np.ascontiguousarray(y).view(np.uint8))
    return h.hexdigest()


def load_audio(path):
    """``(y (n_samples,) float32, sr)`` of the audio file ``path``, mono, at
    :data:`FEATURE_SR` (:func:`vqalign.io.audio.load_audio`)."""
    from vqalign.io.audio import load_audio as load  # noqa: PLC0415
    return load(path, sr=FEATURE_SR)


def as_items(corpus):
    """Corpus items normalised to ``(audio, sr, text, name)`` (files read).

    Parameters
    ----------
    corpus : iterable
        ``(audio, sr, transcript)`` or ``(path, transcript)`` tuples.

    Returns
    -------
    list of tuple
    """
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
                y, sr = load_audio(y)
        elif len(item) == 2:
            path, text = item
            if not isinstance(path, (str, Path)):
                raise ParameterError(f"corpus item {i}: a 2-tuple must be (path, transcript), "
                                     f"got ({type(path).__name__}, ...)")
            y, sr = load_audio(path)
            name = str(path)
        else:
            raise ParameterError(f"corpus item {i} has {len(item)} fields; give (audio, sr, "
                                 "transcript) or (path, transcript)")
        out.append((y, sr, text, name))
    return out


@dataclass
class Utterance:
    """An utterance ready for the model: features, tokens, duration.

    Attributes
    ----------
    X : ndarray, shape (n_frames, 39), float32
        Features of the speech span (:func:`vqalign.features.frontend.features`).
    energy : ndarray, shape (n_frames,)
        Raw c0 of each frame.
    tokens : Tokens
    duration : float
        Seconds of audio the frames cover.
    sr : int
        Sample rate of the input.
    name : str or None
    warnings : list of str
        Input warnings, carried into the alignment.
    y16 : ndarray, shape (n_samples,), optional
        The 16 kHz audio the frames were made from (None: features from a store).
    key : optional
        Feature-cache key.
    offset_s : float
        Start (s) of the frames in the recording (leading silence left out).
    full_duration : float or None
        Length (s) of the whole recording (None: ``duration``, nothing left out).
    source : str or None
        The audio file the utterance was read from, when known (a store-backed one).
    long_key : str or None
        A long recording's work-folder key (:mod:`vqalign.align.windows`), when its
        features were kept there.
    speech : ndarray of bool, shape (n_vad,), or None
        A long recording's energy-VAD speech flags (10 ms frames,
        :func:`vqalign.features.frontend.speech_frames`), taken before its samples were
        dithered in place.
    noise_db : float or None
        The loudness range (dB) of audio in which no speech stands out from the noise
        (:func:`noise_only_db`); None for audio with speech above its noise.
    range_db : float or None
        The loudness range (dB, :func:`loudness_range_db`) of the audio as given, before
        any noise was subtracted (:mod:`vqalign.features.denoise`); None for long ones.
    snr_db : float or None
        The SNR (dB) of the audio as given, estimated from it
        (:func:`vqalign.features.snr.estimate_snr_db`); None for long ones.
    """

    X: np.ndarray
    energy: np.ndarray
    tokens: Tokens
    duration: float
    sr: int
    name: str | None
    warnings: list
    y16: np.ndarray | None = None
    key: str | None = None
    offset_s: float = 0.0
    full_duration: float | None = None
    source: str | None = None
    long_key: str | None = None
    speech: np.ndarray | None = None
    noise_db: float | None = None
    range_db: float | None = None
    snr_db: float | None = None


#: audio whose 10 ms frames' loudness varies by less than this many dB (10th to 95th
#: percentile) holds no speech that stands out from its noise: white noise alone 0.8 dB,
#: low-passed noise 3.7 dB; speech in white noise at -10 / -5 / 0 dB SNR 1.5-2.5 /
#: 3.1-4.9 / 5.8-8.5 dB (devdata's synthetic voices, 50 files, and the built-in
#: synthesizer; the TIMIT sample at 0 dB measured 5.5-9.2 dB); clean speech 21-49 dB
NOISE_ONLY_DB = 4.5


def noise_only_db(db) -> float | None:
    """The loudness range (dB, 10th to 95th percentile of the 10 ms frames' loudness
    ``db``, :func:`vqalign.features.frontend.frame_db`) when it is below NOISE_ONLY_DB (no
    speech stands out from the noise), else None.

    Parameters
    ----------
    db : ndarray, shape (n_frames,)
        ``frame_db`` of the audio.

    Returns
    -------
    float or None
    """
    r = loudness_range_db(db)
    return r if r is not None and r < NOISE_ONLY_DB else None


def loudness_range_db(db) -> float | None:
    """How far the loud frames stand out from the quiet ones: dB from the 10th to the 95th
    percentile of the 10 ms frames' loudness ``db`` (:func:`vqalign.features.frontend.
    frame_db`); None under 10 frames. Clean speech gives 35-50 dB, white noise at 10 dB SNR
    15-17 dB, at 5 dB 10-12 dB."""
    if db.size < 10:
        return None
    lo, hi = np.percentile(db, [10, 95])
    return float(hi - lo)


def noise_only_warning(noise_db: float, duration: float) -> str:
    """The warning for audio in which no speech stands out from the noise."""
    return (f"no speech stands out from the noise over 0.00-{duration:.2f} s (its loudness "
            f"varies by only {noise_db:.1f} dB; speech varies by 20 dB or more): the "
            "alignment there is a guess and every confidence is capped; check that the file "
            "holds the speech of the transcript, or denoise it first")


def denoised_warning(range_db: float) -> str:
    """The warning for audio whose stationary noise was subtracted before aligning."""
    return (f"the audio is noisy (its loudness varies by only {range_db:.1f} dB; clean speech "
            "by 30 dB or more): its stationary noise was subtracted before aligning "
            "(vqalign.features.denoise); boundaries and confidences are less sure than on "
            "clean audio")


def oov_warning(tokens: Tokens):
    """The input warning (str) for the words of ``tokens`` pronounced by letter-to-sound
    rules, or None."""
    if not tokens.oov:
        return None
    return (f"{len(tokens.oov)} word(s) not in the lexicon were pronounced by "
            f"letter-to-sound rules: {', '.join(sorted(set(tokens.oov)))}")


def warn_oov(prepared, stacklevel=3):
    """One warning naming the OOV words of prepared utterances (others skipped), at the
    caller of the public method that called this one (``stacklevel``).

    Returns
    -------
    list of str
        The OOV words, sorted.
    """
    oov = sorted({w for p in prepared if isinstance(p, Utterance) for w in p.tokens.oov})
    if oov:
        warnings.warn(f"{len(oov)} word(s) not in the lexicon were pronounced by "
                      f"the G2P: {', '.join(oov[:20])}"
                      f"{' ...' if len(oov) > 20 else ''}", stacklevel=stacklevel)
    return oov


def prepare(y, sr, text, *, unit, hop_s, dither, trim_silence=True, oov="g2p", name=None,
            lexicon=None, cache=None, tokens=None, own_audio=False,
            work_folder=None) -> Utterance:
    """Checks, conditioning and the front end of one utterance.

    Parameters
    ----------
    y : ndarray, shape (n_samples,), or vqalign.align.longfile.LongFile
        Mono audio, or a long audio file to read block by block (its
        ``prepare_utterance``: :func:`vqalign.align.longfile.prepare_file`).
    sr : int
        Its sample rate.
    text : str or None
        The transcript (not read when ``tokens`` is given).
    unit : {"phones", "chars"}
    hop_s : float
        Frame hop (s).
    dither : float
        Dither RMS (:func:`vqalign.features.frontend.features`).
    trim_silence : bool
        Leave long edge silence out (audio up to ``LONG_AUDIO_S``).
    oov : {"g2p", "error"}
    name : str, optional
        Shown in messages.
    lexicon : Lexicon, optional
    cache : FeatureCache, optional
        Features by audio digest and settings.
    tokens : Tokens, optional
        The transcript already tokenized.
    own_audio : bool
        ``y`` is not the caller's (read from a file for this call), so a long one may be
        dithered in place.
    work_folder : callable, optional
        ``work_folder(y16, units) -> vqalign.align.windows.WorkFolder``: a recording longer
        than ``LONG_AUDIO_S`` keeps its features there (for a resumed run), its VAD taken
        first; None: computed as any other.

    Returns
    -------
    Utterance
    """
    if hasattr(y, "prepare_utterance"):  # a long file, read block by block
        return y.prepare_utterance(text, unit=unit, hop_s=hop_s, dither=dither, oov=oov,
                                   name=name, lexicon=lexicon, tokens=tokens,
                                   work_folder=work_folder)
    sr = check_sample_rate(sr)
    y = check_audio(y, sr, allow_silent=True, name=f"audio {name}" if name else "audio")
    warn = []
    if not np.any(y):
        raise ParameterError(
            f"{'audio ' + repr(name) if name else 'the audio'} is silent (all "
            f"{y.size} samples are zero; {y.size / sr:.2f} s); there is no speech to align")
    peak = max(float(np.max(y)), -float(np.min(y)))  # (no abs copy of a long signal)
    if peak < 1e-4:
        raise ParameterError(
            f"{'audio ' + repr(name) if name else 'the audio'} is practically silent "
            f"(peak amplitude {peak:.1e}); there is no speech to align — check the file "
            "or its gain")
    if y.size / sr > LONG_AUDIO_S:  # refuse before the memory runs out
        memory_check(y.size / sr, per_min=MEMORY_MB_PER_MIN_ARRAY)
    if tokens is None:
        tokens = tokenize(text, unit, lexicon, oov)
    msg = oov_warning(tokens)
    if msg is not None:
        warn.append(msg)
    trim = bool(trim_silence) and y.size / sr <= LONG_AUDIO_S
    key = ((audio_key(y, sr), hop_s, dither, trim)
           if cache is not None else None)
    y_in, long_key, speech = y, None, None
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
    db = r = snr = None
    if y16.size <= LONG_AUDIO_S * FEATURE_SR:   # one loudness for the checks and the denoiser
        db = frame_db(y16)
        r = loudness_range_db(db)
        snr = estimate_snr_db(y16)
        clean = (denoise.spectral_subtract(y16)   # noise alone stays as it is
                 if denoise.wanted(r) and r >= NOISE_ONLY_DB else None)
        if clean is not None:
            y16 = clean
            warn.append(denoised_warning(r))
    if key is not None and key in cache:
        X, energy = cache[key]
    elif work_folder is not None and y16.size > LONG_AUDIO_S * FEATURE_SR:
        # a long recording's features are kept for a resumed run; its VAD is taken first
        # and, when the samples are ours, they are dithered in place (no second copy)
        work = work_folder(y16, tokens.units)
        long_key, speech = work.key, speech_frames(y16)
        mine = own_audio or not np.may_share_memory(y16, y_in)
        X, energy = work.cached("features", lambda: features(
            y16, hop_s, 1, dither=dither, in_place=mine))
    else:
        X, energy = features(y16, hop_s, 1, dither=dither)
        if key is not None:
            cache[key] = (X, energy)
    # the loudness of what is aligned, once for both checks below (a long recording in
    # a work folder has its VAD flags already)
    if db is None and speech is None and (unit == "phones" or span is None):
        db = frame_db(y16)
    if unit == "phones":
        miss = missing_speech_warning(speech if speech is not None else speech_flags(db),
                                      sum(map(len, tokens.units)), a / FEATURE_SR)
        if miss is not None:
            warn.append(miss)
    noise = noise_only_db(db) if span is None and db is not None else None
    if noise is not None:
        warn.append(noise_only_warning(noise, full))
    if span is None:
        return Utterance(X, energy, tokens, full, sr, name, warn, y16, key,
                         long_key=long_key, speech=speech, noise_db=noise, range_db=r,
                         snr_db=snr)
    return Utterance(X, energy, tokens, (b - a) / FEATURE_SR, sr, name, warn, y16, key,
                     offset_s=a / FEATURE_SR, full_duration=full, range_db=r, snr_db=snr)


def prepare_all(items, prepare, lexicon, cache):
    """Prepared utterances of ``(audio, sr, text, name)`` items, or per item its exception
    (an exception given as an item is passed on); OOV warnings left to the caller, who
    reports them once.

    Parameters
    ----------
    items : list
    prepare : callable
        ``prepare(y, sr, text, name, lexicon, cache) -> Utterance`` (e.g.
        :meth:`vqalign.align.Aligner.prepare`).
    lexicon, cache
        Passed on.

    Returns
    -------
    list of Utterance or VQAlignError
    """
    out = []
    for it in items:
        if isinstance(it, Exception):
            out.append(it)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                out.append(prepare(*it[:3], it[3], lexicon, cache))
        except VQAlignError as exc:
            out.append(exc)
    return out


def frames(utts):
    """The frames of many utterances end to end.

    Parameters
    ----------
    utts : list of Utterance

    Returns
    -------
    X : ndarray, shape (N, 39), float32
    energy : ndarray, shape (N,)
    frame_off : ndarray, shape (U + 1,), int64
        Utterance ``u`` holds frames ``frame_off[u]:frame_off[u + 1]``.
    """
    offs = np.zeros(len(utts) + 1, np.int64)
    offs[1:] = np.cumsum([p.X.shape[0] for p in utts])
    X = np.concatenate([p.X for p in utts]) if utts else np.zeros((0, 39), np.float32)
    E = np.concatenate([p.energy for p in utts]) if utts else np.zeros(0)
    return np.ascontiguousarray(X, dtype=np.float32), E, offs


def with_audio(p: Utterance, y16, hop_s: float, dither: float, **changes) -> Utterance:
    """``p`` on other 16 kHz audio (a part of its own): features and loudness made again,
    its duration, no cache key, its own copy of the warnings.

    Parameters
    ----------
    p : Utterance
    y16 : ndarray, shape (n_samples,), float32
    hop_s, dither : float
        The front end's settings.
    **changes
        Other fields (``offset_s``, ``full_duration``).

    Returns
    -------
    Utterance
    """
    X, energy = features(y16, hop_s, 1, dither=dither)
    return dataclasses.replace(p, X=X, energy=energy, duration=y16.size / FEATURE_SR,
                               y16=y16, key=None, warnings=list(p.warnings), **changes)
