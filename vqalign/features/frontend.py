"""The aligner's front end: audio conditioning, the 39-D feature recipe and the energy VAD.

Everything here works on mono audio at :data:`FEATURE_SR` and knows nothing of models or
transcripts, so that ``io`` (the feature store) and ``align`` (the aligner) share one
front end::

    y, notes = condition_audio(y, sr)          # DC offset removed; clipping, narrow band noted
    y16 = resample(y, sr)                      # 16 kHz (soxr)
    X, c0 = features(y16, 0.010)               # (T, 39) float32 MFCC + deltas, CMVN; (T,) raw c0
    span = speech_span(y16)                    # samples holding the speech, or None

The VAD functions (:func:`frame_db`, :func:`speech_span`, :func:`speech_frames`,
:func:`speech_stretches`, :func:`edge_silence`) use 25 ms frames every 10 ms.
"""

from __future__ import annotations

import numpy as np

from vqalign.features.cmvn import cmvn
from vqalign.features.constants import FEATURE_SR
from vqalign.features.deltas import delta
from vqalign.features.mfcc import mfcc

#: the 39-D recipe: N_MFCC cepstra of a WIN_S window over N_MELS mel bands, with deltas and
#: delta-deltas by regression over +-DELTA_WIDTH frames (recorded with every model and store)
N_MFCC = 13
N_MELS = 40
WIN_S = 0.025
DELTA_WIDTH = 1

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
#: |sample| below which a sample counts as (near-)zero
ZERO_LEVEL = 1e-7

#: digital silence before the Sphinx model's front end (:meth:`vqalign.align.sphinx.
#: SphinxAligner.features`): runs of (near-)zero samples at least DIGITAL_RUN_S long are
#: filled with white noise of RMS SPHINX_FILL. Its log energies floor on zeros, every such
#: frame becomes one point, and the model stretched words into them: on recordings joined
#: with zero pauses (``vqalign bench long --minutes 35``, its ~20 s windows, the Sphinx
#: model alone) devdata synth 35.9 ms mean word error, filled at 1e-4 19.3, 3e-4 18.6,
#: 1e-3 20.2, 3e-3 21.9 ms (chosen there); TIMIT dev joined, measured after: 21.8 -> 17.8
#: ms at 3e-4. A run shorter than one frame step is a quiet 16-bit signal's, left alone
SPHINX_FILL = 3e-4
DIGITAL_RUN_S = 0.010

#: samples per block of the front end's whole-signal passes (a 3-hour file holds 173 M
#: samples; a float64 copy of them is 1.4 GB)
MEM_BLOCK = 1 << 20


def true_runs(mask) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) int64 of the runs of True in the 1-D boolean ``mask`` (stops
    exclusive)."""
    m = np.asarray(mask, bool).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], m, [0]])))
    return edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)


def fill_digital_silence(y: np.ndarray, sr: int, *, level: float = SPHINX_FILL,
                         min_run_s: float = DIGITAL_RUN_S) -> np.ndarray:
    """``y`` with every run of (near-)zero samples (``|y| < ZERO_LEVEL``) of at least
    ``min_run_s`` seconds replaced by white noise of RMS ``level`` (fixed seed: the same
    audio, the same result); ``y`` itself, not a copy, when it has no such run.

    Parameters
    ----------
    y : ndarray, shape (n_samples,), float
    sr : int
    level : float
    min_run_s : float

    Returns
    -------
    ndarray, shape (n_samples,), float32 (or ``y``)
    """
    y = np.asarray(y)
    z = np.abs(y) < ZERO_LEVEL
    if y.size == 0 or not z.any():
        return y
    a, b = true_runs(z)
    keep = (b - a) >= max(1, int(round(min_run_s * sr)))
    if not keep.any():
        return y
    mask = np.zeros(y.size, bool)
    for s, e in zip(a[keep].tolist(), b[keep].tolist()):   # per run, not per sample
        mask[s:e] = True
    out = y.astype(np.float32, copy=True)
    rng = np.random.default_rng(0)
    out[mask] = (level * rng.standard_normal(int(mask.sum()))).astype(np.float32)
    return out


def features(y16: np.ndarray, hop_s: float, delta_width: int = DELTA_WIDTH,
             dither: float = DITHER, *, in_place: bool = False):
    """The aligner's front end on 16 kHz audio: ((T, 39) float32 features, (T,) raw c0).

    13 MFCCs (:func:`vqalign.features.mfcc`, librosa convention, 25 ms window, 40 mel
    bands) with deltas and delta-deltas (:func:`vqalign.features.delta`, regression over
    +-``delta_width`` frames: wider windows smear boundaries) and per-utterance CMVN
    (:func:`vqalign.features.cmvn`). The raw c0 is the loudness silence is seeded from.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,), float32
        Mono audio at :data:`FEATURE_SR`.
    hop_s : float
        Frame hop (s).
    delta_width : int
        Delta regression half-width (frames).
    dither : float
        RMS of the white noise added first to audio with digital silence (more than 1 %
        of its samples exactly zero); 0: never.
    in_place : bool
        The dither is added to ``y16`` itself (the caller's samples change; no copy of a
        long signal).

    Returns
    -------
    X : ndarray, shape (n_frames, 39), float32
    c0 : ndarray, shape (n_frames,), float32
        Raw c0 (before CMVN) of every frame.
    """
    if dither and np.mean(np.abs(y16) < ZERO_LEVEL) > DIGITAL_SILENCE:
        # Digital silence makes every silent frame the same point: zero variance after
        # CMVN and a silence Gaussian that swallows its neighbours (measured on devdata
        # utterances joined by zero pauses: 232 ms mean word error; with dither 19 ms).
        # Kaldi dithers always for the same reason; here only audio that has digital
        # silence is dithered (on the built-in synthesizer's noisy pauses dither cost
        # 37 -> 47 ms). Fixed seed: same audio, same result.
        # Drawn in blocks (the same stream): no float64 copy of a long signal.
        rng = np.random.default_rng(0)
        if not in_place:
            y16 = y16.copy()
        for a in range(0, y16.size, MEM_BLOCK):
            b = min(y16.size, a + MEM_BLOCK)
            y16[a:b] += np.float32(dither) * rng.standard_normal(b - a).astype(np.float32)
    c = mfcc(y16, FEATURE_SR, n_mfcc=N_MFCC, n_mels=N_MELS, win_length=WIN_S,
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
#: how far weak speech sounds lie below the loud level (dB; weak fricatives such as f and
#: th are 20-30 dB below open vowels in the classic intensity tables): with less than
#: EDGE_MIN_DB + this between the noise floor and the loud level the VAD cannot tell them
#: from the noise, and no edge is cut (TIMIT dev in white noise at 10 dB SNR, 14-19 dB:
#: with the former 10 dB guard 9 of 40 files lost 0.3-0.8 s of their last words; clean
#: TIMIT and devdata synth have no file cut either way)
WEAK_SPEECH_DB = 20.0
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
    computed from cumulative sums of squares over blocks of frames (no per-frame loop, no
    float64 copy of a long signal).

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
    hop, win : int
        Hop and window (samples).

    Returns
    -------
    ndarray, shape (n_frames,), float64
    """
    n = max(1, int(np.ceil(y16.size / hop)))
    out = np.empty(n)
    step = frame_db_step(hop)
    for f0 in range(0, n, step):
        f1 = min(n, f0 + step)
        seg = y16[f0 * hop:min(y16.size, (f1 - 1) * hop + win)]
        out[f0:f1] = frame_power(seg, f1 - f0, hop, win)
    return 10.0 * np.log10(out + 1e-12)


def frame_db_step(hop: int = 160) -> int:
    """Frames per group of :func:`frame_db` (each group sums its own squares: a blockwise
    reader that cuts the same groups gets the same numbers)."""
    return max(1, MEM_BLOCK // hop)


def frame_power(seg: np.ndarray, n_frames: int, hop: int = 160, win: int = 400) -> np.ndarray:
    """Mean power of ``n_frames`` frames (``[i * hop, i * hop + win)``, cut at the end of
    ``seg``) of one group of :func:`frame_db`: (n_frames,) float64.

    Parameters
    ----------
    seg : ndarray, shape (n_samples,)
        The group's samples, from its first frame's first sample.
    n_frames : int
    hop, win : int
        Hop and window (samples).

    Returns
    -------
    ndarray, shape (n_frames,), float64
    """
    c = np.concatenate([[0.0], np.cumsum(np.square(seg, dtype=np.float64))])
    a = np.arange(n_frames) * hop
    b = np.minimum(a + win, seg.size)
    return (c[b] - c[a]) / np.maximum(b - a, 1)


def speech_span(y16: np.ndarray, *, min_edge_s: float = EDGE_SILENCE_S,
                margin_s: float = EDGE_MARGIN_S):
    """Samples ``(a, b)`` of 16 kHz audio that hold its speech, or None to keep it all.

    Energy VAD: 10 ms frames louder than the noise floor (10th percentile of the frame
    loudness) by ``max(EDGE_MIN_DB, EDGE_RANGE * (95th percentile - floor))`` dB, in runs of
    at least 50 ms, are speech. A leading (trailing) stretch without speech longer than
    ``min_edge_s`` is cut to ``margin_s`` before the first (after the last) speech frame.
    Audio with less than EDGE_MIN_DB + WEAK_SPEECH_DB between floor and speech is kept
    whole: its weak sounds cannot be told from the noise.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
        Audio at :data:`FEATURE_SR`.
    min_edge_s : float
        Shortest edge (s) without speech that is cut.
    margin_s : float
        Silence (s) kept next to the speech.

    Returns
    -------
    (int, int) or None
    """
    db = frame_db(y16)
    if db.size < 10:
        return None
    floor, loud = np.percentile(db, [10, 95])
    if loud - floor < EDGE_MIN_DB + WEAK_SPEECH_DB:
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



#: pauses (s) that separate the stretches of speech listed in that warning
ISLAND_PAUSE_S = 0.25


def speech_frames(y16: np.ndarray) -> np.ndarray:
    """The 10 ms frames the energy VAD of :func:`speech_span` calls speech.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)

    Returns
    -------
    ndarray, shape (n_frames,), bool
        All False when the audio has under 10 dB between noise floor and speech.
    """
    return speech_flags(frame_db(y16))


def speech_flags(db: np.ndarray) -> np.ndarray:
    """:func:`speech_frames` from the frame loudness ``db`` (:func:`frame_db`).

    Parameters
    ----------
    db : ndarray, shape (n_frames,)

    Returns
    -------
    ndarray, shape (n_frames,), bool
    """
    floor, loud = np.percentile(db, [10, 95])
    if loud - floor < 10.0:
        return np.zeros(db.size, bool)
    return db > floor + max(EDGE_MIN_DB, EDGE_RANGE * (loud - floor))


def speech_stretches(on: np.ndarray, pause_s: float = ISLAND_PAUSE_S, hop_s: float = 0.010):
    """The runs of speech frames ``on`` separated by pauses longer than ``pause_s``.

    Parameters
    ----------
    on : ndarray, shape (n_frames,), bool
    pause_s : float
    hop_s : float
        Frame hop of ``on`` (s).

    Returns
    -------
    list of (start_s, end_s)
    """
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    cut = np.flatnonzero(np.diff(idx) > int(round(pause_s / hop_s)))
    st = np.concatenate([[idx[0]], idx[cut + 1]])
    en = np.concatenate([idx[cut], [idx[-1]]]) + 1
    return [(round(a * hop_s, 2), round(b * hop_s, 2)) for a, b in zip(st, en)]


def edge_silence(y16, n_frames, hop_s):
    """Feature frames (centred every ``hop_s``) more than 20 ms before the first / after
    the last 50 ms run of VAD speech frames.

    Parameters
    ----------
    y16 : ndarray, shape (n_samples,)
    n_frames : int
    hop_s : float

    Returns
    -------
    ndarray, shape (n_frames,), bool
    """
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
    """Input checks that need no model: a DC offset is removed (and reported); clipping
    and a narrow band (sr < 16 kHz) are reported.

    Parameters
    ----------
    y : ndarray, shape (n_samples,), float32
    sr : int
    name : str, optional
        Named in the warnings.

    Returns
    -------
    y : ndarray, shape (n_samples,), float32
    warnings : list of str
    """
    what = f"audio {name!r}" if name else "the audio"
    mean = float(np.mean(y, dtype=np.float64))
    # sums and counts in blocks: no float64 / abs copy of a long signal
    blocks = [y[a:a + MEM_BLOCK] for a in range(0, y.size, MEM_BLOCK)]
    rms = float(np.sqrt(sum(float(np.dot(b.astype(np.float64), b)) for b in blocks)
                        / max(1, y.size)))
    shift = dc_shift(mean, rms)
    if shift is not None:
        y = (y - shift).astype(np.float32)
        blocks = [y[a:a + MEM_BLOCK] for a in range(0, y.size, MEM_BLOCK)]
    peak = max((float(np.abs(b).max()) for b in blocks), default=0.0)
    at_peak = (sum(int(np.count_nonzero(np.abs(b) >= peak * 0.999)) for b in blocks)
               if peak > 0.3 else 0)
    return y, conditioning_warnings(what, sr, y.size, mean, rms, shift is not None, peak,
                                    at_peak)


def dc_shift(mean: float, rms: float):
    """The float32 value :func:`condition_audio` subtracts from audio of this mean and RMS
    (a DC offset above ``DC_OFFSET`` of the RMS), or None."""
    if abs(mean) > DC_OFFSET * rms and abs(mean) > 1e-4:
        return np.float32(mean)
    return None


def conditioning_warnings(what: str, sr: int, n: int, mean: float, rms: float,
                          removed: bool, peak: float, at_peak: int) -> list:
    """The warnings of :func:`condition_audio` from its statistics (also gathered block by
    block, :mod:`vqalign.features.blockwise`).

    Parameters
    ----------
    what : str
        How the audio is named ("the audio", "audio 'x.wav'").
    sr : int
        Its sample rate.
    n : int
        Its samples.
    mean, rms : float
        Mean and RMS of the input.
    removed : bool
        The DC offset was removed.
    peak : float
        Peak amplitude after that.
    at_peak : int
        Samples at >= 0.999 of the peak (counted when the peak is above 0.3).

    Returns
    -------
    list of str
    """
    warn = []
    if removed:
        warn.append(f"{what} has a DC offset of {mean:+.4f} (full scale 1.0, "
                    f"{100 * abs(mean) / rms:.0f} % of its RMS); it was removed before "
                    "alignment (a high-pass filter at recording avoids it)")
    if peak > 0.3 and at_peak > max(3, CLIPPED_SHARE * n):
        warn.append(f"{what} is clipped: {at_peak} samples ({100 * at_peak / n:.2f} %) "
                    f"sit at the peak amplitude {peak:.3f}; boundaries near loud sounds "
                    "may be less accurate (record at a lower gain)")
    if sr < FEATURE_SR:
        warn.append(f"{what} is sampled at {sr} Hz (band up to {sr / 2000:g} kHz, e.g. "
                    f"telephone audio); it is upsampled to {FEATURE_SR} Hz and has no energy "
                    f"above {sr / 2000:g} kHz, so fricatives are weaker cues: check the "
                    "boundaries")
    return warn


def resample(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono audio at :data:`FEATURE_SR` (soxr).

    Parameters
    ----------
    y : ndarray, shape (n_samples,), float32
    sr : int

    Returns
    -------
    ndarray, shape (n_samples * FEATURE_SR / sr,), float32
    """
    if sr == FEATURE_SR:
        return y
    import soxr  # noqa: PLC0415
    return soxr.resample(y, sr, FEATURE_SR).astype(np.float32)



def recipe_settings(hop_s: float, dither: float) -> dict:
    """The front end's settings as a model file records them (a model never meets
    features made with other settings unnoticed).

    Parameters
    ----------
    hop_s : float
        Frame hop (s).
    dither : float
        RMS of the dither noise (:func:`features`).

    Returns
    -------
    dict
        ``kind``, ``n_mfcc``, ``n_mels``, ``win_length``, ``hop_length``, ``cmvn``, ``sr``,
        ``delta_width``, ``dither``.
    """
    return {"kind": "mfcc+delta+delta2", "n_mfcc": N_MFCC, "n_mels": N_MELS,
            "win_length": WIN_S, "hop_length": hop_s, "cmvn": "per-utterance",
            "sr": FEATURE_SR, "delta_width": DELTA_WIDTH, "dither": dither}
