"""The aligner's front end on a long recording read block by block.

:func:`vqalign.features.frontend.features` and the energy VAD work on the whole signal:
for a three-hour recording that is 690 MB of samples plus log-mel, cepstra, deltas and
their CMVN copy, well over a gigabyte at once. Here the samples stay in the file
(:class:`vqalign.io.blocks.BlockReader`) and are read in blocks of
:data:`~vqalign.features.frontend.MEM_BLOCK` samples:

1. **statistics** -- sum, sum of squares, extremes, (near-)zero samples: the DC offset,
   silence and NaN checks and whether the audio is dithered (digital silence);
2. (only when a DC offset is removed) the peak and zeros of the corrected samples;
3. **features** -- per block: the VAD's frame loudness (same frame groups as
   :func:`~vqalign.features.frontend.frame_db`), the dither (the same random stream, drawn
   in the same blocks), and the natural-log mel power of every frame whose window the
   samples read so far cover (the same blocks of 256 frames as
   :func:`vqalign.features.mfcc`); then the 80 dB floor from the global maximum, the DCT,
   deltas and CMVN on whole-recording arrays of float32 features only, in place.

The result is the same, bit for bit, as ``features(y16, hop_s, 1, dither)`` and
``speech_frames(y16)`` on the whole signal (``tests/test_long_frontend.py``), at a peak
of the log-mel (T x 40) and cepstra (T x 13) or the features (T x 39) and cepstra,
about 1.3 MB per minute of audio, instead of ~10 MB per minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vqalign._threads import one_blas_thread
from vqalign.exceptions import ParameterError
from vqalign.features import _kernels as K
from vqalign.features import frontend as F
from vqalign.features.cmvn import cmvn
from vqalign.features.constants import FEATURE_SR
from vqalign.features.mfcc import (
    _AMIN,
    _BLOCK,
    _filterbank_sparse,
    _next_pow2,
    _run_blocks,
    _window,
    dct_matrix,
    default_threads,
)

#: VAD frames (samples): the hop and window of frontend.frame_db
_VAD_HOP, _VAD_WIN = 160, 400


@dataclass
class SignalStats:
    """First-pass statistics of a recording (16 kHz float32 samples as read).

    Attributes
    ----------
    n : int
        Samples.
    total, squares : float
        Sum and (float64, per MEM_BLOCK block, in order) sum of squares.
    lo, hi : float
        Smallest and largest sample (NaN when any sample is not finite).
    zeros : int
        Samples with ``|y| < ZERO_LEVEL``.
    bad : int
        NaN or Inf samples; ``first_bad`` the index of the first.
    """

    n: int = 0
    total: float = 0.0
    squares: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    zeros: int = 0
    bad: int = 0
    first_bad: int = -1

    @property
    def mean(self) -> float:
        return self.total / max(1, self.n)

    @property
    def rms(self) -> float:
        return math.sqrt(self.squares / max(1, self.n))


@dataclass
class LongFrontEnd:
    """What :func:`long_front_end` hands back.

    Attributes
    ----------
    X : ndarray, shape (n_frames, 39), float32
        ``features(y16, hop_s, delta_width, dither)[0]`` of the whole recording.
    c0 : ndarray, shape (n_frames,), float32
        Raw c0 of every frame.
    speech : ndarray, shape (n_vad,), bool
        ``speech_frames(y16)`` (10 ms VAD frames, before the dither).
    warnings : list of str
        ``condition_audio``'s warnings.
    n_samples : int
        Samples at 16 kHz.
    """

    X: np.ndarray
    c0: np.ndarray
    speech: np.ndarray
    warnings: list
    n_samples: int

    @property
    def duration(self) -> float:
        return self.n_samples / FEATURE_SR


def _reblock(blocks, size: int):
    """The samples of ``blocks`` again, in blocks of exactly ``size`` (the last shorter)."""
    pend, have = [], 0
    for b in blocks:
        pend.append(b)
        have += b.size
        while have >= size:
            cat = np.concatenate(pend) if len(pend) > 1 else pend[0]
            yield cat[:size]
            rest = cat[size:]
            pend, have = ([rest] if rest.size else []), rest.size
    if have:
        yield np.concatenate(pend) if len(pend) > 1 else pend[0]


def _aligned(reader):
    return _reblock(iter(reader), F.MEM_BLOCK)


def scan(reader) -> SignalStats:
    """Pass 1: :class:`SignalStats` of the samples of ``reader`` (an iterable of float32
    blocks, read again by later passes)."""
    st = SignalStats()
    for b in _aligned(reader):
        lo, hi = float(b.min()), float(b.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            fin = np.isfinite(b)
            if st.bad == 0:
                st.first_bad = st.n + int(np.argmin(fin))
            st.bad += int(b.size - np.count_nonzero(fin))
        st.lo, st.hi = min(st.lo, lo), max(st.hi, hi)
        st.total += float(np.sum(b, dtype=np.float64))
        st.squares += float(np.dot(b.astype(np.float64), b))
        st.zeros += int(np.count_nonzero(np.abs(b) < F.ZERO_LEVEL))
        st.n += b.size
    return st


def check_stats(st: SignalStats, name=None) -> None:
    """The errors of ``vqalign.align.utterance.prepare`` for audio that holds NaN / Inf,
    only zeros, or nothing louder than 1e-4."""
    label = f"audio {name}" if name else "audio"
    if st.bad:
        raise ParameterError(
            f"{label} contains {st.bad} NaN or Inf samples (first at index {st.first_bad}); "
            "replace them (np.nan_to_num) or check the decoder that produced the audio")
    what = f"audio {name!r}" if name else "the audio"
    if st.lo == 0 and st.hi == 0:
        raise ParameterError(
            f"{what} is silent (all {st.n} samples are zero; {st.n / FEATURE_SR:.2f} s); "
            "there is no speech to align")
    peak = max(st.hi, -st.lo)
    if peak < 1e-4:
        raise ParameterError(
            f"{what} is practically silent (peak amplitude {peak:.1e}); there is no speech "
            "to align — check the file or its gain")


def long_front_end(reader, hop_s: float, *, delta_width: int = F.DELTA_WIDTH,
                   dither: float = F.DITHER, name=None, stats: SignalStats | None = None,
                   n_threads: int | None = None) -> LongFrontEnd:
    """Features, raw c0, VAD flags and conditioning warnings of a long recording read
    block by block (module docstring), equal to the whole-signal front end.

    Parameters
    ----------
    reader : iterable
        Re-iterable source of float32 mono blocks at 16 kHz
        (:class:`vqalign.io.blocks.BlockReader`).
    hop_s : float
        Frame hop (s).
    delta_width : int
        Delta regression half-width (frames).
    dither : float
        RMS of the dither added when the audio has digital silence (0: never).
    name : str, optional
        Named in warnings and errors.
    stats : SignalStats, optional
        Pass 1's statistics, when already taken.
    n_threads : int, optional
        Threads of the mel stage (default as :func:`vqalign.features.mfcc`).

    Returns
    -------
    LongFrontEnd
    """
    st = scan(reader) if stats is None else stats
    check_stats(st, name)
    n = st.n
    mean = st.mean
    rms = st.rms
    shift = F.dc_shift(mean, rms)
    zeros, peak = st.zeros, max(st.hi, -st.lo)
    if shift is not None:  # pass 2: the corrected samples' peak and zeros
        zeros, peak = 0, 0.0
        for b in _aligned(reader):
            c = (b - shift).astype(np.float32)
            peak = max(peak, float(np.abs(c).max()))
            zeros += int(np.count_nonzero(np.abs(c) < F.ZERO_LEVEL))
    dithered = bool(dither) and zeros / max(1, n) > F.DIGITAL_SILENCE

    # mel settings of F.features -> mfcc(librosa convention, centred frames)
    win = int(round(F.WIN_S * FEATURE_SR))
    hop = int(round(hop_s * FEATURE_SR))
    n_fft = _next_pow2(win)
    n_frames = 1 + (n + 2 * (n_fft // 2) - n_fft) // hop
    start = (n_fft - win) // 2 - n_fft // 2       # frame t's window: [t hop + start, + win)
    window = _window("hann", win)
    fb = _filterbank_sparse("slaney", FEATURE_SR, n_fft, F.N_MELS, 0.0, FEATURE_SR / 2.0)
    threads = default_threads(n_threads)
    lnmel = np.empty((n_frames, F.N_MELS), np.float32)

    n_vad = max(1, int(np.ceil(n / _VAD_HOP)))
    power = np.empty(n_vad)
    group = F.frame_db_step(_VAD_HOP)

    rng = np.random.default_rng(0) if dithered else None
    at_peak = 0
    raw = np.zeros(0, np.float32)      # conditioned samples from b0 (VAD)
    dit = raw                          # the same, dithered (features)
    b0 = 0                             # index of raw[0] in the recording
    next_group = next_frame = 0
    for b in _aligned(reader):
        if shift is not None:
            b = (b - shift).astype(np.float32)
        if peak > 0.3:
            at_peak += int(np.count_nonzero(np.abs(b) >= peak * 0.999))
        raw = np.concatenate([raw, b])
        if rng is not None:
            d = b + np.float32(dither) * rng.standard_normal(b.size).astype(np.float32)
            dit = np.concatenate([dit, d])
        else:
            dit = raw
        b1 = b0 + raw.size
        last = b1 >= n
        # VAD frame groups whose samples are all read
        while next_group * group < n_vad:
            f0 = next_group * group
            f1 = min(n_vad, f0 + group)
            end = min(n, (f1 - 1) * _VAD_HOP + _VAD_WIN)
            if end > b1:
                break
            power[f0:f1] = F.frame_power(raw[f0 * _VAD_HOP - b0:end - b0], f1 - f0,
                                         _VAD_HOP, _VAD_WIN)
            next_group += 1
        # mel frames whose windows are covered, in whole blocks of _BLOCK frames
        ready = n_frames if last else max(0, (b1 - start - win) // hop + 1)
        ready = min(n_frames, ready)
        if not last:
            ready = next_frame + (ready - next_frame) // _BLOCK * _BLOCK
        if ready > next_frame:
            f_off, seg = next_frame, dit
            off = start - b0 + f_off * hop

            def frame_fn(t0, view, seg=seg, off=off):
                K.frame_window(seg, off, hop, window, t0, view)

            lnmel[f_off:ready] = _run_blocks(ready - f_off, n_fft, frame_fn, fb, _AMIN,
                                               threads)
            next_frame = ready
        # keep only the samples later frames and groups still need
        keep_from = min(next_group * group * _VAD_HOP, max(0, next_frame * hop + start), b1)
        if keep_from > b0:
            raw = raw[keep_from - b0:].copy()
            dit = dit[keep_from - b0:].copy() if rng is not None else raw
            b0 = keep_from
    if next_frame < n_frames or next_group * group < n_vad:  # the reader gave fewer samples
        raise ParameterError(f"audio {name!r} ended before its header's length; the file may "
                             "be truncated: re-export it")
    raw = dit = None
    db = 10.0 * np.log10(power + 1e-12)
    speech = F.speech_flags(db)

    # the 80 dB floor from the global maximum, the DCT (as vqalign.features.mfcc)
    with one_blas_thread():
        np.maximum(lnmel, lnmel.max() - np.float32(80.0 * np.log(10.0) / 10.0), out=lnmel)
        C = dct_matrix(F.N_MFCC, F.N_MELS) * np.float32(10.0 / np.log(10.0))
        c = lnmel @ C.T
    del lnmel
    X = deltas_cmvn(c, delta_width)
    what = f"audio {name!r}" if name else "the audio"
    warn = F.conditioning_warnings(what, FEATURE_SR, n, mean, rms, shift is not None, peak,
                                   at_peak)
    return LongFrontEnd(X, c[:, 0].astype(np.float32), speech, warn, n)


#: rows per block of the in-place deltas
_ROWS = 1 << 16


def deltas_cmvn(c: np.ndarray, width: int = F.DELTA_WIDTH) -> np.ndarray:
    """``cmvn(delta(c, order=2, width=width))`` computed block by block and in place (no
    (T, 39) temporaries); the same numbers.

    Parameters
    ----------
    c : ndarray, shape (n_frames, n_mfcc), float32
    width : int

    Returns
    -------
    ndarray, shape (n_frames, 3 * n_mfcc), float32
    """
    T, D = c.shape
    X = np.empty((T, 3 * D), np.float32)
    X[:, :D] = c
    denom = np.float32(2.0 * sum(k * k for k in range(1, width + 1)))
    for order in (1, 2):
        prev = X[:, (order - 1) * D:order * D]
        for a in range(0, T, _ROWS):
            b = min(T, a + _ROWS)
            t = np.arange(a, b)
            cur = np.zeros((b - a, D), np.float32)
            for k in range(1, width + 1):
                cur += np.float32(k) * (prev[np.minimum(t + k, T - 1)]
                                        - prev[np.maximum(t - k, 0)])
            cur /= denom
            X[a:b, order * D:(order + 1) * D] = cur
    return cmvn(X, in_place=True)   # over the whole recording, in place


__all__ = ["LongFrontEnd", "SignalStats", "check_stats", "deltas_cmvn", "long_front_end",
           "scan"]
